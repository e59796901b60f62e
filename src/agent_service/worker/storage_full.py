"""A worker's runs while Redis is full: progress is best effort, a run's end is kept until stored.

Redis runs with ``noeviction``: at ``maxmemory`` it refuses every write, a run's end included.
The API stops taking tasks before that point and workers stop taking messages off the queue
(``store.memory``), so the runs in flight have headroom to finish; this module is what happens
when even that headroom runs out. Called by ``worker.execution``:

* a progress event (``step``, ``delta``) that cannot be written is dropped and the run goes on:
  the end carries the whole result, steps included;
* the start of a run (``TaskStore.start_attempt``), each step it appends to its journal
  (``PatientJournal``) and its end (``TaskStore.finish``) are retried with backoff for up to
  ``FINISH_PATIENCE_SECONDS``; still refused,
  ``StorageFullError`` leaves the task, which hands its message back (``worker.tasks``; if
  Redis refuses that too, the message stays unacknowledged and comes back after the
  visibility timeout): the task runs again once Redis has room. A message is never
  acknowledged without its run's end recorded, so nothing accepted is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from agent_service.agent.ports import EventSink
from agent_service.domain.approvals import ApprovalDecision
from agent_service.domain.errors import StorageFullError
from agent_service.domain.journal import JournalEntry
from agent_service.domain.runs import RunEvent
from agent_service.store.journal import RedisStepJournal
from agent_service.store.tasks import TaskStore

log = logging.getLogger(__name__)

T = TypeVar("T")

FINISH_PATIENCE_SECONDS = 30.0
"""How long a run's end waits for Redis to take it. Well below the 60 s the visibility timeout
leaves after the run timeout, so the message is not delivered again while its end waits."""
FIRST_RETRY_SECONDS = 0.2
LONGEST_RETRY_SECONDS = 5.0


def progress_sink(store: TaskStore, task_id: str, steps: bool = True) -> EventSink:
    """The run's event sink: appends to the task's stream, drops events Redis refuses.
    ``steps`` False leaves ``step`` events out (the run's journal publishes them)."""
    dropped = 0

    async def sink(event: RunEvent) -> None:
        nonlocal dropped
        if event.type == "step" and not steps:
            return
        try:
            await store.append_event(task_id, event)
        except StorageFullError:
            dropped += 1
            if dropped == 1:
                log.warning(
                    "Redis is full: progress events of this run are dropped; its end is kept",
                    extra={"task_id": task_id},
                )

    return sink


class PatientJournal:
    """A queued run's step journal (``agent.ports.StepJournal``) whose appends wait for a full
    Redis like the run's end does: a step is never skipped (a resumed run would make its call
    again), and the run does not fail for a full Redis while it waits."""

    def __init__(self, journal: RedisStepJournal) -> None:
        self._journal = journal

    @property
    def entries(self) -> Sequence[JournalEntry]:
        return self._journal.entries

    @property
    def decisions(self) -> Mapping[int, ApprovalDecision]:
        return self._journal.decisions

    def idempotency_key(self, step: int) -> str:
        return self._journal.idempotency_key(step)

    async def append(self, entry: JournalEntry) -> None:
        step = len(self._journal.entries)
        what = f"step {step} of the run's journal"
        await when_stored(lambda: self._journal.append(entry), self._journal.task_id, what)


async def finish_when_stored(store: TaskStore, task_id: str, *args: Any, **kwargs: Any) -> None:
    """``store.finish(task_id, ...)``, retried while Redis refuses it for being full."""
    await when_stored(lambda: store.finish(task_id, *args, **kwargs), task_id, "the run's end")


async def when_stored(write: Callable[[], Awaitable[T]], task_id: str, what: str) -> T:
    """``write()``, retried with backoff while Redis refuses it for being full, for up to
    ``FINISH_PATIENCE_SECONDS``; then ``StorageFullError`` (the task hands its message back)."""
    deadline = time.monotonic() + FINISH_PATIENCE_SECONDS
    wait = FIRST_RETRY_SECONDS
    while True:
        try:
            return await write()
        except StorageFullError:
            if time.monotonic() + wait > deadline:
                log.error(
                    "Redis stayed full for %.0f s: %s could not be recorded; the message is "
                    "handed back and the task runs again when Redis has room",
                    FINISH_PATIENCE_SECONDS,
                    what,
                    extra={"task_id": task_id},
                )
                raise
            log.warning(
                "Redis is full: %s is retried in %.1f s", what, wait, extra={"task_id": task_id}
            )
            await asyncio.sleep(wait)
            wait = min(LONGEST_RETRY_SECONDS, wait * 2)
