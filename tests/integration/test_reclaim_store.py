"""The Redis side of fast reclaim, the lost-message sweeper and the full-Redis admission, on a
real redis-server (the worker processes that drive them are in tests/faults/).

Messages are laid out exactly as kombu's Redis transport keeps them (the queue list, the
``unacked`` hash and ``unacked_index``), built by the producer's own ``build_message``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import pytest

from agent_service.domain.errors import StorageFullError
from agent_service.domain.runs import RunRequest
from agent_service.domain.tasks import TaskRecord, TaskStatus
from agent_service.queue.celery_app import create_celery_app
from agent_service.queue.lost import LostMessageSweeper
from agent_service.queue.producer import TaskQueue, build_message
from agent_service.queue.reclaim import (
    UNACKED,
    UNACKED_INDEX,
    DeadWorkerSweeper,
    LeaseRenewal,
    mark_held,
)
from agent_service.settings import RedisSettings, Settings
from agent_service.store.client import Redis, create_redis
from agent_service.store.keys import Keys
from agent_service.store.memory import AdmissionByMemory, MemoryWatch
from agent_service.store.tasks import SUPERSEDED, TaskStore
from tests.conftest import RedisServer, start_redis


def _settings(url: str, queue: str) -> Settings:
    settings = Settings(redis=RedisSettings(url=url))
    settings.worker.queue = queue
    return settings


async def _hold(redis_client: Redis, keys: Keys, worker: str, queue: str) -> tuple[str, bytes]:
    """A message taken by ``worker``, recorded as kombu and the worker's consumer do."""
    app = create_celery_app(_settings("redis://127.0.0.1:1/0", queue), 60)
    tag = str(uuid.uuid4())
    message = build_message(app, uuid.uuid4().hex, queue, delivery_tag=tag)
    entry = json.dumps([json.loads(message), "", queue]).encode()
    async with redis_client.pipeline(transaction=True) as pipe:
        pipe.zadd(UNACKED_INDEX, {tag: time.time()})
        pipe.hset(UNACKED, tag, entry)
        mark_held(pipe, keys, worker, tag)
        await pipe.execute()
    return tag, entry


def _renewal(server: RedisServer, keys: Keys, worker: str, lease: float) -> LeaseRenewal:
    return LeaseRenewal.connect(RedisSettings(url=server.url), keys, worker, lease)


async def test_a_dead_workers_messages_go_back_on_their_queue_at_once(
    redis_client: Redis, keys: Keys, redis_server: RedisServer
) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    dead = _renewal(redis_server, keys, "dead", lease=1)
    live = _renewal(redis_server, keys, "live", lease=30)
    assert dead.renew() and live.renew()
    held, _ = await _hold(redis_client, keys, "dead", queue)
    # The same tag owned by another worker since (redelivered to it): not the dead one's.
    others, _ = await _hold(redis_client, keys, "live", queue)
    await redis_client.sadd(keys.worker_held("dead"), others)
    sweeper = DeadWorkerSweeper(redis_client, keys, "live")

    assert await sweeper.sweep() == []  # the lease has not run out yet
    await asyncio.sleep(1.2)
    swept = await sweeper.sweep()

    assert [(r.worker, r.messages) for r in swept] == [("dead", 1)]
    (restored,) = await redis_client.lrange(queue, 0, -1)
    message = json.loads(restored)
    assert message["properties"]["delivery_tag"] == held
    assert message["headers"]["redelivered"] is True
    assert message["properties"]["delivery_info"]["redelivered"] is True
    assert not await redis_client.hexists(UNACKED, held)
    assert await redis_client.zscore(UNACKED_INDEX, held) is None
    assert not await redis_client.hexists(keys.delivery_owners, held)
    # The live worker's message is untouched; the dead worker is forgotten.
    assert await redis_client.hget(keys.delivery_owners, others) == b"live"
    assert await redis_client.hexists(UNACKED, others)
    assert await redis_client.zscore(keys.worker_leases, "dead") is None
    # A worker that was only stalled learns it was swept (it then exits).
    assert dead.renew() is False
    assert live.renew() is True
    live.release()  # a clean shutdown ends the lease at once
    assert await redis_client.zscore(keys.worker_leases, "live") == 0
    for renewal in (dead, live):
        renewal.close()
    await redis_client.hdel(UNACKED, others)


async def test_sweeping_twice_restores_once(
    redis_client: Redis, keys: Keys, redis_server: RedisServer
) -> None:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    gone = _renewal(redis_server, keys, "gone", lease=1)
    assert gone.renew()
    gone.close()
    await _hold(redis_client, keys, "gone", queue)
    await asyncio.sleep(1.2)
    first, second = (DeadWorkerSweeper(redis_client, keys, name) for name in ("a", "b"))
    results = await asyncio.gather(first.sweep(), second.sweep())
    assert sum(r.messages for found in results for r in found) == 1
    assert await redis_client.llen(queue) == 1


