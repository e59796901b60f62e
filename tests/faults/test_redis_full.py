"""Redis fills up (``maxmemory``, ``noeviction``) under load: new tasks are refused with 503
and ``Retry-After``, the runs in flight finish, and nothing accepted is lost.

One API, one worker and a Redis of the module's own, whose ``maxmemory`` the test moves with
``CONFIG SET``, as growth would: first to 92 % of what Redis uses (above the API's admit share,
90 %: the API refuses; the worker still finishes what it holds), then to 100 % (Redis refuses
every write, the end of a run included: the worker keeps the run's end and retries it), then
back to no limit (room again: every accepted task ends ``succeeded``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.conftest import RedisServer, SimFactory, start_redis
from tests.faults.harness import Load, Stack, running_stack, wait_terminal, wait_until
from tests.integration.stack import StackEnv, model, write_agent_config

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

FULL_SECONDS = 3.0  # Redis refusing every write: well inside the worker's patience (30 s)


@pytest.fixture(scope="module")
def full_redis(log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis of this module's own: its ``maxmemory`` is moved by the test."""
    server = start_redis(log_dir, tmp_path_factory.mktemp("faults-full-redis"))
    yield server
    server.proc.stop()


@pytest.fixture(scope="module")
def stack(
    full_redis: RedisServer,
    sim_factory: SimFactory,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    sim = sim_factory("--ttft", "1.0")
    config = write_agent_config(
        tmp_path_factory.mktemp("faults-full") / "agent.yaml", [model("sim", sim.url)]
    )
    env = StackEnv(
        full_redis.url,
        sim.url,
        log_dir,
        extra={"AGENT_CONFIG_FILE": str(config), "AGENT_WORKER_CONCURRENCY": "16"},
    )
    with running_stack(env) as stack:
        yield stack


def _used(client: redis.Redis) -> int:
    info = client.info("memory")
    return int(info["used_memory"]) - int(info.get("mem_not_counted_for_evict", 0))


def test_a_full_redis_refuses_new_tasks_finishes_running_ones_and_loses_nothing(
    stack: Stack, full_redis: RedisServer
) -> None:
    admin = redis.Redis.from_url(full_redis.url)
    load = Load(stack.url, interval=0.03).start()
    try:
        wait_until(lambda: len(load.accepted()) >= 30, "tasks accepted before Redis fills", 30)

        # Nearly full: above the admit share, so the API refuses; the worker goes on.
        admin.config_set("maxmemory", str(int(_used(admin) / 0.92)))
        near_full = time.monotonic()
        wait_until(
            lambda: any(o.status == 503 and o.sent > near_full for o in load.outcomes),
            "a 503 once Redis is nearly full",
            10,
        )
        with httpx.Client(base_url=stack.url, timeout=10) as client:
            refused = client.post("/v1/tasks", json={"message": "one more"})
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"]
        assert refused.json()["error"]["type"] == "dependency_unavailable"
        assert "maxmemory" in refused.json()["error"]["message"]
        finished_before = stack.worker.metric("agent_tasks_finished_total")
        wait_until(
            lambda: stack.worker.metric("agent_tasks_finished_total") > finished_before,
            "runs in flight finishing while new tasks are refused",
            15,
        )

        # Full: Redis refuses every write; the worker keeps the ends of its runs.
        admin.config_set("maxmemory", str(_used(admin)))
        time.sleep(FULL_SECONDS)

        # Room again (an operator raised the limit, or old records expired).
        admin.config_set("maxmemory", "0")
        room = time.monotonic()
        wait_until(
            lambda: any(o.status == 202 and o.sent > room for o in load.outcomes),
            "tasks accepted again once Redis has room",
            15,
        )
        time.sleep(1.0)
    finally:
        outcomes = load.stop()
        admin.close()

    unexpected = [o for o in outcomes if o.status not in (202, 503)]
    assert not unexpected, f"answers other than 202/503 (timeouts, 500s): {unexpected[:5]}"
    refusals = [o for o in outcomes if o.status == 503]
    assert refusals and all(o.retry_after for o in refusals), "a 503 without Retry-After"
    accepted = load.accepted()
    with httpx.Client(base_url=stack.url, timeout=15) as client:
        records = wait_terminal(client, accepted, timeout=90)
    failed = [
        (t, r["status"], r["error"]) for t, r in records.items() if r["status"] != "succeeded"
    ]
    assert not failed, f"{len(failed)} of {len(accepted)} accepted tasks did not succeed: {failed}"
    assert stack.worker.proc.alive(), stack.worker.proc.log()[-3000:]
    retried = stack.worker.proc.log().count("the run's end is retried")
    print(
        f"\nRedis full: {len(accepted)} tasks accepted, {len(refusals)} refused with 503 and "
        f"Retry-After, {retried} run ends retried while Redis refused writes; lost: 0"
    )
