"""A worker dies with runs in hand: they come back in seconds, not after the visibility timeout.

Fast reclaim: a worker holding 50 runs is SIGKILLed; the survivor sees its lease run out and
puts its messages back at once (lease 5 s, a sweep every second; the visibility timeout is
120 s, so nothing here can be kombu's own redelivery). The loss window: a worker SIGKILLs
itself between ``BRPOP`` and recording the message as unacknowledged (the test-only fault
point ``AGENT_FAULT_KILL_AFTER_POP``); the lost-message sweeper queues the task again and it
succeeds. Both assert that every accepted task ends ``succeeded``: none lost.

The survivor is told not to consume (Celery's remote control) while a victim takes the work,
so the victim holds exactly what the test says; it keeps renewing its lease and sweeping.
"""

from __future__ import annotations

import datetime
import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import RedisServer, SimFactory
from tests.faults.harness import (
    Worker,
    set_consuming,
    start_workers,
    submit_many,
    wait_ready,
    wait_terminal,
    wait_until,
)
from tests.integration.stack import StackEnv, model, write_agent_config

# Three workers start in the module's first test (LiteLLM's import: seconds each).
pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

RUN_SECONDS = 6.0  # the simulator's latency: a run is still going when its worker is killed
LEASE = 5
SWEEP = 1
VISIBILITY = 120
HELD = 50


@pytest.fixture(scope="module")
def stack_env(
    redis_server: RedisServer,
    sim_factory: SimFactory,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> StackEnv:
    sim = sim_factory("--ttft", str(RUN_SECONDS))
    config = write_agent_config(
        tmp_path_factory.mktemp("faults-reclaim") / "agent.yaml",
        [model("sim", sim.url, timeout=30)],
        limits={"runTimeoutSeconds": 60},
    )
    return StackEnv(
        redis_server.url,
        sim.url,
        log_dir,
        extra={
            "AGENT_CONFIG_FILE": str(config),
            "AGENT_WORKER_CONCURRENCY": str(HELD),
            "AGENT_WORKER_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY),
            "AGENT_WORKER_LEASE_SECONDS": str(LEASE),
            "AGENT_WORKER_RECLAIM_INTERVAL_SECONDS": str(SWEEP),
            "AGENT_WORKER_LOST_AFTER_SECONDS": "2",
        },
    )


@dataclass
class Workers:
    survivor: Worker
    victim: Worker
    """Holds the runs of the fast-reclaim test, then is SIGKILLed."""
    faulty: Worker
    """Runs with the fault point: dies on the first message it takes."""


@pytest.fixture(scope="module")
def workers(stack_env: StackEnv) -> Iterator[Workers]:
    """Three workers started at once (each takes seconds: LiteLLM's import); only the victim
    consumes until a test says otherwise."""
    started = start_workers(stack_env, 2, launch_only=True)
    started += start_workers(stack_env, 1, AGENT_FAULT_KILL_AFTER_POP="1", launch_only=True)
    try:
        for worker in started:
            wait_ready(worker)
        survivor, victim, faulty = started
        for idle in (survivor, faulty):
            set_consuming(stack_env, idle, consuming=False)
        yield Workers(survivor, victim, faulty)
    finally:
        for worker in started:
            worker.proc.stop()


def _logged_at(worker: Worker, *needles: str) -> float | None:
    """The wall-clock time of the first log line of ``worker`` containing all ``needles``."""
    for line in worker.proc.log().splitlines():
        if all(needle in line for needle in needles):
            stamp = json.loads(line)["timestamp"]
            return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return None


def _attempts(client: httpx.Client, ids: list[str]) -> list[int]:
    return [client.get(f"/v1/tasks/{t}").json()["attempts"] for t in ids]


def test_a_killed_workers_runs_finish_on_another_within_lease_and_a_sweep(
    stack_env: StackEnv, client: httpx.Client, workers: Workers
) -> None:
    survivor, victim = workers.survivor, workers.victim
    try:
        ids = submit_many(client, HELD, "reclaim {i}")
        wait_until(
            lambda: victim.metric("agent_worker_tasks_in_progress") == HELD,
            f"the victim holding {HELD} runs",
            timeout=30,
        )
        set_consuming(stack_env, survivor, consuming=True)
        victim.proc.signal(signal.SIGKILL)
        killed, killed_at = time.monotonic(), time.time()
        victim.proc.popen.wait(timeout=10)
        swept = f"-{victim.proc.pid}-"  # in the victim's lease name (worker.liveness)
        live = (survivor, workers.faulty)  # any live worker sweeps, consuming or not
        wait_until(
            lambda: any(_logged_at(w, "lost its lease", swept) for w in live),
            "a live worker putting the runs back",
            timeout=VISIBILITY / 4,
        )
        reclaimed = (
            min(t for w in live if (t := _logged_at(w, "lost its lease", swept))) - killed_at
        )
        wait_until(
            lambda: all(n == 2 for n in _attempts(client, ids)),
            "every run started again on the survivor",
            timeout=VISIBILITY / 4,
            interval=0.1,
        )
        restarted = time.monotonic() - killed
        records = wait_terminal(client, ids, timeout=60)
        finished = time.monotonic() - killed
    finally:
        victim.proc.stop()
        set_consuming(stack_env, survivor, consuming=False)
    assert {r["status"] for r in records.values()} == {"succeeded"}
    assert {r["attempts"] for r in records.values()} == {2}
    assert (
        survivor.metric(
            "agent_task_redeliveries_total", queue=stack_env.queue, reason="worker_lost"
        )
        >= HELD
    )
    print(
        f"\nfast reclaim: the {HELD} runs of a SIGKILLed worker were back on the queue "
        f"{reclaimed:.1f} s after the kill and all restarted on another worker after "
        f"{restarted:.1f} s (lease {LEASE} s, sweep every {SWEEP} s, visibility timeout "
        f"{VISIBILITY} s); all finished {finished:.1f} s after it (runs take "
        f"{RUN_SECONDS:.0f} s); lost: 0"
    )


def test_a_worker_killed_between_pop_and_record_loses_no_task(
    stack_env: StackEnv, client: httpx.Client, workers: Workers
) -> None:
    survivor, victim = workers.survivor, workers.faulty
    set_consuming(stack_env, victim, consuming=True)
    try:
        (lost,) = submit_many(client, 1, "taken and lost")
        assert victim.proc.popen.wait(timeout=30) == -signal.SIGKILL
        assert "AGENT_FAULT_KILL_AFTER_POP" in victim.proc.log()
        # The message is in neither the queue nor the unacked records: only the sweeper
        # can bring it back.
        assert client.get(f"/v1/tasks/{lost}").json()["status"] == "queued"
        set_consuming(stack_env, survivor, consuming=True)
        others = submit_many(client, 10, "after the kill {i}")
        records = wait_terminal(client, [lost, *others], timeout=60)
    finally:
        victim.proc.stop()
        set_consuming(stack_env, survivor, consuming=False)
    assert {r["status"] for r in records.values()} == {"succeeded"}
    # Never started by the killed worker: the replacement's run is the first attempt.
    assert records[lost]["attempts"] == 1
    assert "queued again" in survivor.proc.log()
