"""The webhook outbox on a real Redis: leases, their fencing, retries and dead letters.

The records go through ``TaskStore`` exactly as the API and the worker write them: created,
then finished with ``webhook=True``, which puts the task on the outbox.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from agent_service.domain.runs import RunRequest
from agent_service.domain.tasks import TaskRecord, TaskStatus, WebhookDelivery, WebhookState
from agent_service.store.client import Redis
from agent_service.store.keys import Keys
from agent_service.store.tasks import TaskStore
from agent_service.store.webhooks import WebhookOutbox

pytestmark = pytest.mark.integration


async def _finished_task(store: TaskStore, url: str = "https://example.com/hook") -> str:
    record = TaskRecord(
        task_id=uuid.uuid4().hex,
        status=TaskStatus.QUEUED,
        queue="q",
        request=RunRequest(message="hi"),
        created_at=time.time(),
        webhook=WebhookState(url=url),
    )
    async with store._redis.pipeline(transaction=True) as pipe:  # as the producer does
        store.add_create(pipe, record)
        await pipe.execute()
    await store.finish(record.task_id, TaskStatus.SUCCEEDED, webhook=True)
    return record.task_id


async def _webhook(store: TaskStore, task_id: str) -> WebhookState:
    record = await store.get(task_id)
    assert record is not None and record.webhook is not None
    return record.webhook


async def test_a_claim_leases_the_delivery_until_it_runs_out(
    redis_client: Redis, keys: Keys
) -> None:
    store = TaskStore(redis_client, keys, 600, 100)
    outbox = WebhookOutbox(redis_client, keys)
    task_id = await _finished_task(store)
    [claim] = await outbox.claim(lease_seconds=0.4, limit=10)
    assert claim.task_id == task_id
    assert await outbox.claim(lease_seconds=0.4, limit=10) == []  # held by the first claim
    await asyncio.sleep(0.5)
    [again] = await outbox.claim(lease_seconds=30, limit=10)  # its holder is presumed dead
    assert again.task_id == task_id and again.lease != claim.lease
    # The first holder woke up: none of its transitions may touch the record or the outbox.
    late = WebhookState(url="x", status="delivered")
    assert not await outbox.begin(claim, late)
    assert not await outbox.delivered(claim, late)
    assert not await outbox.dead(claim, late)
    assert not await outbox.retry(claim, late, 0)
    assert not await outbox.drop(claim)
    assert (await _webhook(store, task_id)).status == "pending"
    assert await redis_client.zscore(keys.webhook_outbox, task_id) is not None
    assert await outbox.dead_letters() == []
    # The current holder's transitions go through.
    assert await outbox.begin(again, WebhookState(url="x", status="delivering"))
    assert (await _webhook(store, task_id)).status == "delivering"
    assert await outbox.delivered(again, WebhookState(url="x", status="delivered"))
    assert await redis_client.zscore(keys.webhook_outbox, task_id) is None
    assert (await _webhook(store, task_id)).status == "delivered"


async def test_retry_makes_the_delivery_due_again_after_its_delay(
    redis_client: Redis, keys: Keys
) -> None:
    store = TaskStore(redis_client, keys, 600, 100)
    outbox = WebhookOutbox(redis_client, keys)
    task_id = await _finished_task(store)
    [claim] = await outbox.claim(lease_seconds=30, limit=10)
    attempt = WebhookDelivery(attempt=1, at=time.time(), status_code=500, duration_ms=3.0)
    state = WebhookState(url="x", status="pending", attempts=[attempt])
    assert await outbox.retry(claim, state, delay_seconds=0.5)
    assert (await _webhook(store, task_id)).attempts == [attempt]
    assert await outbox.claim(lease_seconds=30, limit=10) == []
    await asyncio.sleep(0.6)
    [retried] = await outbox.claim(lease_seconds=30, limit=10)
    assert retried.task_id == task_id
    assert not await outbox.retry(claim, state, 0)  # the first lease ended with its retry


async def test_dead_letters_and_drops_leave_the_outbox(redis_client: Redis, keys: Keys) -> None:
    store = TaskStore(redis_client, keys, 600, 100)
    outbox = WebhookOutbox(redis_client, keys)
    doomed, expired = await _finished_task(store), await _finished_task(store)
    claims = {c.task_id: c for c in await outbox.claim(lease_seconds=30, limit=10)}
    assert set(claims) == {doomed, expired}
    assert await outbox.dead(claims[doomed], WebhookState(url="x", status="dead"))
    assert (await _webhook(store, doomed)).status == "dead"
    assert await outbox.dead_letters() == [doomed]
    await redis_client.delete(keys.task(expired))
    assert await outbox.drop(claims[expired])
    assert await redis_client.exists(keys.task(expired)) == 0  # settling never recreates a record
    assert await redis_client.zcard(keys.webhook_outbox) == 0


async def test_claims_are_bounded_oldest_first_and_never_shared(
    redis_client: Redis, keys: Keys
) -> None:
    store = TaskStore(redis_client, keys, 600, 100)
    outbox = WebhookOutbox(redis_client, keys)
    ids = [await _finished_task(store) for _ in range(6)]
    first = await outbox.claim(lease_seconds=30, limit=4)
    assert [c.task_id for c in first] == ids[:4]
    # Two workers claiming at once get disjoint sets.
    a, b = await asyncio.gather(
        outbox.claim(lease_seconds=30, limit=10), outbox.claim(lease_seconds=30, limit=10)
    )
    assert sorted(c.task_id for c in a + b) == sorted(ids[4:])
    assert await outbox.claim(lease_seconds=30, limit=0) == []
