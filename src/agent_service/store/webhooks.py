"""The webhook outbox: which tasks' completion webhooks are due, and who holds each delivery.

``TaskStore.finish`` (and the cancel script) add a task id to the outbox sorted set, scored by
the time it is due, in the transaction that makes the task terminal. ``worker.webhooks`` then
claims due ids, delivers, and settles each one here.

A claim is a lease (``store.leases``): a worker that dies mid-delivery needs no reaper, its id
becomes due again when the lease runs out, and a worker whose lease ran out (and was claimed by
another) can no longer touch the record. Each transition (claim, begin, retry, delivered, dead,
drop) is one Lua script, one round trip.

Delivery is at least once: a POST that succeeded on a worker that died before ``delivered``
is made again by the next lease holder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agent_service.domain.tasks import WebhookState
from agent_service.store.client import Redis, guarded
from agent_service.store.keys import Keys
from agent_service.store.leases import LUA_NOW, claim_due, register_claim

APPROVAL_MEMBER_PREFIX = "approval:"
"""Outbox members of ``approval.required`` deliveries: ``approval:<approval_id>`` (the others
are task ids, whose completion is due)."""
DEAD_LETTERS_KEPT = 10_000
"""The dead-letter list keeps the newest task ids (each record says ``dead`` until it expires)."""

# If the caller still holds the lease (the id's score is its lease token): write the record's
# webhook state (unless ARGV[3] is empty or the record expired), then by mode ARGV[4]:
#   hold: keep the lease; retry: due again in ARGV[5] seconds; delivered, drop: leave the outbox;
#   dead: leave the outbox for the dead-letter list (trimmed to ARGV[6] ids).
# KEYS: outbox, record, dead letters. ARGV: task id, lease, state, mode, delay, kept.
# Returns 1, or 0 when the lease was lost (nothing written).
_SETTLE = (
    """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'webhook', ARGV[3])
end
local mode = ARGV[4]
if mode == 'retry' then
"""
    + LUA_NOW
    + """
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), ARGV[1])
elseif mode ~= 'hold' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  if mode == 'dead' then
    redis.call('LPUSH', KEYS[3], ARGV[1])
    redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[6]) - 1)
  end
end
return 1
"""
)

_Mode = Literal["hold", "retry", "delivered", "dead", "drop"]


@dataclass(frozen=True)
class Claim:
    """A delivery held by this worker until its lease runs out. ``lease`` is the token (the
    outbox score the claim set) that every transition of this claim is checked against."""

    task_id: str
    lease: str


class WebhookOutbox:
    """The outbox and dead letters under ``keys`` (the task records' own key prefix)."""

    def __init__(self, client: Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._claim = register_claim(client)
        self._settle = client.register_script(_SETTLE)

    @guarded
    async def claim(self, lease_seconds: float, limit: int) -> list[Claim]:
        """Lease up to ``limit`` due deliveries, oldest first, for ``lease_seconds``."""
        pairs = await claim_due(self._claim, self._keys.webhook_outbox, lease_seconds, limit)
        return [Claim(task_id, lease) for task_id, lease in pairs]

    async def begin(self, claim: Claim, state: WebhookState) -> bool:
        """Show ``state`` (``delivering``) and keep the lease; False if the lease was lost."""
        return await self._transition(claim, "hold", state)

    async def retry(self, claim: Claim, state: WebhookState, delay_seconds: float) -> bool:
        """Record ``state`` and make the delivery due again in ``delay_seconds``."""
        return await self._transition(claim, "retry", state, delay_seconds)

    async def delivered(self, claim: Claim, state: WebhookState) -> bool:
        """Record ``state`` and take the task off the outbox."""
        return await self._transition(claim, "delivered", state)

    async def dead(self, claim: Claim, state: WebhookState) -> bool:
        """Record ``state`` and move the task id from the outbox to the dead letters."""
        return await self._transition(claim, "dead", state)

    async def drop(self, claim: Claim) -> bool:
        """Take an id with nothing to deliver (record expired, already final) off the outbox."""
        return await self._transition(claim, "drop", None)

    @guarded
    async def _transition(
        self, claim: Claim, mode: _Mode, state: WebhookState | None, delay: float = 0.0
    ) -> bool:
        done = await self._settle(
            keys=[
                self._keys.webhook_outbox,
                self._subject_key(claim.task_id),
                self._keys.webhook_dead,
            ],
            args=[
                claim.task_id,
                claim.lease,
                state.model_dump_json() if state is not None else "",
                mode,
                repr(max(0.0, delay)),
                DEAD_LETTERS_KEPT,
            ],
        )
        return bool(done)

    def _subject_key(self, member: str) -> str:
        """Where a member's delivery state lives: its task record, or for an
        ``approval.required`` delivery (``approval:<id>``), the approval's record."""
        if member.startswith(APPROVAL_MEMBER_PREFIX):
            return self._keys.approval(member.removeprefix(APPROVAL_MEMBER_PREFIX))
        return self._keys.task(member)

    @guarded
    async def dead_letters(self, limit: int = 100) -> list[str]:
        """The newest dead-lettered task ids, newest first."""
        raw = await self._redis.lrange(self._keys.webhook_dead, 0, limit - 1)
        return [item.decode() if isinstance(item, bytes) else item for item in raw]
