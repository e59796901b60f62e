"""The history outbox on a real Redis: enqueue, leases and their fencing, load, settle (the
archived TTL), release, depth and lag. No Postgres here: the drainer tests join the two."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from agent_service.domain.history import RunKind, archived_task
from agent_service.domain.tasks import TaskStatus
from agent_service.store.client import Redis
from agent_service.store.history_outbox import HistoryOutbox
from agent_service.store.keys import Keys
from agent_service.store.tasks import TaskStore
from tests.history.factory import sync_run, task_record
from tests.history.redis_runs import finish_in_redis

pytestmark = pytest.mark.integration

TASK_TTL = 7 * 86400
ARCHIVED_TTL = 120


@pytest.fixture
def store(redis_client: Redis, keys: Keys) -> TaskStore:
    return TaskStore(redis_client, keys, TASK_TTL, 100)


@pytest.fixture
async def outbox(redis_client: Redis, keys: Keys) -> AsyncIterator[HistoryOutbox]:
    yield HistoryOutbox(redis_client, keys, TASK_TTL)


async def test_a_batch_goes_through_claim_load_settle(
    store: TaskStore, outbox: HistoryOutbox, redis_client: Redis, keys: Keys
) -> None:
    before = time.time()
    first = await finish_in_redis(store, outbox, task_record())
    failed = await finish_in_redis(store, outbox, task_record(status=TaskStatus.FAILED))
    chat = sync_run()
    await outbox.enqueue_sync_run(chat)
    stats = await outbox.stats()
    assert stats.depth == 3
    assert stats.oldest_enqueued_at is not None and stats.oldest_enqueued_at >= before - 1
    assert stats.lag_seconds(stats.oldest_enqueued_at + 100) == pytest.approx(100)
    assert await outbox.is_pending(RunKind.TASK, first.task_id)
    assert await outbox.is_pending(RunKind.SYNC, chat.run_id)

    claims = await outbox.claim(lease_seconds=30, limit=10)
    assert [(c.kind, c.run_id) for c in claims] == [
        (RunKind.TASK, first.task_id),
        (RunKind.TASK, failed.task_id),
        (RunKind.SYNC, chat.run_id),
    ]
    assert await outbox.claim(lease_seconds=30, limit=10) == []  # leased
    assert (await outbox.stats()).depth == 3  # leased runs still wait

    items = await outbox.load(claims)
    assert [item.run for item in items] == [archived_task(first), archived_task(failed), chat]

    assert await outbox.settle(claims, ARCHIVED_TTL) == 3
    assert await outbox.stats() == type(stats)(0, None)
    assert not await outbox.is_pending(RunKind.TASK, first.task_id)
    for task_id in (first.task_id, failed.task_id):
        for key in (keys.task(task_id), keys.events(task_id)):
            assert 0 < await redis_client.ttl(key) <= ARCHIVED_TTL
    assert not await redis_client.exists(keys.history_payload(chat.run_id))
    assert await store.get(first.task_id) == first  # readable until the short TTL ends


async def test_a_claim_whose_lease_ran_out_cannot_settle(
    store: TaskStore, outbox: HistoryOutbox, redis_client: Redis, keys: Keys
) -> None:
    record = await finish_in_redis(store, outbox, task_record())
    stale = await outbox.claim(lease_seconds=0, limit=10)  # runs out at once
    fresh = await outbox.claim(lease_seconds=30, limit=10)  # another drainer takes it
    assert [c.run_id for c in stale] == [c.run_id for c in fresh] == [record.task_id]
    assert stale[0].lease != fresh[0].lease
    assert await outbox.settle(stale, ARCHIVED_TTL) == 0
    assert await outbox.release(stale, 0) == 0
    assert (await outbox.stats()).depth == 1
    assert await redis_client.ttl(keys.task(record.task_id)) > ARCHIVED_TTL
    assert await outbox.settle(fresh, ARCHIVED_TTL) == 1


async def test_a_released_run_waits_for_its_delay(store: TaskStore, outbox: HistoryOutbox) -> None:
    await finish_in_redis(store, outbox, task_record())
    claims = await outbox.claim(lease_seconds=30, limit=10)
    assert await outbox.release(claims, 3600) == 1
    assert await outbox.claim(lease_seconds=30, limit=10) == []
    # released means no longer held: the claim cannot release (or settle) it again
    assert await outbox.release(claims, 0) == 0
    assert (await outbox.stats()).depth == 1


async def test_release_without_delay_makes_runs_due_at_once(
    store: TaskStore, outbox: HistoryOutbox
) -> None:
    record = await finish_in_redis(store, outbox, task_record())
    claims = await outbox.claim(lease_seconds=30, limit=10)
    assert await outbox.release(claims, 0) == 1
    assert [c.run_id for c in await outbox.claim(lease_seconds=30, limit=10)] == [record.task_id]


async def test_settle_never_lengthens_a_ttl_nor_cuts_a_pending_webhook(
    store: TaskStore, outbox: HistoryOutbox, redis_client: Redis, keys: Keys
) -> None:
    short = await finish_in_redis(store, outbox, task_record())
    await redis_client.expire(keys.task(short.task_id), 30)
    hooked = await finish_in_redis(store, outbox, task_record(), webhook=True)
    assert await redis_client.zscore(keys.webhook_outbox, hooked.task_id) is not None
    claims = await outbox.claim(lease_seconds=30, limit=10)
    assert await outbox.settle(claims, ARCHIVED_TTL) == 2
    assert 0 < await redis_client.ttl(keys.task(short.task_id)) <= 30
    # its webhook delivery still needs the record: full TTL
    assert await redis_client.ttl(keys.task(hooked.task_id)) > ARCHIVED_TTL
    assert (await outbox.stats()).depth == 0


async def test_expired_and_unreadable_records_are_told_apart(
    store: TaskStore, outbox: HistoryOutbox, redis_client: Redis, keys: Keys
) -> None:
    gone = await finish_in_redis(store, outbox, task_record())
    await redis_client.delete(keys.task(gone.task_id))
    broken = await finish_in_redis(store, outbox, task_record())
    await redis_client.hset(keys.task(broken.task_id), "result", "{not json")
    bad_sync = sync_run()
    await outbox.enqueue_sync_run(bad_sync)
    await redis_client.set(keys.history_payload(bad_sync.run_id), "[]")
    items = await outbox.load(await outbox.claim(lease_seconds=30, limit=10))
    assert [item.run for item in items] == [None, None, None]
    assert items[0].problem == "expired"
    assert items[1].problem is not None and items[1].problem.startswith("unreadable")
    assert items[2].problem is not None and items[2].problem.startswith("unreadable")


async def test_a_run_added_twice_waits_once_with_its_first_time(
    store: TaskStore, outbox: HistoryOutbox
) -> None:
    record = await finish_in_redis(store, outbox, task_record())
    first = (await outbox.stats()).oldest_enqueued_at
    claims = await outbox.claim(lease_seconds=30, limit=10)
    await outbox.enqueue_task(record.task_id)  # e.g. a duplicate finish
    assert (await outbox.stats()) == type(await outbox.stats())(1, first)
    assert await outbox.claim(lease_seconds=30, limit=10) == []  # the lease held
    assert await outbox.settle(claims, ARCHIVED_TTL) == 1


async def test_the_task_store_puts_every_ending_on_the_outbox_in_its_transaction(
    redis_client: Redis, keys: Keys, outbox: HistoryOutbox
) -> None:
    # As the runtime builds it with history on: finish() and the cancel script add the entry.
    store = TaskStore(redis_client, keys, TASK_TTL, 100, history=outbox)
    finished, queued, running = (task_record() for _ in range(3))
    for record in (finished, queued, running):
        queued_copy = record.model_copy(
            update={"status": TaskStatus.QUEUED, "result": None, "started_at": None}
        )
        async with redis_client.pipeline(transaction=True) as pipe:
            store.add_create(pipe, queued_copy)
            await pipe.execute()
    await store.start_attempt(finished.task_id)
    await store.finish(finished.task_id, TaskStatus.SUCCEEDED, result=finished.result)
    assert await store.cancel(queued.task_id) == "cancelled"  # never started: final at once
    await store.start_attempt(running.task_id)
    assert await store.cancel(running.task_id) == "cancelling"  # final only when it stops
    assert await outbox.is_pending(RunKind.TASK, finished.task_id)
    assert await outbox.is_pending(RunKind.TASK, queued.task_id)
    assert not await outbox.is_pending(RunKind.TASK, running.task_id)
    assert await outbox.pending_tenant(queued.task_id) == queued.tenant
    assert await outbox.pending_tenant(running.task_id) is None

    # A second ending (a duplicate delivery) keeps the first entry and its time: NX.
    first = await redis_client.zscore(keys.history_enqueued, f"task:{finished.task_id}")
    await store.finish(finished.task_id, TaskStatus.SUCCEEDED, result=finished.result)
    assert await redis_client.zscore(keys.history_enqueued, f"task:{finished.task_id}") == first
    claims = await outbox.claim(lease_seconds=30, limit=10)
    assert sorted(c.run_id for c in claims) == sorted([finished.task_id, queued.task_id])
    items = await outbox.load(claims)
    by_id = {item.claim.run_id: item.run for item in items}
    cancelled = by_id[queued.task_id]
    assert cancelled is not None and cancelled.status is TaskStatus.CANCELLED
    assert cancelled.error_type == "cancelled" and cancelled.started_at is None


async def test_a_pending_sync_run_is_known_to_its_tenant_only(outbox: HistoryOutbox) -> None:
    chat = sync_run()
    assert await outbox.pending_tenant(chat.run_id) is None
    await outbox.enqueue_sync_run(chat)
    assert await outbox.pending_tenant(chat.run_id) == chat.tenant
