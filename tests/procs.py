"""Helpers for tests running real processes: free ports, subprocesses with logs, readiness."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

PYTHON = sys.executable


_HANDED_OUT: set[int] = set()
_PICK_FLOOR = 10_000


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel hands to ``bind(port 0)`` and outgoing connections."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A loopback port nothing listens on, never returned before by this process.

    Picked at random *below* the kernel's ephemeral range: a port taken from the kernel
    (``bind(0)``) and released can be handed out again at once, to the next ``free_port`` or
    to any process binding port 0 (a metrics server did, and an API then found its own port
    taken: ``address already in use``). Below the range, only another ``free_port`` caller can
    pick it, and those pick at random among ~20k ports.
    """
    low, _ = _ephemeral_range()
    rng = random.SystemRandom()
    if low - _PICK_FLOOR >= 2_000:
        for _ in range(500):
            port = rng.randrange(_PICK_FLOOR, low)
            if port in _HANDED_OUT:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _HANDED_OUT.add(port)
            return port
    while True:  # an ephemeral range reaching down to the floor: the kernel's pick, unrepeated
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for child processes: no developer AGENT_*/OTEL_* variables leak in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AGENT_", "OTEL_", "LITELLM_", "OPENAI_", "PROMETHEUS_"))
    }
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["PYTHONUNBUFFERED"] = "1"
    env["AGENT_LOG_LEVEL"] = "INFO"
    # Authentication is on by default; tests of it turn it on with their own keys, the others
    # exercise what lies behind it.
    env["AGENT_AUTH_ENABLED"] = "false"
    if extra:
        env.update(extra)
    return env


class Proc:
    """A child process whose stdout+stderr go to a log file (read it back on failure);
    ``account`` (``user``, ``group``, … of ``subprocess.Popen``) runs it as another user."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: Mapping[str, str],
        log_dir: Path,
        cwd: Path | None = None,
        account: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.args = args
        self.log_path = log_dir / f"{name}-{int(time.time() * 1000)}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            args,
            env=dict(env),
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **dict(account or {}),
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.send_signal(sig)

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> None:
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill_group()
        self._log.close()


def wait_http(url: str, proc: Proc | None = None, timeout: float = 60.0, status: int = 200) -> None:
    """Wait until ``url`` answers ``status`` (fails early if ``proc`` exits)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(
                f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log()[-4000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == status:
                    return
                last = resp.status
        except urllib.error.HTTPError as exc:
            last = exc.code
            if exc.code == status:
                return
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    tail = proc.log()[-4000:] if proc else ""
    raise TimeoutError(f"{url} not ready after {timeout}s (last: {last})\n{tail}")


def wait_redis(port: int, proc: Proc, timeout: float = 10.0, password: str | None = None) -> None:
    """Wait until the Redis on ``port`` answers PING (fails early, with its log, if it exits)."""
    import redis

    client = redis.Redis(port=port, password=password)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or not proc.alive():
                    raise RuntimeError(proc.log()) from None
                time.sleep(0.05)
    finally:
        client.close()


@contextlib.contextmanager
def running(proc: Proc) -> Iterator[Proc]:
    try:
        yield proc
    finally:
        proc.stop()


def cli(*args: str) -> list[str]:
    return [PYTHON, "-m", "agent_service.cli", *args]


def redis_args(binary: str, port: int, data_dir: Path, aof: bool = False) -> list[str]:
    """A private ``redis-server`` on loopback: no RDB snapshots, AOF when asked, no eviction."""
    return [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "yes" if aof else "no",
        "--maxmemory-policy",
        "noeviction",
    ]


def chroma_args(data_dir: Path, port: int) -> list[str]:
    """A real Chroma server (``chroma run``, the Rust server shipped in the ``chromadb``
    package) on loopback; ready when ``/api/v2/heartbeat`` answers."""
    binary = Path(PYTHON).with_name("chroma")
    return [str(binary), "run", "--path", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
