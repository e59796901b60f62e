"""A worker dies (SIGKILL) or is stopped (SIGTERM) while it holds runs, under load.

Two workers consume one queue; one of them is hit while its slots are full. SIGKILL: every
accepted task still ends ``succeeded``, the killed worker's runs come back after the visibility
timeout with ``attempts: 2`` (counted by the surviving worker's redelivery metric). SIGTERM:
Celery's warm shutdown lets the in-flight runs finish, so none needs a second delivery.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import RedisServer, SimFactory
from tests.faults.harness import Worker, start_workers, submit_many, wait_terminal, wait_until
from tests.integration.stack import StackEnv, model, parse_sse, write_agent_config

pytestmark = pytest.mark.faults

RUN_SECONDS = 1.0  # the simulator's latency: one LLM call per run
SLOTS = 6
VISIBILITY = 6  # seconds before a dead worker's messages are delivered again
TASKS = 8 * SLOTS


@pytest.fixture(scope="module")
def stack_env(
    redis_server: RedisServer,
    sim_factory: SimFactory,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> StackEnv:
    sim = sim_factory("--ttft", str(RUN_SECONDS))
    config = write_agent_config(
        tmp_path_factory.mktemp("faults-worker") / "agent.yaml",
        [model("sim", sim.url)],
        limits={"runTimeoutSeconds": VISIBILITY - 1},
    )
    return StackEnv(
        redis_server.url,
        sim.url,
        log_dir,
        extra={
            "AGENT_CONFIG_FILE": str(config),
            "AGENT_WORKER_CONCURRENCY": str(SLOTS),
            "AGENT_WORKER_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY),
        },
    )


def _running_attempts(client: httpx.Client, task_id: str) -> list[int]:
    events = parse_sse(client.get(f"/v1/tasks/{task_id}/events", timeout=15).text)
    return [
        e["data"]["attempt"]
        for e in events
        if e["event"] == "status" and e["data"]["status"] == "running"
    ]


def _nothing_left_in_broker(redis_url: str, queue: str) -> bool:
    broker = redis.Redis.from_url(redis_url)
    try:
        unacked = [json.loads(raw)[2] for raw in broker.hvals("unacked")]
        return broker.llen(queue) == 0 and queue not in unacked
    finally:
        broker.close()


def _wait_broker_empty(stack_env: StackEnv) -> None:
    wait_until(
        lambda: _nothing_left_in_broker(stack_env.redis_url, stack_env.queue),
        "an empty queue and no unacknowledged message",
        timeout=15,
    )


@contextmanager
def _two_busy_workers(
    stack_env: StackEnv, client: httpx.Client, role: str
) -> Iterator[tuple[Worker, Worker, list[str]]]:
    """Two workers and ``TASKS`` submitted, once the first (the ``role`` worker, the one a test
    hits) holds at least half its slots; both workers stopped on exit."""
    target, other = start_workers(stack_env, 2)
    try:
        ids = submit_many(client, TASKS)
        # Both workers' slots fill up: the target holds runs that never finish there.
        wait_until(
            lambda: target.metric("agent_worker_tasks_in_progress") >= SLOTS // 2,
            f"the {role} worker holding runs",
            timeout=30,
        )
        yield target, other, ids
    finally:
        for worker in (target, other):
            worker.proc.stop()


def test_sigkill_under_load_loses_no_task_and_counts_the_redelivery(
    stack_env: StackEnv, client: httpx.Client
) -> None:
    with _two_busy_workers(stack_env, client, "victim") as (victim, survivor, ids):
        victim.proc.signal(signal.SIGKILL)
        victim.proc.popen.wait(timeout=10)
        records = wait_terminal(client, ids, timeout=90)
        statuses = {r["status"] for r in records.values()}
        assert statuses == {"succeeded"}, [r for r in records.values() if r["error"]][:3]
        redelivered = sorted(t for t, r in records.items() if r["attempts"] > 1)
        assert redelivered, "no run was in flight on the killed worker"
        assert max(r["attempts"] for r in records.values()) == 2
        # The survivor counted each second delivery, and the records show both attempts.
        assert survivor.metric(
            "agent_task_redeliveries_total", queue=stack_env.queue, reason="worker_lost"
        ) == len(redelivered)
        for task_id in redelivered:
            assert _running_attempts(client, task_id) == [1, 2]
        _wait_broker_empty(stack_env)


def test_sigterm_lets_in_flight_runs_finish(stack_env: StackEnv, client: httpx.Client) -> None:
    with _two_busy_workers(stack_env, client, "stopping") as (stopping, _, ids):
        stopping.proc.signal(signal.SIGTERM)
        # Warm shutdown: no new message, the runs in hand finish, then the process exits.
        # The bound stands for a pod's termination grace period.
        code = stopping.proc.popen.wait(timeout=30)
        assert code == 0, stopping.proc.log()[-3000:]
        records = wait_terminal(client, ids, timeout=90)
        assert {r["status"] for r in records.values()} == {"succeeded"}
        # Finished, not redelivered: no run needed a second attempt.
        assert {r["attempts"] for r in records.values()} == {1}
        assert "run succeeded" in stopping.proc.log()
        _wait_broker_empty(stack_env)
