"""The lost-message sweeper: a task still ``queued`` whose message is nowhere is queued again.

kombu takes a message off the queue (``BRPOP``) and records it as unacknowledged (``unacked``)
in a second round trip. A worker killed between the two has taken the message with it: the
task would stay ``queued`` forever. This is the one place where the broker alone cannot keep
"an accepted task is never lost".

The producer puts every task on ``Keys.queued_tasks`` (scored by creation) and names its
message's delivery tag in the record. Every ``AGENT_WORKER_RECLAIM_INTERVAL_SECONDS`` one worker
(a short lock) looks at the tasks on it older than ``AGENT_WORKER_LOST_AFTER_SECONDS``:

1. a record no longer ``queued`` (started, ended, expired) leaves the index;
2. a message held by a worker (its tag in ``unacked``) is fine: looked at again later;
3. otherwise the message may still wait in the queue: the sweeper reads the queue's tail (the
   next messages to be taken). Messages enter at the head in arrival order and come back
   (redeliveries) at the tail, so if the tail holds a first-time message that arrived after
   the task's, the task's message would be in what was read. Not there: it is lost, and a new
   message with a new delivery tag is queued at the tail (taken next) in one script that first
   checks the record is still ``queued`` with the old tag and the old tag is still not held.

The new tag makes this safe even when the judgement is wrong (a worker took the message a
moment ago and has not recorded it yet): the record now names the new tag, and the worker's
start (``store.tasks.start_attempt``) ignores a delivery of any other tag, so the task runs
once. A task whose message cannot be judged (a long queue ahead of it) is looked at again
after another ``lost_after``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from celery import Celery

from agent_service.queue.producer import build_message
from agent_service.queue.reclaim import UNACKED
from agent_service.store.client import Redis
from agent_service.store.keys import Keys

log = logging.getLogger(__name__)

TAIL_READ = 200
"""Messages read at the queue's tail to look for a task's message."""
CLOCK_SKEW_SECONDS = 5.0
"""Allowed disagreement between API clocks (arrival order is judged from their timestamps)."""

# Sorts the index entries due for a look. KEYS: index, unacked. ARGV: due before, limit, now,
# record key prefix. Returns [task id, tag, created at, queue, ...] of the tasks to judge.
_COLLECT = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local judge = {}
for _, id in ipairs(due) do
  local record = ARGV[4] .. id
  local fields = redis.call('HMGET', record, 'status', 'delivery_tag', 'created_at', 'queue')
  if fields[1] ~= 'queued' or not fields[2] then
    redis.call('ZREM', KEYS[1], id)
  elseif redis.call('HEXISTS', KEYS[2], fields[2]) == 1 then
    redis.call('ZADD', KEYS[1], ARGV[3], id)
  else
    judge[#judge + 1] = id
    judge[#judge + 1] = fields[2]
    judge[#judge + 1] = fields[3]
    judge[#judge + 1] = fields[4]
  end
end
return judge
"""

# Queues a replacement message if the task is still queued with its old, unheld message.
# KEYS: record, unacked, index, queue list. ARGV: task id, old tag, new tag, message, now.
_REPLACE = """
local fields = redis.call('HMGET', KEYS[1], 'status', 'delivery_tag')
if fields[1] ~= 'queued' then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
if fields[2] ~= ARGV[2] or redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'delivery_tag', ARGV[3])
redis.call('RPUSH', KEYS[4], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
return 1
"""


@dataclass(frozen=True)
class Candidate:
    """A task still ``queued`` past the bound whose message no worker holds."""

    task_id: str
    tag: str
    created_at: float
    queue: str


@dataclass(frozen=True)
class TailMessage:
    """What the sweeper needs of a message at the queue's tail."""

    tag: str | None
    enqueued_at: float | None
    redelivered: bool

    @classmethod
    def parse(cls, raw: bytes) -> TailMessage:
        try:
            message = json.loads(raw)
            headers = message.get("headers") or {}
            properties = message.get("properties") or {}
        except (ValueError, AttributeError):
            return cls(None, None, redelivered=True)  # unknown: never evidence of absence
        stamp = headers.get("agent_enqueued_at")
        return cls(
            tag=properties.get("delivery_tag"),
            enqueued_at=float(stamp) if isinstance(stamp, int | float) else None,
            redelivered=bool(headers.get("redelivered")),
        )


def message_is_lost(candidate: Candidate, tail: list[TailMessage], whole_queue: bool) -> bool:
    """Whether ``candidate``'s message is certainly not in the queue, given the messages read
    at its tail (``tail``, head side first) and whether they are the whole queue. Pure."""
    if any(m.tag == candidate.tag for m in tail):
        return False
    if whole_queue:
        return True
    if not tail:
        return False
    # The head-most message read: first-time messages head-ward of it arrived after it.
    boundary = tail[0]
    return (
        not boundary.redelivered
        and boundary.enqueued_at is not None
        and boundary.enqueued_at > candidate.created_at + CLOCK_SKEW_SECONDS
    )


class LostMessageSweeper:
    """Finds tasks whose message was lost between ``BRPOP`` and its ``unacked`` record, and
    queues a replacement (see the module doc)."""

    def __init__(self, client: Redis, keys: Keys, app: Celery, lost_after: float) -> None:
        self._redis = client
        self._keys = keys
        self._app = app
        self._lost_after = lost_after
        self._collect = client.register_script(_COLLECT)
        self._replace = client.register_script(_REPLACE)

    async def sweep(self, lock_seconds: int, limit: int = 200) -> int:
        """One sweep, unless another worker swept less than ``lock_seconds`` ago; the number
        of messages replaced."""
        if not await self._redis.set(self._keys.lost_sweep_lock, 1, nx=True, ex=lock_seconds):
            return 0
        now = time.time()
        raw = await self._collect(
            keys=[self._keys.queued_tasks, UNACKED],
            args=[now - self._lost_after, limit, now, self._keys.task("")],
        )
        candidates = [
            Candidate(task_id.decode(), tag.decode(), float(created), queue.decode())
            for task_id, tag, created, queue in zip(
                raw[::4], raw[1::4], raw[2::4], raw[3::4], strict=True
            )
        ]
        tails: dict[str, tuple[list[TailMessage], bool]] = {}
        replaced = 0
        for candidate in candidates:
            if candidate.queue not in tails:
                tails[candidate.queue] = await self._read_tail(candidate.queue)
            if message_is_lost(candidate, *tails[candidate.queue]):
                replaced += await self._replace_message(candidate, now)
            else:  # maybe still waiting behind others: look again after another bound
                await self._redis.zadd(self._keys.queued_tasks, {candidate.task_id: now})
        return replaced

    async def _read_tail(self, queue: str) -> tuple[list[TailMessage], bool]:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.llen(queue)
            pipe.lrange(queue, -TAIL_READ, -1)
            length, raw = await pipe.execute()
        return [TailMessage.parse(item) for item in raw], int(length) <= len(raw)

    async def _replace_message(self, candidate: Candidate, now: float) -> int:
        tag = str(uuid.uuid4())
        message = build_message(self._app, candidate.task_id, candidate.queue, delivery_tag=tag)
        replaced: Any = await self._replace(
            keys=[
                self._keys.task(candidate.task_id),
                UNACKED,
                self._keys.queued_tasks,
                candidate.queue,
            ],
            args=[candidate.task_id, candidate.tag, tag, message, now],
        )
        if replaced:
            log.warning(
                "task %s was queued for more than %.0f s with its message nowhere (its worker "
                "was killed as it took it): queued again",
                candidate.task_id,
                self._lost_after,
                extra={"task_id": candidate.task_id},
            )
        return int(replaced)
