"""The drainer joining the Redis outbox and Postgres, for real: it archives what finished;
with Postgres down nothing is lost and everything is archived on recovery; a drainer SIGKILLed
mid-archive leaves a batch that another archives again, once; a run Postgres refuses does not
hold the others back."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from prometheus_client import CollectorRegistry

from agent_service.domain.runs import Usage
from agent_service.domain.tasks import TaskRecord
from agent_service.history.runtime import History
from agent_service.history.scope import Scope
from agent_service.observability.metrics import Metrics
from agent_service.store.client import Redis
from agent_service.store.history_outbox import HistoryOutbox
from agent_service.store.keys import Keys
from agent_service.store.tasks import TaskStore
from agent_service.worker.history_drainer import HistoryDrainer
from tests.conftest import RedisServer
from tests.history.conftest import history_settings
from tests.history.factory import sync_run, task_record
from tests.history.redis_runs import finish_in_redis
from tests.postgres import PostgresServer
from tests.procs import PYTHON, Proc, base_env

pytestmark = pytest.mark.integration

TASK_TTL = 7 * 86400
ARCHIVED_TTL = 300
ROOT = Path(__file__).resolve().parents[2]


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], timeout: float, what: str
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if await answer if inspect.isawaitable(answer) else answer:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(0.05)


async def drained(outbox: HistoryOutbox, timeout: float) -> None:
    async def empty() -> bool:
        return (await outbox.stats()).depth == 0

    await eventually(empty, timeout, "the outbox drained")


def _rows(url: str) -> dict[str, object]:
    with psycopg.connect(url) as conn:
        return dict(conn.execute("SELECT id, archived_at FROM history_runs").fetchall())


@pytest.fixture
def store(redis_client: Redis, keys: Keys) -> TaskStore:
    return TaskStore(redis_client, keys, TASK_TTL, 100)


@pytest.fixture
def outbox(redis_client: Redis, keys: Keys) -> HistoryOutbox:
    return HistoryOutbox(redis_client, keys, TASK_TTL)


class Running:
    """A drainer on the test's event loop with its own metrics."""

    def __init__(self, history: History, outbox: HistoryOutbox) -> None:
        self.history = history
        self.metrics = Metrics(CollectorRegistry())
        self.drainer = HistoryDrainer(history, outbox, self.metrics, history.settings)

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def drainer_of() -> AsyncIterator[Callable[[History, HistoryOutbox], Awaitable[Running]]]:
    started: list[Running] = []

    async def start(history: History, outbox: HistoryOutbox) -> Running:
        running = Running(history, outbox)
        await running.drainer.start()
        started.append(running)
        return running

    yield start
    for running in started:
        await running.drainer.stop(5)


@pytest.fixture
async def history_of() -> AsyncIterator[Callable[..., History]]:
    """``history_of(url, **settings)``: a History closed after the test (and after its
    drainers: request this fixture before ``drainer_of``)."""
    opened: list[History] = []

    def open_one(url: str, **overrides: Any) -> History:
        history = History.create(history_settings(url, **overrides))
        opened.append(history)
        return history

    yield open_one
    for history in opened:
        await history.close()


async def test_finished_runs_are_archived_and_leave_redis_soon(
    pg_url: str,
    history_of: Callable[..., History],
    store: TaskStore,
    outbox: HistoryOutbox,
    redis_client: Redis,
    keys: Keys,
    drainer_of: Callable[[History, HistoryOutbox], Awaitable[Running]],
) -> None:
    # A fresh database: the drainer migrates it before its first batch.
    history = history_of(pg_url, archived_record_ttl_seconds=ARCHIVED_TTL, drain_batch_size=7)
    records = [await finish_in_redis(store, outbox, task_record()) for _ in range(15)]
    chats = [sync_run() for _ in range(4)]
    for chat in chats:
        await outbox.enqueue_sync_run(chat)
    running = await drainer_of(history, outbox)

    await drained(outbox, 60)
    for record in records:
        found = await history.runs.get(Scope.of_tenant("acme"), record.task_id)
        assert found is not None and found.record == record
        assert 0 < await redis_client.ttl(keys.task(record.task_id)) <= ARCHIVED_TTL
    for chat in chats:
        found = await history.runs.get(Scope.of_tenant("acme"), chat.run_id)
        assert found is not None and found.kind.value == "sync"
    await eventually(lambda: running.metric("agent_history_outbox_depth") == 0, 10, "depth 0")
    assert running.metric("agent_history_archive_lag_seconds") == 0
    assert running.metric("agent_history_archive_errors_total", reason="database") == 0


