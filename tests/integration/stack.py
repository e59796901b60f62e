"""Real API and worker processes for integration tests (each on its own queue and key prefix)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.procs import Proc, base_env, cli, free_port, wait_http


@dataclass
class StackEnv:
    """Environment shared by the API and the workers of one test stack."""

    redis_url: str
    sim_url: str
    log_dir: Path
    extra: dict[str, str] = field(default_factory=dict)
    queue: str = field(default_factory=lambda: f"q-{uuid.uuid4().hex[:8]}")

    def env(self, **more: str) -> dict[str, str]:
        return base_env(
            {
                "AGENT_REDIS_URL": self.redis_url,
                "AGENT_SIM_URL": self.sim_url,
                "AGENT_WORKER_QUEUE": self.queue,
                "AGENT_REDIS_KEY_PREFIX": f"{self.queue}:",
                **self.extra,
                **more,
            }
        )

    def start_api(self, **more: str) -> tuple[Proc, str]:
        port = free_port()
        more.setdefault("AGENT_METRICS_PORT", str(free_port()))
        env = self.env(AGENT_API_PORT=str(port), AGENT_API_HOST="127.0.0.1", **more)
        proc = Proc(f"api-{port}", cli("api"), env, self.log_dir)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/readyz", proc, timeout=60)
        return proc, url

    def start_worker(self, **more: str) -> Proc:
        proc, ready = self.launch_worker(**more)
        wait_for_file(proc, ready, timeout=60)
        return proc

    def launch_worker(self, **more: str) -> tuple[Proc, Path]:
        """Start a worker without waiting: the process and the ready file it will create (so
        several workers can start at once; ``wait_for_file`` waits for each)."""
        name = f"worker-{uuid.uuid4().hex[:6]}"
        ready = Path(more.get("AGENT_WORKER_READY_FILE") or self.log_dir / f"{name}.ready")
        more.setdefault("AGENT_WORKER_READY_FILE", str(ready))
        more.setdefault("AGENT_METRICS_PORT", str(free_port()))
        return Proc(name, cli("worker"), self.env(**more), self.log_dir), ready


def secured_env(
    redis_url: str, sim_url: str, log_dir: Path, root: Path, keys: Mapping[str, str], **extra: str
) -> StackEnv:
    """A stack with authentication on: ``keys`` (tenant -> key) in a keys file under ``root``."""
    lines = "\n".join(f"  - {{tenant: {tenant}, key: {key}}}" for tenant, key in keys.items())
    path = root / "keys.yaml"
    path.write_text(f"keys:\n{lines}\n")
    return StackEnv(
        redis_url,
        sim_url,
        log_dir,
        extra={"AGENT_AUTH_ENABLED": "true", "AGENT_AUTH_KEYS_FILE": str(path), **extra},
    )


def wait_for_file(proc: Proc, path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.log()[-4000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{proc.name}: {path} not created in {timeout}s:\n{proc.log()[-4000:]}"
            )
        time.sleep(0.1)


def wait_for_log(proc: Proc, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in proc.log():
            return
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.log()[-4000:]}")
        time.sleep(0.1)
    raise TimeoutError(f"{proc.name}: {needle!r} not logged in {timeout}s:\n{proc.log()[-4000:]}")


def wait_task(
    client: httpx.Client, task_id: str, statuses: set[str], timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    record: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = client.get(f"/v1/tasks/{task_id}")
        assert resp.status_code == 200, resp.text
        record = resp.json()
        if record["status"] in statuses:
            return record
        time.sleep(0.05)
    raise TimeoutError(f"task {task_id} still {record.get('status')} after {timeout}s: {record}")


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Parse an SSE body into [{'id', 'event', 'data'}] (comments skipped)."""
    events = []
    for block in text.split("\n\n"):
        item: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":") or not line:
                continue
            key, _, value = line.partition(": ")
            item[key] = json.loads(value) if key == "data" else value
        if item:
            events.append(item)
    return events


def write_config(
    path: Path,
    models: Mapping[str, str],
    fallbacks: Mapping[str, list[str]] | None = None,
    **limits: Any,
) -> Path:
    """A config file with one model per (name -> simulator URL); the first is the default."""
    names = list(models)
    lines = [f"defaultModel: {names[0]}", "models:"]
    for name, url in models.items():
        lines += [
            f"  - name: {name}",
            f"    model: openai/{name}",
            f"    apiBase: {url}",
            "    inputCostPer1K: 0.001",
            "    outputCostPer1K: 0.002",
            "    timeoutSeconds: 20",
        ]
        if fallbacks and name in fallbacks:
            lines.append(f"    fallbacks: {json.dumps(fallbacks[name])}")
    lines.append("retry: {maxRetries: 1, backoffInitialSeconds: 0.01, backoffMaxSeconds: 0.05}")
    if limits:
        lines.append("limits: " + json.dumps(limits))
    path.write_text("\n".join(lines) + "\n")
    return path
