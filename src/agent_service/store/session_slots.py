"""Which run a session is busy with, and the runs waiting for it (multitask ``enqueue``).

A queued run with a ``session_id`` takes its session's slot when it is submitted (the producer,
``queue.sessions``, in the enqueue transaction) and gives it back when it ends: the worker calls
``release`` after the task becomes terminal, and the API when it cancels a task no worker holds.
Release hands the slot to the first waiting run and pushes that run's message onto its queue, in
one script. A slot naming a task that ended (a release lost to a crash) is stale: the next
submission on the session releases it first.

Keys: ``slot:<tenant>:<session>`` (the task id) and ``slotq:<tenant>:<session>`` (a list of
``<task_id> <queue> <message>``), with the task TTL.
"""

from __future__ import annotations

from agent_service.store.client import Redis, guarded
from agent_service.store.keys import Keys

# KEYS: slot, waiting list. ARGV: the task ending, ttl. Returns 0 (the slot was not that task's),
# 1 (freed) or 2 (handed to the next waiting run, whose message was pushed onto its queue).
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local nxt = redis.call('LPOP', KEYS[2])
if not nxt then
  redis.call('DEL', KEYS[1])
  return 1
end
local first = string.find(nxt, ' ', 1, true)
local second = string.find(nxt, ' ', first + 1, true)
redis.call('SET', KEYS[1], string.sub(nxt, 1, first - 1), 'EX', ARGV[2])
redis.call('LPUSH', string.sub(nxt, first + 1, second - 1), string.sub(nxt, second + 1))
return 2
"""


def session_key(tenant: str, session_id: str) -> str:
    """A session as keys name it: sessions belong to a tenant (as in the agent loop's memory)."""
    return f"{tenant}:{session_id}"


def waiting_entry(task_id: str, queue: str, message: bytes) -> bytes:
    return f"{task_id} {queue} ".encode() + message


class SessionSlots:
    """Session slots under ``keys``, kept as long as task records (``ttl_seconds``)."""

    def __init__(self, client: Redis, keys: Keys, ttl_seconds: int) -> None:
        self._redis = client
        self._keys = keys
        self._ttl = ttl_seconds
        self._release = client.register_script(_RELEASE)

    @property
    def keys(self) -> Keys:
        return self._keys

    @property
    def ttl_seconds(self) -> int:
        return self._ttl

    @guarded
    async def release(self, tenant: str, session_id: str, task_id: str) -> int:
        """Give back the slot of ``task_id`` (if it holds it): to the next waiting run, or free.

        0: the slot was not ``task_id``'s; 1: freed; 2: handed over."""
        session = session_key(tenant, session_id)
        done = await self._release(
            keys=[self._keys.session_slot(session), self._keys.session_waiting(session)],
            args=[task_id, self._ttl],
        )
        return int(done)

    @guarded
    async def holder(self, tenant: str, session_id: str) -> tuple[str, str | None] | None:
        """The task holding the session's slot and its status (None: no such record), or None
        when the slot is free."""
        task_id = await self._redis.get(self._keys.session_slot(session_key(tenant, session_id)))
        if task_id is None:
            return None
        text = task_id.decode() if isinstance(task_id, bytes) else str(task_id)
        status = await self._redis.hget(self._keys.task(text), "status")
        return text, status.decode() if isinstance(status, bytes) else status