async def test_postgres_down_loses_nothing_and_archives_on_recovery(
    postgres_server: PostgresServer,
    log_dir: Path,
    history_of: Callable[..., History],
    store: TaskStore,
    outbox: HistoryOutbox,
    redis_client: Redis,
    keys: Keys,
    drainer_of: Callable[[History, HistoryOutbox], Awaitable[Running]],
) -> None:
    # A server of its own, to stop and start (the session's tells where Postgres is).
    server = PostgresServer(postgres_server.bin_dir, log_dir)
    try:
        server.start()
        url = server.url()
        history = history_of(url, archived_record_ttl_seconds=ARCHIVED_TTL)
        running = await drainer_of(history, outbox)
        first = await finish_in_redis(store, outbox, task_record())
        await eventually(lambda: _has(history, first), 60, "the first run archived")

        server.stop()
        records = [await finish_in_redis(store, outbox, task_record()) for _ in range(20)]
        chats = [sync_run() for _ in range(5)]
        for chat in chats:
            await outbox.enqueue_sync_run(chat)
        errors = "agent_history_archive_errors_total"
        await eventually(
            lambda: running.metric(errors, reason="database") >= 2,
            60,
            "the drainer tried and failed twice",
        )
        assert (await outbox.stats()).depth == 25
        # The gauges follow the outage while the drainer backs off.
        await eventually(lambda: running.metric("agent_history_outbox_depth") == 25, 10, "depth")
        lag = running.metric("agent_history_archive_lag_seconds")
        await eventually(
            lambda: running.metric("agent_history_archive_lag_seconds") > lag,
            10,
            "a growing lag",
        )
        for record in records:  # nothing was shortened: Redis still holds every run
            assert await redis_client.ttl(keys.task(record.task_id)) > ARCHIVED_TTL
        for chat in chats:
            assert await redis_client.exists(keys.history_payload(chat.run_id))

        server.start()  # same data, same port

        await drained(outbox, 90)
        archived = _rows(url)
        assert set(archived) == {r.task_id for r in [first, *records]} | {c.run_id for c in chats}
        for record in records:
            found = await history.runs.get(Scope.admin(), record.task_id)
            assert found is not None and found.record == record
            assert 0 < await redis_client.ttl(keys.task(record.task_id)) <= ARCHIVED_TTL
    finally:
        server.remove()


async def _has(history: History, record: TaskRecord) -> bool:
    try:
        return await history.runs.get(Scope.admin(), record.task_id) is not None
    except Exception:
        return False


async def test_runs_that_cannot_be_archived_are_dropped_and_the_others_archived(
    pg_url: str,
    history_of: Callable[..., History],
    store: TaskStore,
    outbox: HistoryOutbox,
    redis_client: Redis,
    keys: Keys,
    drainer_of: Callable[[History, HistoryOutbox], Awaitable[Running]],
) -> None:
    history = history_of(pg_url)
    good = [await finish_in_redis(store, outbox, task_record()) for _ in range(3)]
    # More tokens than a bigint holds: Postgres refuses the row (a bug, never an outage).
    poison = sync_run().model_copy(update={"usage": Usage(input_tokens=2**70)})
    await outbox.enqueue_sync_run(poison)
    # A record that expired from Redis before it was archived (Postgres down too long).
    lost = await finish_in_redis(store, outbox, task_record())
    await redis_client.delete(keys.task(lost.task_id))
    good.append(await finish_in_redis(store, outbox, task_record()))
    running = await drainer_of(history, outbox)

    await drained(outbox, 60)
    assert set(_rows(pg_url)) == {r.task_id for r in good}
    errors = "agent_history_archive_errors_total"
    assert running.metric(errors, reason="rejected") == 1
    assert running.metric(errors, reason="expired") == 1
    # off the outbox, left to expire for inspection
    assert await redis_client.ttl(keys.history_payload(poison.run_id)) > 3600