async def _submitted(
    redis_client: Redis, keys: Keys, redis_url: str, age: float
) -> tuple[TaskStore, TaskQueue, TaskRecord]:
    queue = f"q-{uuid.uuid4().hex[:6]}"
    store = TaskStore(redis_client, keys, ttl_seconds=600, events_max=100)
    producer = TaskQueue(redis_client, create_celery_app(_settings(redis_url, queue), 60), store)
    record = TaskRecord(
        task_id=uuid.uuid4().hex,
        status=TaskStatus.QUEUED,
        queue=queue,
        request=RunRequest(message="hello"),
        created_at=time.time() - age,
    )
    await producer.submit(record)
    return store, producer, record


async def test_a_message_lost_between_pop_and_record_is_replaced_and_the_stale_copy_ignored(
    redis_client: Redis, keys: Keys, redis_server: RedisServer
) -> None:
    store, _, record = await _submitted(redis_client, keys, redis_server.url, age=120)
    popped = await redis_client.rpop(record.queue)  # a worker took it and died before HSET unacked
    old_tag = json.loads(popped)["properties"]["delivery_tag"]
    app = create_celery_app(_settings(redis_server.url, record.queue), 60)
    sweeper = LostMessageSweeper(redis_client, keys, app, lost_after=60)

    assert await sweeper.sweep(lock_seconds=1) == 1

    (replacement,) = await redis_client.lrange(record.queue, 0, -1)
    new_tag = json.loads(replacement)["properties"]["delivery_tag"]
    assert new_tag != old_tag
    assert await redis_client.hget(keys.task(record.task_id), "delivery_tag") == new_tag.encode()
    # The lost copy, had it been delivered after all, would not run; the replacement does.
    assert await store.start_attempt(record.task_id, old_tag) == SUPERSEDED
    started = await store.start_attempt(record.task_id, new_tag)
    assert isinstance(started, TaskRecord)
    assert (started.status, started.attempts) == (TaskStatus.RUNNING, 1)
    # Started: it leaves the index at the next sweep, and is never replaced again.
    await redis_client.zadd(keys.queued_tasks, {record.task_id: 0})
    await asyncio.sleep(1.1)  # the sweep lock
    assert await sweeper.sweep(lock_seconds=1) == 0
    assert await redis_client.zscore(keys.queued_tasks, record.task_id) is None


async def test_a_message_still_queued_or_held_is_left_alone(
    redis_client: Redis, keys: Keys, redis_server: RedisServer
) -> None:
    _, _, waiting = await _submitted(redis_client, keys, redis_server.url, age=120)
    _, _, held = await _submitted(redis_client, keys, redis_server.url, age=120)
    raw = await redis_client.rpop(held.queue)
    tag = json.loads(raw)["properties"]["delivery_tag"]
    await redis_client.hset(UNACKED, tag, json.dumps([json.loads(raw), "", held.queue]))
    app = create_celery_app(_settings(redis_server.url, waiting.queue), 60)

    assert await LostMessageSweeper(redis_client, keys, app, 60).sweep(lock_seconds=1) == 0

    assert await redis_client.llen(waiting.queue) == 1
    assert await redis_client.llen(held.queue) == 0
    for task in (waiting, held):  # looked at again after another bound
        score = await redis_client.zscore(keys.queued_tasks, task.task_id)
        assert score is not None and score > time.time() - 5
    await redis_client.hdel(UNACKED, tag)


async def test_new_tasks_are_refused_near_maxmemory_and_by_a_full_redis(
    log_dir: Path, tmp_path: Path
) -> None:
    server = start_redis(log_dir, tmp_path)
    redis = create_redis(RedisSettings(url=server.url))
    keys = Keys("full:")
    try:
        store, producer, _ = await _submitted(redis, keys, server.url, age=0)
        info = await redis.info("memory")
        used = int(info["used_memory"])
        # 92 % of maxmemory in use: above the admit share (90 %), below a full Redis.
        await redis.config_set("maxmemory", str(int(used / 0.92)))
        admission = AdmissionByMemory(MemoryWatch(redis, max_age=0), percent=90)
        guarded = TaskQueue(redis, producer._app, store, admission=admission)
        record = TaskRecord(
            task_id=uuid.uuid4().hex,
            status=TaskStatus.QUEUED,
            queue="full-q",
            request=RunRequest(message="hello"),
            created_at=time.time(),
        )
        with pytest.raises(StorageFullError, match="maxmemory"):
            await guarded.submit(record)
        # Without the admission check, Redis itself refuses once full: the same error.
        await redis.config_set("maxmemory", str(used // 2))
        with pytest.raises(StorageFullError):
            await producer.submit(record)
        assert await redis.exists(keys.task(record.task_id)) == 0  # nothing half-written
    finally:
        await redis.aclose()
        server.proc.stop()
