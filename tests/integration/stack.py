"""Real API and worker processes for integration tests (each on its own queue and key prefix)."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

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


def wait_record(
    client: httpx.Client,
    task_id: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 30,
) -> dict[str, Any]:
    """Poll the task's record until ``done(record)``; ``TimeoutError`` with the last one."""
    deadline = time.monotonic() + timeout
    record: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = client.get(f"/v1/tasks/{task_id}")
        assert resp.status_code == 200, resp.text
        record = resp.json()
        if done(record):
            return record
        time.sleep(0.05)
    raise TimeoutError(f"task {task_id} not as awaited after {timeout}s: {record}")


def wait_task(
    client: httpx.Client, task_id: str, statuses: set[str], timeout: float = 30
) -> dict[str, Any]:
    return wait_record(client, task_id, lambda record: record["status"] in statuses, timeout)


def metric_value(port: int, sample: str, **labels: str) -> float:
    """The sum of the samples named ``sample`` whose labels include ``labels`` (0 if none), from
    the /metrics of the process on ``port``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            if item.name == sample and all(item.labels.get(k) == v for k, v in labels.items()):
                total += item.value
    return total


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


def model(
    name: str,
    api_base: str,
    *,
    provider_model: str | None = None,
    timeout: float = 10.0,
    fallbacks: Iterable[str] = (),
) -> dict[str, Any]:
    """One entry of an agent config's ``models`` (the simulator sees ``provider_model``)."""
    spec: dict[str, Any] = {
        "name": name,
        "model": f"openai/{provider_model or name}",
        "apiBase": api_base,
        "inputCostPer1K": 0.001,
        "outputCostPer1K": 0.002,
        "timeoutSeconds": timeout,
    }
    if fallbacks:
        spec["fallbacks"] = list(fallbacks)
    return spec


def write_agent_config(
    path: Path,
    models: list[dict[str, Any]],
    *,
    max_retries: int = 0,
    limits: Mapping[str, Any] | None = None,
    tools: Mapping[str, Any] | None = None,
) -> Path:
    """An agent config file of ``model`` entries; the first model is the default. Retries are
    off unless asked: a fault test wants to see the fallback, not a lucky retry."""
    doc: dict[str, Any] = {
        "defaultModel": models[0]["name"],
        "models": models,
        "retry": {
            "maxRetries": max_retries,
            "backoffInitialSeconds": 0.01,
            "backoffMaxSeconds": 0.05,
        },
    }
    if limits:
        doc["limits"] = dict(limits)
    if tools:
        doc["tools"] = dict(tools)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def write_config(
    path: Path,
    models: Mapping[str, str],
    fallbacks: Mapping[str, list[str]] | None = None,
    **limits: Any,
) -> Path:
    """A config file with one model per (name -> simulator URL); the first is the default."""
    specs = [
        model(name, url, timeout=20, fallbacks=(fallbacks or {}).get(name, ()))
        for name, url in models.items()
    ]
    return write_agent_config(path, specs, max_retries=1, limits=limits)
