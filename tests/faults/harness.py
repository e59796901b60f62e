"""What the fault tests share: workers started together, metric reads, waits, load.

Everything here drives real processes (``tests.integration.stack``, which also writes their
agent configs); nothing is faked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.integration.stack import StackEnv, metric_value, wait_for_file
from tests.procs import Proc, free_port

TERMINAL = {"succeeded", "failed", "cancelled"}


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


def wait_until(check: Any, what: str, timeout: float, interval: float = 0.05) -> None:
    """Poll ``check()`` until it is true; ``TimeoutError`` naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout} s")
        time.sleep(interval)


def submit_many(
    client: httpx.Client, count: int, message: str = "hello number {i}", **body: Any
) -> list[str]:
    """``count`` tasks (``message`` formatted with their number, ``body`` the other fields)."""
    ids = []
    for i in range(count):
        resp = client.post("/v1/tasks", json={"message": message.format(i=i), **body})
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
