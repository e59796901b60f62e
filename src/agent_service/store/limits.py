"""Rate limits and budgets in Redis, shared by every API and worker process.

Per API key: requests per minute and LLM tokens per minute, in fixed one-minute windows. Per
tenant: LLM tokens and USD per UTC day. ``Limiter.admit`` checks them all in one Lua script
before a run starts (and counts the request); ``charge`` adds a finished LLM call's tokens and
cost; ``RedisRunGuard`` re-checks the daily budgets and the task's cancel flag (``CancelFlag``)
between steps, so a run that crosses its budget stops cleanly with ``budget_exceeded``.

Windows are fixed (minute boundaries), so a client may burst up to twice its per-minute rate
across a boundary: simple, atomic and one round trip. Counters exist only for limits that are
set; a limit set later starts counting then.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass

from agent_service.agentconfig.model import RateLimits
from agent_service.domain.callers import Caller
from agent_service.domain.errors import AgentError, ErrorType
from agent_service.domain.messages import TokenUsage
from agent_service.store.client import Redis, guarded
from agent_service.store.keys import Keys

MICRO = 1_000_000
WINDOW_TTL_SECONDS = 120
DAY_TTL_SECONDS = 2 * 86_400

# KEYS: requests window, tokens window, daily tokens, daily micro-USD.
# ARGV: rpm, tpm, daily tokens, daily micro-USD limits (0: none), window TTL.
# Returns {reason or '', requests counted in this window}.
_ADMIT = """
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local dtok, dusd = tonumber(ARGV[3]), tonumber(ARGV[4])
local used = 0
if rpm > 0 then
  used = redis.call('INCR', KEYS[1])
  if used == 1 then redis.call('EXPIRE', KEYS[1], ARGV[5]) end
  if used > rpm then return {'requests_per_minute', used} end
end
if tpm > 0 and tonumber(redis.call('GET', KEYS[2]) or '0') >= tpm then
  return {'tokens_per_minute', used}
end
if dtok > 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= dtok then
  return {'daily_tokens', used}
end
if dusd > 0 and tonumber(redis.call('GET', KEYS[4]) or '0') >= dusd then
  return {'daily_usd', used}
end
return {'', used}
"""


@dataclass(frozen=True)
class Admission:
    """The answer of ``Limiter.admit``."""

    allowed: bool
    reason: str | None
    """``requests_per_minute``, ``tokens_per_minute``, ``daily_tokens`` or ``daily_usd``."""
    retry_after: int
    """Seconds until the exhausted window (or UTC day) resets."""
    limit: int | None
    """The per-minute request limit, for ``X-RateLimit-*`` headers (None if not set)."""
    remaining: int | None
    reset: int
    """Seconds until the current minute window ends."""


def _minute(now: float) -> int:
    return int(now // 60)


def _day(now: float) -> str:
    return datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y%m%d")


def _seconds_to_midnight(now: float) -> int:
    return int(86_400 - now % 86_400) + 1


def _seconds_to_next_minute(now: float) -> int:
    return int(60 - now % 60) + 1


def _any(limits: RateLimits) -> bool:
    return any(
        value is not None
        for value in (
            limits.requests_per_minute,
            limits.tokens_per_minute,
            limits.daily_tokens,
            limits.daily_cost_usd,
        )
    )


class Limiter:
    """Admission and accounting of runs against ``RateLimits``."""

    def __init__(self, client: Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._admit = client.register_script(_ADMIT)

    @guarded
    async def admit(
        self, caller: Caller, limits: RateLimits, now: float | None = None
    ) -> Admission:
        """Count one request and say whether it may run (nothing is counted if no limit)."""
        now = time.time() if now is None else now
        reset = _seconds_to_next_minute(now)
        if not _any(limits):
            return Admission(True, None, 0, None, None, reset)
        minute, day = _minute(now), _day(now)
        keys = self._keys
        reason, used = await self._admit(
            keys=[
                keys.requests_window(caller.key_id, minute),
                keys.tokens_window(caller.key_id, minute),
                keys.daily_tokens(caller.tenant, day),
                keys.daily_cost(caller.tenant, day),
            ],
            args=[
                limits.requests_per_minute or 0,
                limits.tokens_per_minute or 0,
                limits.daily_tokens or 0,
                round((limits.daily_cost_usd or 0) * MICRO),
                WINDOW_TTL_SECONDS,
            ],
        )
        reason = reason.decode() if isinstance(reason, bytes) else str(reason)
        rpm = limits.requests_per_minute
        remaining = max(0, rpm - int(used)) if rpm is not None else None
        if not reason:
            return Admission(True, None, 0, rpm, remaining, reset)
        daily = reason.startswith("daily_")
        retry = _seconds_to_midnight(now) if daily else reset
        return Admission(False, reason, retry, rpm, remaining, reset)

    @guarded
    async def charge(
        self, caller: Caller, limits: RateLimits, usage: TokenUsage, now: float | None = None
    ) -> None:
        """Add one LLM call's tokens and cost to the counters of the limits that are set."""
        now = time.time() if now is None else now
        keys = self._keys
        async with self._redis.pipeline(transaction=False) as pipe:
            queued = False
            if limits.tokens_per_minute is not None and usage.total_tokens:
                key = keys.tokens_window(caller.key_id, _minute(now))
                pipe.incrby(key, usage.total_tokens)
                pipe.expire(key, WINDOW_TTL_SECONDS)
                queued = True
            if limits.daily_tokens is not None and usage.total_tokens:
                key = keys.daily_tokens(caller.tenant, _day(now))
                pipe.incrby(key, usage.total_tokens)
                pipe.expire(key, DAY_TTL_SECONDS)
                queued = True
            if limits.daily_cost_usd is not None and usage.cost_usd > 0:
                key = keys.daily_cost(caller.tenant, _day(now))
                pipe.incrby(key, round(usage.cost_usd * MICRO))
                pipe.expire(key, DAY_TTL_SECONDS)
                queued = True
            if queued:
                await pipe.execute()

    @guarded
    async def over_budget(
        self, caller: Caller, limits: RateLimits, now: float | None = None
    ) -> str | None:
        """``daily_tokens`` or ``daily_usd`` when the tenant has spent its day, else None."""
        if limits.daily_tokens is None and limits.daily_cost_usd is None:
            return None
        now = time.time() if now is None else now
        day = _day(now)
        tokens, micro = await self._redis.mget(
            self._keys.daily_tokens(caller.tenant, day), self._keys.daily_cost(caller.tenant, day)
        )
        if limits.daily_tokens is not None and int(tokens or 0) >= limits.daily_tokens:
            return "daily_tokens"
        if limits.daily_cost_usd is not None and int(micro or 0) >= limits.daily_cost_usd * MICRO:
            return "daily_usd"
        return None


