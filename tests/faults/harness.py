"""What the fault tests share: workers started together, metric reads, waits, load.

Everything here drives real processes (``tests.integration.stack``, which also writes their
agent configs); nothing is faked.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from celery import Celery

from tests.integration.stack import StackEnv, metric_value, wait_for_file
from tests.procs import Proc, free_port

TERMINAL = {"succeeded", "failed", "cancelled"}
BRPOP_TIMEOUT_SECONDS = 1  # kombu's Redis transport default


@dataclass
class Worker:
    proc: Proc
    metrics_port: int
    ready_file: Path | None = None

    def metric(self, sample: str, **labels: str) -> float:
        return metric_value(self.metrics_port, sample, **labels)


def start_workers(
    env: StackEnv, count: int, *, launch_only: bool = False, **more: str
) -> list[Worker]:
    """``count`` workers started at once (LiteLLM's import makes each take seconds); with
    ``launch_only``, not waited for (``wait_ready`` does)."""
    launched = []
    for _ in range(count):
        port = free_port()
        proc, ready = env.launch_worker(AGENT_METRICS_PORT=str(port), **more)
        launched.append(Worker(proc, port, ready))
    if not launch_only:
        for worker in launched:
            wait_ready(worker)
    return launched


def wait_ready(worker: Worker) -> None:
    assert worker.ready_file is not None
    wait_for_file(worker.proc, worker.ready_file, timeout=90)


@dataclass
class Stack:
    """An API process and one worker on ``env``."""

    env: StackEnv
    api: Proc
    url: str
    worker: Worker


@contextmanager
def running_stack(env: StackEnv) -> Iterator[Stack]:
    """Start an API and a worker on ``env``; stop both on exit."""
    api, url = env.start_api()
    workers: list[Worker] = []
    try:
        workers = start_workers(env, 1)
        yield Stack(env, api, url, workers[0])
    finally:
        for worker in workers:
            worker.proc.stop()
        api.stop()


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


def worker_hostname(worker: Worker) -> str:
    """The Celery node name ``worker.main`` gives the process (for remote control)."""
    return f"agent-worker-{worker.proc.pid}@{socket.gethostname()}"


def set_consuming(env: StackEnv, worker: Worker, consuming: bool) -> None:
    """Make ``worker`` stop (or start again) taking messages from the stack's queue, with
    Celery's own remote control (``cancel_consumer`` / ``add_consumer``): the worker stays
    alive, renews its lease and sweeps, but takes no task meanwhile."""
    app = Celery("fault-control", broker=env.redis_url, set_as_current=False)
    try:
        command = app.control.add_consumer if consuming else app.control.cancel_consumer
        replies = command(env.queue, destination=[worker_hostname(worker)], reply=True, timeout=10)
        assert replies, f"{worker_hostname(worker)} did not answer the control command"
    finally:
        app.close()
    if not consuming:
        # kombu applies a cancel once the BRPOP in flight returns (at most its 1 s timeout):
        # until then the worker may still take one message.
        time.sleep(BRPOP_TIMEOUT_SECONDS + 1)
