"""Leased outboxes: a Redis sorted set whose members are taken for a while, not popped.

A member's score is the time it is due. Claiming re-scores it to ``now + lease`` in the same set,
so a claimant that dies needs no reaper: the member simply becomes due again when its lease runs
out. The new score doubles as the lease token: a later transition first checks that the member
still has the score its claim gave it, so a claimant whose lease ran out (and was retaken) can
no longer settle it. Times come from Redis (``TIME``), so claimants' clocks need not agree.

Used by the webhook outbox (``store.webhooks``) and the history outbox
(``store.history_outbox``); each adds its own settle script, checked against the lease token.
"""

from __future__ import annotations

from redis.commands.core import AsyncScript

from agent_service.store.client import Redis

LUA_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""
"""Lua prelude setting ``now`` (Unix seconds, microsecond precision) from the Redis clock."""

# Claims up to ARGV[2] members due by now (oldest first), leasing each until now + ARGV[1].
# KEYS: the sorted set. Returns [member, lease token, member, lease token, ...].
CLAIM_DUE = (
    LUA_NOW
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local claimed = {}
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), member)
  claimed[#claimed + 1] = member
  claimed[#claimed + 1] = redis.call('ZSCORE', KEYS[1], member)
end
return claimed
"""
)


def register_claim(client: Redis) -> AsyncScript:
    """The claim script on ``client`` (call ``claim_due`` with it)."""
    return client.register_script(CLAIM_DUE)


async def claim_due(
    script: AsyncScript, key: str, lease_seconds: float, limit: int
) -> list[tuple[str, str]]:
    """Lease up to ``limit`` due members of ``key``, oldest first, for ``lease_seconds``:
    (member, lease token) pairs. Raises redis errors (callers are ``guarded``)."""
    if limit <= 0:
        return []
    raw = await script(keys=[key], args=[lease_seconds, limit])
    pairs = zip(raw[::2], raw[1::2], strict=True)
    return [(member.decode(), lease.decode()) for member, lease in pairs]
