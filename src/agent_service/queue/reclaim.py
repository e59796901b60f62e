"""Fast reclaim: worker liveness leases, and a dead worker's messages put back on the queue.

kombu's Redis transport keeps every message a worker took (and has not acknowledged) in the
``unacked`` hash (tag -> ``[message, exchange, routing key]``) and ``unacked_index`` (tag ->
when taken), and puts one back only once the visibility timeout has passed since it was taken:
run timeout + 60 s, about 3 minutes. It cannot tell a dead worker from a slow run.

So each worker also says who holds what, and that it is alive:

* **ownership**: in the very ``MULTI`` where kombu records a message as unacknowledged, the
  worker's consumer (``worker.consumer``) adds ``delivery_owners[tag] = worker`` and the tag to
  the worker's ``worker_held`` set (``mark_held``); the ``MULTI`` that acknowledges or restores
  it removes both (``mark_released``). Ownership can never be missing for a held message.
* **lease**: ``worker_leases`` scores each worker with the end of its lease (Redis time), renewed
  every third of ``AGENT_WORKER_LEASE_SECONDS`` (``LeaseRenewal``, on a thread of its own).
* **sweep**: every ``AGENT_WORKER_RECLAIM_INTERVAL_SECONDS`` a live worker claims a worker whose
  lease ended, marks it swept (a tombstone its process reads on its next renewal: a worker that
  was only stalled exits instead of running its runs twice), and puts each message it still
  owns back at the tail of its queue, taken next, exactly as kombu's own restore would
  (``redelivered`` set). Each message moves in one script that first checks the ``unacked``
  entry and its owner are unchanged, so kombu's visibility sweep, an acknowledgement or another
  sweeper racing for the same message cannot duplicate it.

A worker sweeps only after renewing its own lease without a gap for a whole lease period: after
a Redis outage (every lease then ends at once) every live worker has renewed before anyone
judges it dead. The visibility timeout stays as the last resort.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from queue import Empty
from typing import Any

import redis
from kombu.transport.redis import Channel as KombuRedisChannel
from kombu.utils.json import dumps
from redis.exceptions import ResponseError

from agent_service.queue.stats import priority_list
from agent_service.settings import RedisSettings
from agent_service.store.client import Redis, is_out_of_memory
from agent_service.store.connection import RedisConnection, create_sync_client
from agent_service.store.keys import Keys
from agent_service.store.leases import claim_due, register_claim

log = logging.getLogger(__name__)

UNACKED = KombuRedisChannel.unacked_key
UNACKED_INDEX = KombuRedisChannel.unacked_index_key
CLAIM_SECONDS = 30.0
"""How long a sweeper holds a dead worker it is sweeping (if it dies too, another retakes it)."""
SWEPT_MARK_SECONDS = 3600
"""How long the swept mark stays: longer than any stall a worker could wake up from."""

# Renews a worker's lease unless it was swept. KEYS: leases, swept mark. ARGV: worker, seconds.
_RENEW = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
"""

# Moves one message of a dead worker from kombu's unacked records back onto its queue, if it is
# still that worker's and unchanged. KEYS: unacked, unacked index, owners, held set, queue list.
# ARGV: tag, unacked entry as read, worker, message to push.
_RESTORE = """
local entry = redis.call('HGET', KEYS[1], ARGV[1])
local owner = redis.call('HGET', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
if owner ~= ARGV[3] then return 0 end
if not entry then
  redis.call('HDEL', KEYS[3], ARGV[1])
  return 0
end
if entry ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('RPUSH', KEYS[5], ARGV[4])
return 1
"""

# Forgets a swept worker once it holds nothing. KEYS: leases, held set. ARGV: worker.
_FORGET = """
if redis.call('SCARD', KEYS[2]) > 0 then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""


def mark_held(pipe: Any, keys: Keys, worker: str, tag: str) -> None:
    """Queue, on kombu's ``MULTI`` recording ``tag`` as unacknowledged, that ``worker`` holds
    it (a synchronous redis-py pipeline)."""
    pipe.hset(keys.delivery_owners, tag, worker)
    pipe.sadd(keys.worker_held(worker), tag)


class DeliveryNotRecorded(Empty):
    """Redis refused to record a message a worker took (``maxmemory``). kombu's event loop
    ignores an ``Empty`` raised while delivering (a connection error would restart the
    consumer, whose start-up writes Redis refuses too), so the message is not run, the worker
    goes on, and its consumer keeps the message and puts it back once Redis has room."""


def record_delivery(qos: Any, message: Any, tag: str, keys: Keys, worker: str) -> None:
    """Record a message a worker took as unacknowledged, and as held by ``worker``, in one
    ``MULTI``: kombu 5.7's ``QoS.append`` (Redis transport) with ``mark_held`` added, since its
    pipeline cannot be reached from outside. A write refused at ``maxmemory`` raises
    ``DeliveryNotRecorded``."""
    delivery = message.delivery_info
    entry = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])  # type: ignore[no-untyped-call]
    try:
        with qos.pipe_or_acquire() as pipe:
            pipe.zadd(qos.unacked_index_key, {tag: time.time()})
            pipe.hset(qos.unacked_key, tag, entry)
            mark_held(pipe, keys, worker, tag)
            pipe.execute()
    except ResponseError as exc:
        if not is_out_of_memory(exc):
            raise
        raise DeliveryNotRecorded(f"Redis refused to record a delivery: {exc}") from exc


def mark_released(pipe: Any, keys: Keys, worker: str, tag: str) -> None:
    """Queue, on kombu's ``MULTI`` removing ``tag`` from its unacknowledged records (an
    acknowledgement or a restore), that nobody holds it any more."""
    pipe.hdel(keys.delivery_owners, tag)
    pipe.srem(keys.worker_held(worker), tag)


def restored_message(entry: bytes | str) -> tuple[str, bytes]:
    """The list to push a message back on and what to push, from its ``unacked`` entry: what
    kombu's own restore does (``redelivered`` set in the headers and the delivery info; the
    list of the queue named by the routing key, at the message's priority)."""
    message, _exchange, routing_key = json.loads(entry)
    message.get("headers", {})["redelivered"] = True
    properties = message.get("properties", {})
    properties.get("delivery_info", {})["redelivered"] = True
    priority = int(properties.get("priority") or 0)
    restored: str = dumps(message)  # type: ignore[no-untyped-call]
    return priority_list(routing_key, priority), restored.encode()