def _waiting_insert(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO history_runs%'"
        ).fetchone()
    return bool(row and row[0])


def _wait(check: Callable[[], bool], timeout: float, what: str, proc: Proc) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline or not proc.alive():
            raise AssertionError(f"not within {timeout:g} s: {what}\n{proc.log()[-3000:]}")
        time.sleep(0.05)


@pytest.mark.parametrize("committed", [False, True], ids=["before-commit", "after-commit"])
async def test_a_drainer_killed_mid_archive_leaves_its_batch_to_another(
    committed: bool,
    pg_url: str,
    history_of: Callable[..., History],
    redis_server: RedisServer,
    log_dir: Path,
    store: TaskStore,
    outbox: HistoryOutbox,
    redis_client: Redis,
    keys: Keys,
    drainer_of: Callable[[History, HistoryOutbox], Awaitable[Running]],
) -> None:
    """A real drainer process is held inside its archive (the test locks the table), then
    SIGKILLed: before its INSERT commits, or after it (while Redis is paused for writes, so
    its settle cannot land). A second drainer takes the batch when the lease runs out and
    archives it: each run is in Postgres once, written by whichever committed first."""
    lease = 5.0
    history = history_of(
        pg_url,
        lease_seconds=lease,
        statement_timeout_seconds=4.0,
        archived_record_ttl_seconds=ARCHIVED_TTL,
    )
    await history.ensure_schema()
    records = [await finish_in_redis(store, outbox, task_record()) for _ in range(10)]
    env = base_env(
        {
            "AGENT_REDIS_URL": redis_server.url,
            "AGENT_REDIS_KEY_PREFIX": keys.prefix,
            "AGENT_HISTORY_URL": pg_url,
            "AGENT_HISTORY_LEASE_SECONDS": str(lease),
            "AGENT_HISTORY_STATEMENT_TIMEOUT_SECONDS": "4",
            "AGENT_HISTORY_DRAIN_INTERVAL_SECONDS": "0.05",
            "AGENT_TASKS_TTL_SECONDS": str(TASK_TTL),
            "PYTHONPATH": str(ROOT),
        }
    )
    pause = redis.Redis.from_url(redis_server.url)
    holder = psycopg.connect(pg_url)
    try:
        holder.execute("LOCK TABLE history_runs IN SHARE MODE")
        proc = Proc("drainer", [PYTHON, "-m", "tests.history.drainer_proc"], env, log_dir)
        _wait(lambda: _waiting_insert(pg_url), 60, "the drainer inside its INSERT", proc)
        if committed:
            pause.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
            holder.commit()  # the INSERT goes on and commits; the settle after it waits
            _wait(lambda: len(_rows(pg_url)) == 10, 30, "the batch committed", proc)
        proc.kill_group()
        proc.stop()  # closes its log
        pause.execute_command("CLIENT", "UNPAUSE")
        holder.rollback()
        before = _rows(pg_url)
        assert len(before) == (10 if committed else 0)
        stats = await outbox.stats()
        assert stats.depth == 10  # the dead drainer's lease holds the batch

        running = await drainer_of(history, outbox)

        await drained(outbox, lease + 60)
        after = _rows(pg_url)
        assert set(after) == {r.task_id for r in records}
        if committed:
            assert after == before  # the re-archive wrote nothing: same rows, same times
        with psycopg.connect(pg_url) as conn:
            tools = conn.execute("SELECT count(*) FROM history_run_tools").fetchone()
        assert tools == (10,)
        for record in records:
            assert 0 < await redis_client.ttl(keys.task(record.task_id)) <= ARCHIVED_TTL
            found = await history.runs.get(Scope.admin(), record.task_id)
            assert found is not None and found.record == record
        assert running.metric("agent_history_archive_errors_total", reason="database") == 0
    finally:
        pause.execute_command("CLIENT", "UNPAUSE")
        pause.close()
        holder.close()