BUDGET_MESSAGES = {
    "daily_tokens": "the tenant's daily token budget is spent",
    "daily_usd": "the tenant's daily USD budget is spent",
}


class CancelFlag:
    """A task's cancel flag (``Keys.cancel``, set by ``TaskStore.cancel`` while it runs), read
    by its run's guard before each step.

    A write that already reads the flag in its own round trip (the step journal's append, the
    start of the attempt) leaves the value here with ``seen``; the guard's next check uses it
    instead of asking Redis again. It is used once: the check after it asks Redis.
    """

    def __init__(self, client: Redis, key: str) -> None:
        self._redis = client
        self.key = key
        self._seen: bool | None = None

    def seen(self, raised: bool) -> None:
        """What a write just read of the flag."""
        self._seen = raised

    @guarded
    async def raised(self) -> bool:
        seen, self._seen = self._seen, None
        if seen is not None:
            return seen
        return bool(await self._redis.exists(self.key))


class RedisRunGuard:
    """``agent.ports.RunGuard``: budgets (and, for a task, its cancel flag) between steps."""

    def __init__(
        self,
        limiter: Limiter,
        caller: Caller,
        limits: RateLimits,
        cancel: CancelFlag | None = None,
    ) -> None:
        self._limiter = limiter
        self._caller = caller
        self._limits = limits
        self._cancel = cancel

    @property
    def needed(self) -> bool:
        """Whether checking costs anything useful: a task's cancel flag, or a limit that counts
        LLM calls (the request rate is counted once, by ``Limiter.admit``)."""
        limits = self._limits
        per_call = (limits.tokens_per_minute, limits.daily_tokens, limits.daily_cost_usd)
        return self._cancel is not None or any(value is not None for value in per_call)

    async def check(self) -> None:
        if self._cancel is not None and await self._cancel.raised():
            raise AgentError(ErrorType.CANCELLED, "the task was cancelled")
        reason = await self._limiter.over_budget(self._caller, self._limits)
        if reason is not None:
            raise AgentError(ErrorType.BUDGET_EXCEEDED, BUDGET_MESSAGES[reason])

    async def charge(self, usage: TokenUsage) -> None:
        await self._limiter.charge(self._caller, self._limits, usage)


class RunGuards:
    """Builds the between-steps guard of each run: the API for sync runs, the worker for
    tasks (which also watch their cancel flag)."""

    def __init__(self, limiter: Limiter, client: Redis, keys: Keys) -> None:
        self._limiter = limiter
        self._redis = client
        self._keys = keys

    def cancel_flag(self, task_id: str) -> CancelFlag:
        """Task ``task_id``'s cancel flag, for its guard and the writes that read it too."""
        return CancelFlag(self._redis, self._keys.cancel(task_id))

    def for_run(
        self, caller: Caller, limits: RateLimits, cancel: CancelFlag | None = None
    ) -> RedisRunGuard | None:
        """The guard of a run of ``caller`` under ``limits`` (its tenant's), watching ``cancel``
        (a task's), or None when there is nothing to check between steps."""
        guard = RedisRunGuard(self._limiter, caller, limits, cancel)
        return guard if guard.needed else None
