"""The history outbox: finished runs waiting to be archived to Postgres, and who holds each batch.

A finished run is put on the outbox in the transaction that makes it final, so no run is final
without its archive entry: a task by ``add_task`` (its payload is its record hash, read back at
archive time), a sync run by ``add_sync_run`` (its payload, an ``ArchivedRun``, is stored beside
it with the task TTL). Each member (``task:<id>``, ``sync:<id>``) is in two sorted sets: the
outbox proper, a leased outbox (``store.leases``) scored by when it is due, and ``enqueued``,
scored by when it was added, which leases never touch, so the archive lag stays visible while
a Postgres outage makes every batch come back.

``worker.history_drainer`` claims a batch, ``load``s it, writes it to Postgres, then
``settle``s it: the members leave both sets, a sync payload is deleted, and a task's record and
events are given the short ``archived record TTL`` (reads then fall back to Postgres), unless
its webhook is still on the webhook outbox (its delivery needs the record). A drainer that dies
between the write and ``settle`` leaves its lease to run out; the next one writes the batch
again, which the archive's ``ON CONFLICT DO NOTHING`` makes harmless.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.client import Pipeline

from agent_service.domain.history import ArchivedRun, RunKind, archived_task
from agent_service.domain.runs import DEFAULT_TENANT
from agent_service.store.client import Redis, guarded
from agent_service.store.keys import Keys
from agent_service.store.leases import LUA_NOW, claim_due, register_claim
from agent_service.store.tasks import parse_task_record

# For each member still leased by the caller (its score is the lease token): remove it from the
# outbox and the enqueued set; then, unless ARGV[1] is 0 (dropped, not archived), a sync run's
# payload is deleted and a task's record and events get the archived TTL (never a longer one),
# unless the task is on the webhook outbox.
# KEYS: outbox, enqueued, webhook outbox, then per member: record | payload, events | payload.
# ARGV: archived TTL (0: leave records and payloads alone), then per member: member, lease,
# kind, run id.
# Returns how many members were settled (the others' leases were lost).
_SETTLE = """
local ttl = tonumber(ARGV[1])
local settled = 0
for i = 0, (#ARGV - 1) / 4 - 1 do
  local member, lease, kind, id = ARGV[2 + 4 * i], ARGV[3 + 4 * i], ARGV[4 + 4 * i], ARGV[5 + 4 * i]
  local first, second = KEYS[4 + 2 * i], KEYS[5 + 2 * i]
  if redis.call('ZSCORE', KEYS[1], member) == lease then
    redis.call('ZREM', KEYS[1], member)
    redis.call('ZREM', KEYS[2], member)
    settled = settled + 1
    if ttl == 0 then
      -- dropped, not archived: the record or payload is left to expire, for inspection
    elseif kind == 'sync' then
      redis.call('DEL', first)
    elseif not redis.call('ZSCORE', KEYS[3], id) then
      for _, key in ipairs({first, second}) do
        local left = redis.call('TTL', key)
        if left == -1 or left > ttl then redis.call('EXPIRE', key, ttl) end
      end
    end
  end
end
return settled
"""

# Makes each member still leased by the caller due again ARGV[1] seconds from now.
# KEYS: outbox. ARGV: delay, then member, lease pairs. Returns how many were released.
_RELEASE = (
    LUA_NOW
    + """
local released = 0
for i = 2, #ARGV, 2 do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i])
    released = released + 1
  end
end
return released
"""
)


def outbox_member(kind: RunKind, run_id: str) -> str:
    return f"{kind.value}:{run_id}"


@dataclass(frozen=True)
class OutboxClaim:
    """A run on the outbox, held by this drainer until its lease (the token) runs out."""

    kind: RunKind
    run_id: str
    lease: str

    @property
    def member(self) -> str:
        return outbox_member(self.kind, self.run_id)


@dataclass(frozen=True)
class OutboxItem:
    """A claimed run and what it will be archived as; ``run`` is None when there is nothing to
    archive (``problem`` says why: its record expired, or could not be read)."""

    claim: OutboxClaim
    run: ArchivedRun | None
    problem: str | None = None


@dataclass(frozen=True)
class OutboxStats:
    """How many runs wait, and since when the oldest one waits (Unix seconds)."""

    depth: int
    oldest_enqueued_at: float | None

    def lag_seconds(self, now: float) -> float:
        """Age of the oldest waiting run (0 when none waits)."""
        if self.oldest_enqueued_at is None:
            return 0.0
        return max(0.0, now - self.oldest_enqueued_at)


class HistoryOutbox:
    """The history outbox under ``keys``; sync-run payloads expire after ``payload_ttl``
    seconds (the task TTL: a run waiting longer than its record would is given up)."""

    def __init__(self, client: Redis, keys: Keys, payload_ttl_seconds: int) -> None:
        self._redis = client
        self._keys = keys
        self._payload_ttl = payload_ttl_seconds
        self._claim = register_claim(client)
        self._settle = client.register_script(_SETTLE)
        self._release = client.register_script(_RELEASE)

    def _add(self, pipe: Pipeline, member: str, now: float) -> None:
        # NX on both: a member added twice keeps its first time and any lease it holds.
        pipe.zadd(self._keys.history_outbox, {member: now}, nx=True)
        pipe.zadd(self._keys.history_enqueued, {member: now}, nx=True)

    @staticmethod
    def task_member(task_id: str) -> str:
        """The outbox member of task ``task_id`` (the cancel script adds it itself)."""
        return outbox_member(RunKind.TASK, task_id)

    def add_task(self, pipe: Pipeline, task_id: str) -> None:
        """Queue on ``pipe`` (the transaction making task ``task_id`` final) its outbox entry.

        The task's record must stay readable until it is archived: its TTL, untouched here.
        """
        self._add(pipe, outbox_member(RunKind.TASK, task_id), time.time())

    def add_sync_run(self, pipe: Pipeline, run: ArchivedRun) -> None:
        """Queue on ``pipe`` a finished sync run and its outbox entry."""
        payload = self._keys.history_payload(run.run_id)
        pipe.set(payload, run.model_dump_json(), ex=self._payload_ttl)
        self._add(pipe, outbox_member(RunKind.SYNC, run.run_id), time.time())

    @guarded
    async def enqueue_task(self, task_id: str) -> None:
        """Put a finished task on the outbox on its own (``add_task`` inside a transaction is
        the normal way)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            self.add_task(pipe, task_id)
            await pipe.execute()

    @guarded
    async def enqueue_sync_run(self, run: ArchivedRun) -> None:
        """Put a finished sync run on the outbox: one round trip, after the answer is sent."""
        async with self._redis.pipeline(transaction=True) as pipe:
            self.add_sync_run(pipe, run)
            await pipe.execute()

    @guarded
    async def claim(self, lease_seconds: float, limit: int) -> list[OutboxClaim]:
        """Lease up to ``limit`` due runs, oldest first, for ``lease_seconds``."""
        pairs = await claim_due(self._claim, self._keys.history_outbox, lease_seconds, limit)
        claims = []
        for member, lease in pairs:
            kind, _, run_id = member.partition(":")
            claims.append(OutboxClaim(RunKind(kind), run_id, lease))
        return claims

    @guarded
    async def load(self, claims: Sequence[OutboxClaim]) -> list[OutboxItem]:
        """What each claimed run will be archived as, read in one round trip."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for claim in claims:
                if claim.kind is RunKind.TASK:
                    pipe.hgetall(self._keys.task(claim.run_id))
                else:
                    pipe.get(self._keys.history_payload(claim.run_id))
            raw: list[Any] = await pipe.execute()
        return [_item(claim, value) for claim, value in zip(claims, raw, strict=True)]

    @guarded
    async def settle(self, claims: Sequence[OutboxClaim], archived_ttl_seconds: int) -> int:
        """Take archived runs off the outbox, shorten their records' TTL to
        ``archived_ttl_seconds`` and delete sync payloads; with 0, take runs that cannot be
        archived off and leave their records and payloads to expire. Returns how many were
        still leased."""
        if not claims:
            return 0
        keys = [self._keys.history_outbox, self._keys.history_enqueued, self._keys.webhook_outbox]
        args: list[str | int] = [archived_ttl_seconds]
        for claim in claims:
            if claim.kind is RunKind.TASK:
                keys += [self._keys.task(claim.run_id), self._keys.events(claim.run_id)]
            else:
                payload = self._keys.history_payload(claim.run_id)
                keys += [payload, payload]
            args += [claim.member, claim.lease, claim.kind.value, claim.run_id]
        return int(await self._settle(keys=keys, args=args))

    @guarded
    async def release(self, claims: Sequence[OutboxClaim], delay_seconds: float) -> int:
        """Give back runs that could not be archived: due again in ``delay_seconds``."""
        if not claims:
            return 0
        args: list[str | float] = [max(0.0, delay_seconds)]
        for claim in claims:
            args += [claim.member, claim.lease]
        return int(await self._release(keys=[self._keys.history_outbox], args=args))

    @guarded
    async def stats(self) -> OutboxStats:
        """Depth and oldest enqueue time (for ``agent_history_outbox_depth`` and the lag)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self._keys.history_outbox)
            pipe.zrange(self._keys.history_enqueued, 0, 0, withscores=True)
            depth, oldest = await pipe.execute()
        return OutboxStats(int(depth), float(oldest[0][1]) if oldest else None)

    @guarded
    async def is_pending(self, kind: RunKind, run_id: str) -> bool:
        """Whether the run waits on the outbox (the feedback route answers "not archived yet,
        retry" for it instead of "unknown run")."""
        member = outbox_member(kind, run_id)
        return await self._redis.zscore(self._keys.history_enqueued, member) is not None

    @guarded
    async def pending_tenant(self, run_id: str) -> str | None:
        """The tenant of run ``run_id`` (a task or a sync run) while it waits on the outbox,
        else None: the feedback route answers "not archived yet, retry" to its owner only."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zscore(self._keys.history_enqueued, outbox_member(RunKind.TASK, run_id))
            pipe.zscore(self._keys.history_enqueued, outbox_member(RunKind.SYNC, run_id))
            pipe.hget(self._keys.task(run_id), "tenant")
            pipe.get(self._keys.history_payload(run_id))
            task_waits, sync_waits, task_tenant, payload = await pipe.execute()
        if task_waits is not None:
            return task_tenant.decode() if task_tenant else DEFAULT_TENANT
        if sync_waits is not None and payload:
            try:
                tenant = json.loads(payload).get("tenant")
            except ValueError:
                return None
            return tenant if isinstance(tenant, str) else None
        return None


def _item(claim: OutboxClaim, value: Any) -> OutboxItem:
    if not value:
        return OutboxItem(claim, None, "expired")
    try:
        if claim.kind is RunKind.TASK:
            run = archived_task(parse_task_record(value))
        else:
            run = ArchivedRun.model_validate_json(value)
    except (KeyError, ValueError) as exc:  # ValidationError and JSONDecodeError are ValueErrors
        return OutboxItem(claim, None, f"unreadable: {type(exc).__name__}: {exc}"[:300])
    return OutboxItem(claim, run)