@dataclass(frozen=True)
class Reclaimed:
    """One swept worker and how many of its messages went back on their queue."""

    worker: str
    messages: int


class LeaseRenewal:
    """The lease of one worker (``worker``), renewed synchronously: ``worker.liveness`` runs it
    on a thread of its own, so a busy event loop never makes a live worker look dead."""

    def __init__(self, client: redis.Redis, keys: Keys, worker: str, lease_seconds: float) -> None:
        self._redis = client
        self._keys = keys
        self.worker = worker
        self.lease_seconds = lease_seconds
        self._renew = client.register_script(_RENEW)

    @classmethod
    def connect(
        cls, settings: RedisSettings, keys: Keys, worker: str, lease_seconds: float
    ) -> LeaseRenewal:
        """With a client of its own (its timeout well inside the renewal period)."""
        timeout = min(settings.socket_timeout_seconds, lease_seconds / 3)
        client = create_sync_client(RedisConnection.of(settings), timeout)
        return cls(client, keys, worker, lease_seconds)

    def renew(self) -> bool:
        """Extend the lease; False when this worker was declared dead and swept meanwhile.
        Raises redis errors (the caller counts them as a gap)."""
        keys = self._keys
        renewed = self._renew(
            keys=[keys.worker_leases, keys.worker_swept(self.worker)],
            args=[self.worker, self.lease_seconds],
        )
        return bool(renewed)

    def release(self) -> None:
        """End the lease now (clean shutdown): whatever the worker still holds is swept by
        the next live worker instead of waiting for the lease to run out."""
        self._redis.zadd(self._keys.worker_leases, {self.worker: 0})

    def close(self) -> None:
        self._redis.close()


class DeadWorkerSweeper:
    """Puts back the messages of workers whose lease ended (run by a live worker, ``worker``)."""

    def __init__(self, client: Redis, keys: Keys, worker: str) -> None:
        self._redis = client
        self._keys = keys
        self.worker = worker
        self._restore = client.register_script(_RESTORE)
        self._forget = client.register_script(_FORGET)
        self._claim = register_claim(client)

    async def sweep(self, limit: int = 4) -> list[Reclaimed]:
        """Put back the messages of up to ``limit`` workers whose lease ended."""
        swept = []
        for worker, _token in await claim_due(
            self._claim, self._keys.worker_leases, CLAIM_SECONDS, limit
        ):
            if worker == self.worker:
                continue  # our own lease ran out between renewals: the renewal decides
            await self._redis.set(self._keys.worker_swept(worker), 1, ex=SWEPT_MARK_SECONDS)
            moved = await self._sweep_worker(worker)
            swept.append(Reclaimed(worker, moved))
        return swept

    async def _sweep_worker(self, worker: str) -> int:
        """Put back what ``worker`` holds: its entries read in one round trip, each moved by
        its own script (atomic per message), the scripts sent in one more."""
        keys = self._keys
        held = keys.worker_held(worker)
        tags = [t.decode() if isinstance(t, bytes) else t for t in await self._redis.smembers(held)]
        moved = 0
        if tags:
            entries = await self._redis.hmget(UNACKED, tags)
            async with self._redis.pipeline(transaction=False) as pipe:
                for tag, entry in zip(tags, entries, strict=True):
                    # No entry (acknowledged meanwhile): the script only forgets the tag; it
                    # pushes nothing, so any key stands for the queue.
                    target, message = (held, b"") if entry is None else restored_message(entry)
                    await self._restore(
                        keys=[UNACKED, UNACKED_INDEX, keys.delivery_owners, held, target],
                        args=[tag, entry or b"", worker, message],
                        client=pipe,
                    )
                moved = sum(int(done) for done in await pipe.execute())
        if await self._forget(keys=[keys.worker_leases, held], args=[worker]):
            log.info("forgot dead worker %s", worker)
        return moved
