"""The step journal of queued runs in Redis: a list per task, and its approval decisions.

``worker.execution`` opens a run's journal after counting the delivery (``TaskStore.
start_attempt`` reports how many steps it already holds) and hands it to the agent loop as its
``StepJournal`` port. Each step is appended by one script, one round trip, that also fences the
attempt: only the attempt the task record counts last may write, so a stale delivery that still
runs (its worker was presumed dead) stops at its next step instead of writing over the run. The
same script publishes the step's ``step`` event on the task's stream (the worker's event sink
leaves step events to it) and reads the task's cancel flag for the guard's next check: a step
costs one round trip, not three (issue 17). The journal and the decisions share the task
record's TTL.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from redis.asyncio.client import Pipeline

from agent_service.domain.approvals import ApprovalDecision
from agent_service.domain.journal import JournalConflictError, JournalEntry
from agent_service.store.client import Redis, guarded
from agent_service.store.keys import Keys
from agent_service.store.limits import CancelFlag

# KEYS: journal, task record, events, cancel flag.
# ARGV: index of the new entry, entry JSON, ttl, attempt, step event JSON, events maxlen.
# Returns {1 (appended), -1 (the journal is not at that index) or -2 (another attempt owns it),
# whether the cancel flag is set}.
_APPEND = """
local cancelled = redis.call('EXISTS', KEYS[4])
if redis.call('HGET', KEYS[2], 'attempts') ~= ARGV[4] then return {-2, cancelled} end
if redis.call('LLEN', KEYS[1]) ~= tonumber(ARGV[1]) then return {-1, cancelled} end
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'type', 'step', 'data', ARGV[5])
redis.call('EXPIRE', KEYS[3], ARGV[3])
return {1, cancelled}
"""


class RedisStepJournal:
    """One attempt's view of its task's journal (``agent.ports.StepJournal``)."""

    def __init__(
        self,
        store: JournalStore,
        task_id: str,
        attempt: int,
        *,
        entries: list[JournalEntry],
        decisions: Mapping[int, ApprovalDecision],
        cancel: CancelFlag,
    ) -> None:
        self._store = store
        self.task_id = task_id
        self.attempt = attempt
        self._entries = entries
        self._decisions = decisions
        self._cancel = cancel

    @property
    def entries(self) -> Sequence[JournalEntry]:
        return self._entries

    @property
    def decisions(self) -> Mapping[int, ApprovalDecision]:
        return self._decisions

    def idempotency_key(self, step: int) -> str:
        return f"{self.task_id}:{step}"

    async def append(self, entry: JournalEntry) -> None:
        """Record ``entry`` and publish its step's event; the cancel flag read with it is left
        for the guard's next check."""
        index = len(self._entries)
        await self._store.append(self.task_id, self.attempt, index, entry, self._cancel)
        self._entries.append(entry)


class JournalStore:
    """Journals and decisions under ``keys``; they expire with the task (``ttl_seconds``)."""

    def __init__(self, client: Redis, keys: Keys, ttl_seconds: int, events_max: int) -> None:
        self._redis = client
        self._keys = keys
        self._ttl = ttl_seconds
        self._events_max = events_max
        self._append = client.register_script(_APPEND)

    @guarded
    async def open(
        self, task_id: str, attempt: int, recorded_steps: int, cancel: CancelFlag
    ) -> RedisStepJournal:
        """Attempt ``attempt``'s journal; ``recorded_steps`` (counted when the attempt began)
        says whether there is anything to read: a run starting afresh costs no round trip.
        ``cancel`` is the task's cancel flag, read by each append."""
        entries: list[JournalEntry] = []
        decisions: dict[int, ApprovalDecision] = {}
        if recorded_steps > 0:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.lrange(self._keys.journal(task_id), 0, -1)
                pipe.hgetall(self._keys.decisions(task_id))
                raw_entries, raw_decisions = await pipe.execute()
            entries = [JournalEntry.model_validate_json(raw) for raw in raw_entries]
            decisions = {
                int(step): ApprovalDecision.model_validate_json(value)
                for step, value in cast(dict[bytes, bytes], raw_decisions).items()
            }
        return RedisStepJournal(
            self, task_id, attempt, entries=entries, decisions=decisions, cancel=cancel
        )

    @guarded
    async def append(
        self, task_id: str, attempt: int, index: int, entry: JournalEntry, cancel: CancelFlag
    ) -> None:
        """Record ``entry`` at ``index`` and publish its step's ``step`` event; what the task's
        cancel flag read is left on ``cancel``. ``JournalConflictError`` if another attempt took
        the run over or the journal moved on without this attempt (nothing is written then)."""
        keys = self._keys
        done, cancelled = await self._append(
            keys=[keys.journal(task_id), keys.task(task_id), keys.events(task_id), cancel.key],
            args=[
                index,
                entry.model_dump_json(),
                self._ttl,
                attempt,
                entry.step.model_dump_json(),
                self._events_max,
            ],
        )
        if int(done) != 1:
            owner = "a newer attempt owns the run" if int(done) == -2 else "the journal moved on"
            raise JournalConflictError(f"step {index} of task {task_id} not recorded: {owner}")
        cancel.seen(bool(cancelled))

    def add_entries(self, pipe: Pipeline, task_id: str, entries: Sequence[JournalEntry]) -> None:
        """Queue the commands writing ``entries`` as a new journal on ``pipe`` (a sync run
        handed over to a task)."""
        if not entries:
            return
        key = self._keys.journal(task_id)
        pipe.rpush(key, *(entry.model_dump_json() for entry in entries))
        pipe.expire(key, self._ttl)

    @guarded
    async def read(self, task_id: str) -> list[dict[str, Any]]:
        """The journal's entries as JSON objects (for tests and debugging)."""
        raw = await self._redis.lrange(self._keys.journal(task_id), 0, -1)
        return [json.loads(item) for item in raw]
