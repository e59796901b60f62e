"""``agent-service up``: the whole local stack in the foreground.

Starts redis-server (unless ``AGENT_REDIS_URL`` is given), the LLM simulator, the API and one
worker as child processes; waits for ``/readyz``; prints the URLs; stops every child, in reverse
order, on Ctrl-C, SIGTERM or when any child dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from agent_service.config import Settings

STOP_TIMEOUT_SECONDS = 20.0
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the launcher dies (Linux), so none is orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class _Child:
    def __init__(self, name: str, args: Sequence[str], env: dict[str, str]) -> None:
        self.name = name
        # A session of its own: Ctrl-C reaches only the launcher, which stops children in order.
        self.popen = subprocess.Popen(
            list(args), env=env, start_new_session=True, preexec_fn=_die_with_parent
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if not self.alive():
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


class _Stack:
    def __init__(self) -> None:
        self.children: list[_Child] = []

    def start(self, name: str, args: Sequence[str], env: dict[str, str]) -> _Child:
        child = _Child(name, args, env)
        self.children.append(child)
        return child

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()

    def dead(self) -> _Child | None:
        return next((c for c in self.children if not c.alive()), None)


def _wait(check: object, what: str, stack: _Stack, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        dead = stack.dead()
        if dead is not None:
            raise RuntimeError(f"{dead.name} exited with code {dead.popen.returncode}")
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not become ready within {timeout:.0f} s")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310  # our own loopback URL
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _redis_ok(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "agent_service.cli", *args]


def run_local_stack(settings: Settings, api_port: int, sim_port: int, sim_ttft: float) -> int:
    """Run the stack until interrupted; returns the exit code."""
    redis_given = "url" in settings.redis.model_fields_set
    if not redis_given and shutil.which("redis-server") is None:
        print(
            "redis-server not found: install it (sudo apt-get install redis-server) "
            "or set AGENT_REDIS_URL to a running Redis.",
            file=sys.stderr,
        )
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="agent-service-up-"))
    stack = _Stack()
    stopping = False

    def _on_signal(signum: int, _: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONUNBUFFERED="1")
    try:
        if redis_given:
            redis_url = settings.redis.url
        else:
            redis_port = free_port()
            stack.start(
                "redis",
                [
                    "redis-server",
                    "--port",
                    str(redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--dir",
                    str(workdir),
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--maxmemory-policy",
                    "noeviction",
                    "--loglevel",
                    "warning",
                ],
                env,
            )
            _wait(lambda: _redis_ok(redis_port), "redis-server", stack, 20)
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
        sim_port = sim_port or free_port()
        stack.start(
            "sim-llm", _cli("sim-llm", "--port", str(sim_port), "--ttft", str(sim_ttft)), env
        )
        _wait(lambda: _http_ok(f"http://127.0.0.1:{sim_port}/v1/models"), "simulator", stack, 30)
        env.update(
            AGENT_REDIS_URL=redis_url,
            AGENT_SIM_URL=f"http://127.0.0.1:{sim_port}/v1",
            AGENT_API_PORT=str(api_port),
            AGENT_API_HOST="127.0.0.1",
        )
        stack.start("api", _cli("api"), env)
        stack.start("worker", _cli("worker"), env)
        base = f"http://127.0.0.1:{api_port}"
        _wait(lambda: _http_ok(f"{base}/readyz"), "api", stack, 90)
        _banner(base, redis_url, sim_port, settings)
        while not stopping:
            dead = stack.dead()
            if dead is not None:
                print(
                    f"agent-service up: {dead.name} exited ({dead.popen.returncode}); stopping",
                    file=sys.stderr,
                )
                return 1
            time.sleep(0.3)
        return 0
    except RuntimeError as exc:
        print(f"agent-service up: {exc}", file=sys.stderr)
        return 1
    finally:
        print("agent-service up: stopping", file=sys.stderr)
        stack.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(workdir)


def _banner(base: str, redis_url: str, sim_port: int, settings: Settings) -> None:
    config = str(settings.config.file) if settings.config.file else "built-in (LLM simulator)"
    print(
        f"""
agent-service is up
  API        {base}   (docs: {base}/docs)
  Redis      {redis_url}
  simulator  http://127.0.0.1:{sim_port}/v1
  config     {config}

  curl -s {base}/v1/chat -H 'content-type: application/json' -d '{{"message":"what is 12*(3+4)?"}}'
  curl -s {base}/v1/tasks -H 'content-type: application/json' -d '{{"message":"what is 12*(3+4)?"}}'
  curl -s {base}/v1/tasks/TASK_ID

Ctrl-C stops everything.
""",
        flush=True,
    )
