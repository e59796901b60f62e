"""Sync runs into the history: their run id, and their archive entry put on the outbox after the
answer has gone out.

``POST /v1/chat`` (JSON or streamed) and ``POST /v1/chat/completions`` ``begin`` a ``SyncRun``
once the run is admitted. Its ``run_id`` (uuid4 hex, like a task id) is sent to the client in
the ``X-Run-Id`` header and in the result's ``run_id``; feedback and ``GET /v1/tasks/{id}``
take it once the run is archived. When the run ends (``succeeded``, ``failed``, or
``interrupted`` when a streaming client went away) its archive row is built and put on the
history outbox by a background task of the event loop: the request never waits for it, and
never for Postgres, which only the workers' drainers write. An outbox that cannot be reached
(Redis down) costs the run its history entry, never its answer: logged and counted in
``agent_history_archive_errors_total{reason="outbox"}``.

With history off the run still gets its id (it is on the access line and in the result), and
nothing is archived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from agent_service.agent.loop import RunFailedError
from agent_service.domain.callers import Caller
from agent_service.domain.errors import DependencyUnavailableError, ErrorType
from agent_service.domain.history import ArchivedRun, archived_sync_run
from agent_service.domain.runs import RunRequest, RunResult, Step, Usage
from agent_service.domain.tasks import TaskError
from agent_service.observability.metrics import Metrics
from agent_service.observability.tracing import current_trace_id
from agent_service.store.history_outbox import HistoryOutbox

log = logging.getLogger(__name__)

RUN_ID_HEADER = "X-Run-Id"
CLOSE_TIMEOUT_SECONDS = 5.0
"""How long the API's shutdown waits for archive entries still being written."""


class SyncRunArchiver:
    """Hands out run ids and puts finished sync runs on ``outbox`` (None: history off)."""

    def __init__(self, outbox: HistoryOutbox | None, metrics: Metrics) -> None:
        self._outbox = outbox
        self._metrics = metrics
        self._pending: set[asyncio.Task[None]] = set()

    def begin(self, request: RunRequest, caller: Caller) -> SyncRun:
        """A run of ``request`` for ``caller`` starts now (call it in the request's span)."""
        return SyncRun(
            run_id=uuid.uuid4().hex,
            request=request,
            key_id=caller.key_id,
            trace_id=current_trace_id(),
            started_at=time.time(),
            archiver=self,
        )

    def submit(self, build: Callable[[], ArchivedRun]) -> None:
        """Build the archive row and put it on the outbox in a background task."""
        if self._outbox is None:
            return
        task = asyncio.get_running_loop().create_task(self._enqueue(self._outbox, build))
        self._pending.add(task)  # a reference, so the task is not collected mid-flight
        task.add_done_callback(self._pending.discard)

    async def _enqueue(self, outbox: HistoryOutbox, build: Callable[[], ArchivedRun]) -> None:
        await asyncio.sleep(0)  # let the answer go out first
        run = build()
        try:
            await outbox.enqueue_sync_run(run)
        except DependencyUnavailableError as exc:
            self._metrics.history_archive_failed("outbox")
            log.warning(
                "a sync run could not be put on the history outbox (it is not archived): %s",
                exc.message,
                extra={"run_id": run.run_id},
            )

    async def close(self, grace_seconds: float = CLOSE_TIMEOUT_SECONDS) -> None:
        """Wait (up to ``grace_seconds``) for the entries still being written (API shutdown)."""
        if not self._pending:
            return
        _, late = await asyncio.wait(set(self._pending), timeout=grace_seconds)
        for task in late:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*late, return_exceptions=True)


@dataclass(frozen=True)
class _Outcome:
    """How a sync run ended: its result, or its error with the usage and steps it had made."""

    finished_at: float
    result: RunResult | None = None
    error: TaskError | None = None
    usage: Usage | None = None
    steps: list[Step] | None = None


@dataclass
class SyncRun:
    """One sync run between its admission and its end; each end is reported once."""

    run_id: str
    request: RunRequest
    key_id: str
    trace_id: str | None
    started_at: float
    archiver: SyncRunArchiver = field(repr=False)
    ended: bool = False

    @property
    def headers(self) -> dict[str, str]:
        return {RUN_ID_HEADER: self.run_id}

    def succeeded(self, result: RunResult) -> RunResult:
        """The run answered: ``result`` gets its ``run_id``; archived."""
        result.run_id = self.run_id
        self._end(_Outcome(time.time(), result=result.model_copy(deep=True)))
        return result

    def failed(self, exc: RunFailedError) -> None:
        """The run ended without an answer (its steps and usage so far are kept)."""
        error = TaskError(type=exc.type, message=exc.message)
        usage = Usage.from_tokens(exc.usage)
        self._end(_Outcome(time.time(), error=error, usage=usage, steps=list(exc.steps)))

    def crashed(self) -> None:
        """The run raised an unexpected error (logged by the caller)."""
        error = TaskError(type=ErrorType.INTERNAL, message="internal error")
        self._end(_Outcome(time.time(), error=error))

    def shut_down(self, message: str) -> None:
        """The API process shut down before the run ended (its drain's grace ran out)."""
        error = TaskError(type=ErrorType.SHUTTING_DOWN, message=message)
        self._end(_Outcome(time.time(), error=error))

    def handed_over(self) -> None:
        """The run goes on as a task (a tool call waits for a person's approval): the task is
        archived when it ends, so this run is not."""
        self.ended = True

    def interrupted(self, steps: list[Step]) -> None:
        """The client went away mid-run (a stream closed): archived as ``cancelled`` with the
        steps that had ended."""
        error = TaskError(type=ErrorType.CANCELLED, message="the client went away")
        self._end(_Outcome(time.time(), error=error, usage=_usage_of(steps), steps=list(steps)))

    def _end(self, outcome: _Outcome) -> None:
        if self.ended:
            return
        self.ended = True
        self.archiver.submit(partial(self._archived, outcome))

    def _archived(self, outcome: _Outcome) -> ArchivedRun:
        return archived_sync_run(
            self.run_id,
            self.request,
            started_at=self.started_at,
            finished_at=outcome.finished_at,
            result=outcome.result,
            error=outcome.error,
            usage=outcome.usage,
            steps=outcome.steps,
            key_id=self.key_id,
            trace_id=self.trace_id,
        )


def _usage_of(steps: list[Step]) -> Usage:
    """The usage of the LLM steps of ``steps`` (what a cut run had spent)."""
    total = Usage()
    for step in steps:
        if step.usage is not None:
            total.input_tokens += step.usage.input_tokens
            total.output_tokens += step.usage.output_tokens
            total.total_tokens += step.usage.total_tokens
            total.cost_usd = round(total.cost_usd + step.usage.cost_usd, 8)
    return total
