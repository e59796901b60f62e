"""Redis restarts (AOF on) while tasks are being submitted and run.

While Redis is down the API answers 503 with ``Retry-After`` (never a timeout or a 500) and
reports not ready; once Redis is back, the same API process accepts tasks again, the same
worker process resumes consuming (Celery's "alive but no longer consuming after a reconnect"
failure would leave tasks queued forever here), and every task accepted before, during or
after the outage ends ``succeeded``. One API and one worker live through every restart of the
module: each test's outage is one more reconnect for them.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import SimFactory, start_redis
from tests.faults.harness import Load, Worker, start_workers, submit_many, wait_terminal, wait_until
from tests.integration.stack import StackEnv, model, write_agent_config
from tests.procs import Proc, free_port

pytestmark = pytest.mark.faults

OUTAGE_SECONDS = 3.0
VISIBILITY = 6  # seconds: how soon the runs Redis interrupted come back


@dataclass
class RestartableRedis:
    """A redis-server with AOF that can be stopped and started again on its port and data."""

    log_dir: Path
    data_dir: Path
    port: int
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = start_redis(self.log_dir, self.data_dir, port=self.port, aof=True).proc

    def stop(self) -> None:
        """SIGTERM: a clean restart (the AOF is flushed on the way down)."""
        assert self.proc is not None
        self.proc.signal(signal.SIGTERM)
        self.proc.popen.wait(timeout=10)
        self.proc.stop()


@dataclass
class Stack:
    redis: RestartableRedis
    env: StackEnv
    api: Proc
    url: str
    worker: Worker
    heartbeat: Path


@pytest.fixture(scope="module")
def stack(
    sim_factory: SimFactory, log_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("faults-redis")
    (work / "redis").mkdir()
    server = RestartableRedis(log_dir, work / "redis", free_port())
    server.start()
    fast, slow = sim_factory("--ttft", "0.3"), sim_factory("--ttft", "2.0")
    config = write_agent_config(
        work / "agent.yaml",
        [model("sim", fast.url), model("slow", slow.url)],
        limits={"runTimeoutSeconds": VISIBILITY - 2},
    )
    env = StackEnv(
        server.url,
        fast.url,
        log_dir,
        extra={
            "AGENT_CONFIG_FILE": str(config),
            "AGENT_WORKER_CONCURRENCY": "16",
            "AGENT_WORKER_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY),
            # Fail fast while Redis is away, as a pod would configure it.
            "AGENT_REDIS_SOCKET_TIMEOUT_SECONDS": "1",
        },
    )
    heartbeat = work / "worker.heartbeat"
    api, url = env.start_api()
    workers: list[Worker] = []
    try:
        workers = start_workers(env, 1, AGENT_WORKER_HEARTBEAT_FILE=str(heartbeat))
        yield Stack(server, env, api, url, workers[0], heartbeat)
    finally:
        for worker in workers:
            worker.proc.stop()
        api.stop()
        if server.proc is not None:
            server.proc.stop()


def _broker_state(url: str, queue: str) -> dict[str, object]:
    """What kombu keeps in Redis for the queue (to explain a stuck task)."""
    broker = redis.Redis.from_url(url)
    try:
        return {
            "waiting": broker.llen(queue),
            "unacked": broker.hlen("unacked"),
            "unacked_index": broker.zcard("unacked_index"),
            "restore_mutex_ttl": broker.ttl("unacked_mutex"),
        }
    finally:
        broker.close()


def _ready_status(url: str) -> httpx.Response:
    return httpx.get(f"{url}/readyz", timeout=10)


def _wait_all_succeeded(stack: Stack, ids: list[str]) -> dict[str, dict[str, object]]:
    with httpx.Client(base_url=stack.url, timeout=15) as client:
        try:
            records = wait_terminal(client, ids, timeout=60)
        except AssertionError as exc:
            state = _broker_state(stack.redis.url, stack.env.queue)
            raise AssertionError(f"{exc}; broker: {state}") from exc
    bad = [(t, r["status"], r["attempts"], r["error"]) for t, r in records.items()]
    bad = [b for b in bad if b[1] != "succeeded"]
    assert not bad, f"{len(bad)} of {len(ids)} accepted tasks did not succeed: {bad}"
    return records


def test_redis_restart_under_load_loses_no_accepted_task(stack: Stack) -> None:
    load = Load(stack.url, interval=0.03).start()
    try:
        wait_until(lambda: len(load.accepted()) >= 30, "tasks accepted before the outage", 20)
        stack.redis.stop()
        down_at = time.monotonic()
        wait_until(lambda: _ready_status(stack.url).status_code == 503, "/readyz 503", 10)
        not_ready = _ready_status(stack.url)
        assert not_ready.headers.get("retry-after"), not_ready.headers
        assert not_ready.json()["redis"] == "unreachable"
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))

        stack.redis.start()
        up_at, up_wall = time.monotonic(), time.time()
        wait_until(lambda: _ready_status(stack.url).status_code == 200, "/readyz 200", 15)
        wait_until(
            lambda: any(o.status == 202 and o.sent > up_at for o in load.outcomes),
            "a task accepted after the restart",
            15,
        )
        time.sleep(2.0)  # keep submitting a little after recovery
    finally:
        outcomes = load.stop()

    answered = {o.status for o in outcomes}
    failures = [o for o in outcomes if o.status not in (202, 503)]
    assert not failures, f"not 202/503 (timeouts, 500s): {failures[:5]}"
    refused = [o for o in outcomes if o.status == 503]
    assert refused, f"no 503 while Redis was down: {answered}"
    assert all(o.retry_after for o in refused), "a 503 without Retry-After"
    assert stack.api.alive(), "the API died with Redis"
    assert stack.worker.proc.alive(), f"the worker died:\n{stack.worker.proc.log()[-3000:]}"

    _wait_all_succeeded(stack, load.accepted())
    # The consumer loop beats after the restart (the liveness probe reads this file).
    wait_until(lambda: stack.heartbeat.stat().st_mtime > up_wall, "a heartbeat after restart", 15)


def test_runs_cut_off_by_a_redis_restart_are_delivered_again_not_failed(stack: Stack) -> None:
    # Redis restarts while runs wait on the LLM: their next writes meet connections the
    # restart closed. That is an outage, not the runs' failure: they must be run again.
    with httpx.Client(base_url=stack.url, timeout=15) as client:
        slow = submit_many(client, 8, "slow {i}", model="slow")
        wait_until(
            lambda: all(client.get(f"/v1/tasks/{t}").json()["status"] == "running" for t in slow),
            "the slow runs started",
            15,
        )
    stack.redis.stop()
    stack.redis.start()
    wait_until(lambda: _ready_status(stack.url).status_code == 200, "/readyz 200", 15)
    records = _wait_all_succeeded(stack, slow)
    assert max(r["attempts"] for r in records.values()) <= 2
    # And the worker still consumes: a new task runs once.
    with httpx.Client(base_url=stack.url, timeout=15) as client:
        (after,) = submit_many(client, 1)
    assert _wait_all_succeeded(stack, [after])[after]["attempts"] == 1
