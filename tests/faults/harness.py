"""What the fault tests share: agent configs, workers started together, metric reads, load.

Everything here drives real processes (``tests.integration.stack``); nothing is faked.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.stack import StackEnv, wait_for_file
from tests.procs import Proc, free_port

TERMINAL = {"succeeded", "failed", "cancelled"}


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
    """An agent config file; the first model is the default. Retries are off unless asked:
    a fault test wants to see the fallback, not a lucky retry."""
    doc: dict[str, Any] = {
        "defaultModel": models[0]["name"],
        "models": models,
        "retry": {"maxRetries": max_retries, "backoffInitialSeconds": 0.01,
                  "backoffMaxSeconds": 0.05},
    }  # fmt: skip
    if limits:
        doc["limits"] = dict(limits)
    if tools:
        doc["tools"] = dict(tools)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@dataclass
class Worker:
    proc: Proc
    metrics_port: int

    def metric(self, sample: str, **labels: str) -> float:
        return metric_value(self.metrics_port, sample, **labels)


def start_workers(env: StackEnv, count: int, **more: str) -> list[Worker]:
    """``count`` workers started at once (LiteLLM's import makes each take seconds)."""
    launched = []
    for _ in range(count):
        port = free_port()
        proc, ready = env.launch_worker(AGENT_METRICS_PORT=str(port), **more)
        launched.append((Worker(proc, port), ready))
    for worker, ready in launched:
        wait_for_file(worker.proc, ready, timeout=90)
    return [worker for worker, _ in launched]


def metric_value(port: int, sample: str, **labels: str) -> float:
    """The sum of the samples named ``sample`` whose labels include ``labels`` (0 if none)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for item in family.samples:
            if item.name == sample and all(item.labels.get(k) == v for k, v in labels.items()):
                total += item.value
    return total


def wait_until(check: Any, what: str, timeout: float, interval: float = 0.05) -> None:
    """Poll ``check()`` until it is true; ``TimeoutError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout} s")
        time.sleep(interval)


def submit_many(client: httpx.Client, count: int, message: str = "hello number {i}") -> list[str]:
    ids = []
    for i in range(count):
        resp = client.post("/v1/tasks", json={"message": message.format(i=i)})
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["task_id"])
    return ids


def wait_terminal(
    client: httpx.Client, ids: Iterable[str], timeout: float
) -> dict[str, dict[str, Any]]:
    """Every task's record once all are terminal; ``AssertionError`` listing the stragglers."""
    pending = set(ids)
    records: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for task_id in list(pending):
            resp = client.get(f"/v1/tasks/{task_id}")
            assert resp.status_code == 200, resp.text
            record = resp.json()
            if record["status"] in TERMINAL:
                records[task_id] = record
                pending.discard(task_id)
        if pending:
            time.sleep(0.2)
    stuck = {t: client.get(f"/v1/tasks/{t}").json()["status"] for t in sorted(pending)[:10]}
    assert not pending, f"{len(pending)} accepted tasks never ended (first: {stuck})"
    return records


@dataclass
class Outcome:
    """One request of a ``Load``: when it was sent, how it ended."""

    sent: float
    status: int | None  # None: no HTTP answer (timeout, connection error)
    retry_after: str | None = None
    task_id: str | None = None
    error: str | None = None


@dataclass
class Load:
    """Submits tasks from a thread, one every ``interval`` seconds, until ``stop()``."""

    url: str
    interval: float = 0.02
    timeout: float = 10.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Load:
        self._thread = threading.Thread(target=self._run, name="fault-load", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=self.timeout + 5)
        return self.outcomes

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=self.timeout) as client:
            i = 0
            while not self._stop.is_set():
                sent = time.monotonic()
                self.outcomes.append(self._one(client, sent, i))
                i += 1
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - sent)))

    @staticmethod
    def _one(client: httpx.Client, sent: float, i: int) -> Outcome:
        try:
            resp = client.post("/v1/tasks", json={"message": f"load number {i}"})
        except httpx.HTTPError as exc:
            return Outcome(sent, None, error=f"{type(exc).__name__}: {exc}")
        task_id = resp.json().get("task_id") if resp.status_code == 202 else None
        return Outcome(sent, resp.status_code, resp.headers.get("retry-after"), task_id)

    def accepted(self) -> list[str]:
        return [o.task_id for o in self.outcomes if o.status == 202 and o.task_id]
