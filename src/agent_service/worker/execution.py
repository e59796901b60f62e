"""Executing one queued run: the task record's life from ``queued`` to a terminal state.

Called by the Celery task in ``worker.tasks`` on the worker's event loop, with the parts of the
process runtime a run needs (``Execution``). Delivery counting,
the poison cap and duplicate deliveries are decided here from the record, not from Celery.
The run joins the trace of the request that queued it: the task hands its span's context over
explicitly, since the coroutine runs on another thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from opentelemetry.context import Context

from agent_service.agent.loop import Agent, RunFailedError
from agent_service.domain.approvals import ApprovalPending
from agent_service.domain.callers import ANONYMOUS_KEY, Caller
from agent_service.domain.errors import DependencyUnavailableError, ErrorType
from agent_service.domain.journal import JournalConflictError
from agent_service.domain.runs import Usage
from agent_service.domain.tasks import TaskError, TaskRecord, TaskStatus
from agent_service.observability.metrics import Metrics
from agent_service.observability.tracing import attached, record_queue_wait, tag_current_span
from agent_service.runtime import ConfigHolder, Runtime
from agent_service.runtime.process import DurableStores
from agent_service.store.limits import RunGuards
from agent_service.store.tasks import TaskStore
from agent_service.store.uploads import UploadStore
from agent_service.worker.ingestion import execute_ingestion
from agent_service.worker.storage_full import (
    PatientJournal,
    finish_when_stored,
    progress_sink,
    when_stored,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Execution:
    """What running queued tasks needs of the process runtime."""

    tasks: TaskStore
    configs: ConfigHolder
    guards: RunGuards
    metrics: Metrics
    max_deliveries: int
    """Deliveries of one task in a row (its workers lost) before it ends ``failed`` with type
    ``poison``; a resume after an approval starts the count again."""
    durable: DurableStores
    journal: bool = True
    """Record and replay step journals (False only to measure their cost)."""
    reload_grace_seconds: float = 0.0
    """How long a task whose agent this process does not know yet waits for a config reload
    (the API that accepted it may have reloaded first) before it fails."""
    uploads: UploadStore | None = None
    """Documents waiting for their ingestion tasks (``worker.ingestion``)."""

    @classmethod
    def of(cls, runtime: Runtime) -> Execution:
        return cls(
            tasks=runtime.tasks,
            configs=runtime.configs,
            guards=runtime.guards,
            metrics=runtime.metrics,
            max_deliveries=1 + runtime.settings.worker.max_redeliveries,
            durable=runtime.durable,
            journal=runtime.settings.worker.journal,
            # Two reload periods and a second: the file is re-read every period.
            reload_grace_seconds=2 * runtime.settings.config.reload_interval_seconds + 1.0
            if runtime.settings.config.reload_interval_seconds > 0
            else 0.0,
            uploads=UploadStore(runtime.redis, runtime.keys, runtime.settings.tasks.ttl_seconds),
        )


async def execute_task(
    deps: Execution,
    task_id: str,
    trace_context: Context | None = None,
    sent_from: Context | None = None,
    delivery_tag: str | None = None,
) -> TaskStatus | None:
    """Run task ``task_id`` to its end and record it. None when the record is gone, or when
    this delivery (``delivery_tag``) is a stale copy of a message that was replaced.

    ``trace_context`` is the Celery task span's context (the run's spans go under it);
    ``sent_from`` the producer's, read from the message (the queue wait span goes under it).
    """
    with attached(trace_context):
        status = await _execute(deps, task_id, sent_from, delivery_tag)
        tag_current_span("agent.task.status", status.value if status else "missing")
        return status


async def _execute(
    deps: Execution, task_id: str, sent_from: Context | None, delivery_tag: str | None
) -> TaskStatus | None:
    store = deps.tasks
    record = await when_stored(
        lambda: store.start_attempt(task_id, delivery_tag), task_id, "the run's start"
    )
    if record is None or isinstance(record, str):  # gone, or SUPERSEDED
        message = (
            "task record missing or expired; message dropped"
            if record is None
            else "stale copy of a replaced message ignored"
        )
        log.warning(message, extra={"task_id": task_id})
        return None
    status = await _attempt(deps, record, sent_from)
    if status is not None and status.terminal:
        # The session's next run may start (also for a duplicate delivery of an ended run:
        # its release may have been lost).
        await _release_session(deps, record)
    return status


async def _attempt(
    deps: Execution, record: TaskRecord, sent_from: Context | None
) -> TaskStatus | None:
    """This delivery of ``record``'s run: ignored, refused as poison, or run."""
    task_id = record.task_id
    if record.status.terminal:
        log.info(
            "task already %s; duplicate delivery ignored",
            record.status.value,
            extra={"task_id": task_id},
        )
        return record.status
    if record.status is TaskStatus.AWAITING_APPROVAL:
        log.info("task waits for an approval; stale delivery ignored", extra={"task_id": task_id})
        return record.status
    metrics = deps.metrics
    _count_delivery(metrics, record)
    record_queue_wait(
        queue=record.queue,
        task_id=task_id,
        attempt=record.attempts,
        created_at=record.created_at,
        started_at=record.started_at,
        sent_from=sent_from,
    )
    max_deliveries = deps.max_deliveries
    in_a_row = deliveries_in_a_row(record)
    if in_a_row > max_deliveries:
        message = (
            f"delivered {in_a_row} times in a row; a worker died on each of the last "
            f"{in_a_row - 1} (limit {max_deliveries})"
        )
        log.error("poison task: %s", message, extra={"task_id": task_id})
        await finish_when_stored(
            deps.tasks,
            task_id,
            TaskStatus.FAILED,
            error=TaskError(type=ErrorType.POISON, message=message),
            webhook=record.webhook is not None,
        )
        metrics.tasks_finished.labels(record.queue, TaskStatus.FAILED.value).inc()
        return TaskStatus.FAILED
    if record.ingestion is not None:  # a document for a knowledge base, not an agent run
        return await execute_ingestion(
            tasks=deps.tasks, uploads=deps.uploads, metrics=metrics, record=record,
            job=record.ingestion, kb=deps.configs.current.knowledge.get(record.ingestion.kb),
        )  # fmt: skip
    snapshot = deps.configs.current  # the config in force now; a reload does not touch this run
    agent = snapshot.agent_for(record.agent, record.tenant)
    if agent is None:
        agent = await _agent_after_reload(deps, record)
    if agent is None:
        return await _agent_gone(deps, record)
    return await _run(deps, record, agent)


async def _agent_after_reload(deps: Execution, record: TaskRecord) -> Agent | None:
    """The task's agent once this process has reloaded its config, or None after the grace.

    An agent added to the config is served by the API as soon as the API reloads; a worker that
    has not reloaded yet must not fail the task for it."""
    deadline = time.monotonic() + deps.reload_grace_seconds
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        agent = deps.configs.current.agent_for(record.agent, record.tenant)
        if agent is not None:
            return agent
    return None


async def _run(deps: Execution, record: TaskRecord, agent: Agent) -> TaskStatus | None:
    """Run the agent from where the task's journal stands, and record how it ended."""
    store, metrics, task_id = deps.tasks, deps.metrics, record.task_id
    snapshot = deps.configs.current
    caller = Caller(record.tenant, record.key_id or ANONYMOUS_KEY)
    # The attempt's start read the record: a cancel requested before it sets both the flag and
    # ``cancel_requested_at`` (one script), so the first check needs no round trip of its own.
    cancel = deps.guards.cancel_flag(task_id)
    cancel.seen(record.cancel_requested_at is not None)
    guard = deps.guards.for_run(caller, snapshot.config.limits_for(caller.tenant), cancel)
    started = time.monotonic()
    in_progress = metrics.worker_in_progress.labels(record.queue)
    in_progress.inc()
    webhook = record.webhook is not None
    try:
        journal = None
        if deps.journal:
            journals = deps.durable.journals
            opened = await journals.open(task_id, record.attempts, resumed_at(record), cancel)
            journal = PatientJournal(opened)
        # With a journal, each step's event is published by its journal entry's write.
        sink = progress_sink(store, task_id, steps=journal is None)
        result = await agent.run(
            record.request, mode="async", sink=sink, guard=guard, journal=journal
        )
    except ApprovalPending as pending:
        return await _pause(deps, record, agent, pending)
    except JournalConflictError as exc:
        log.warning("run superseded by a newer attempt: %s", exc, extra={"task_id": task_id})
        return None
    except RunFailedError as exc:
        if exc.type == ErrorType.DEPENDENCY_UNAVAILABLE:
            # Redis went away under the run (an event or its memory could not be written):
            # an outage, not the run's failure. The task hands its message back for another
            # delivery, bounded by the poison cap, instead of recording a failure; the next
            # attempt resumes from the journal.
            log.warning(
                "run interrupted by a Redis outage; handed back for another delivery",
                extra={"task_id": task_id, "attempt": record.attempts},
            )
            raise DependencyUnavailableError(exc.message) from exc
        status = TaskStatus.CANCELLED if exc.type == ErrorType.CANCELLED else TaskStatus.FAILED
        await finish_when_stored(
            store,
            task_id,
            status,
            error=TaskError(type=exc.type, message=exc.message),
            usage=Usage.from_tokens(exc.usage),
            webhook=webhook,
        )
        metrics.task_finished(
            record.queue, status.value, time.monotonic() - started, len(exc.steps), agent.name
        )
        _log_end(task_id, status, record.attempts, started, exc.type)
        return status
    finally:
        in_progress.dec()
    # The trace the API announced (X-Trace-Id); the run's own when the API traced nothing.
    result.trace_id = record.trace_id or result.trace_id
    result.run_id = task_id
    await finish_when_stored(store, task_id, TaskStatus.SUCCEEDED, result=result, webhook=webhook)
    metrics.task_finished(
        record.queue, "succeeded", time.monotonic() - started, len(result.steps), agent.name
    )
    _log_end(task_id, TaskStatus.SUCCEEDED, record.attempts, started, None)
    return TaskStatus.SUCCEEDED


def resumed_at(record: TaskRecord) -> int:
    """The journal step this attempt begins at (counted when the attempt started)."""
    return record.attempt_log[-1].resumed_at_step if record.attempt_log else 0


def deliveries_in_a_row(record: TaskRecord) -> int:
    """Deliveries since the task last started or resumed: this one and the redeliveries right
    before it (each means a worker was lost). Records without an attempt log count them all."""
    if not record.attempt_log:
        return record.attempts
    in_a_row = 0
    for attempt in reversed(record.attempt_log):
        in_a_row += 1
        if attempt.trigger != "redelivered":
            break
    return in_a_row


async def _pause(
    deps: Execution, record: TaskRecord, agent: Agent, pending: ApprovalPending
) -> TaskStatus | None:
    """Park the task on an approval: the slot is released and nothing runs until a decision
    (or the expiry sweeper) queues it again."""
    approvals = deps.durable.approvals
    approval = approvals.new(record, agent.name, pending)
    parked = await approvals.pause(record, record.attempts, approval, pending.timeout_seconds)
    if not parked:
        log.warning("run superseded before it could pause", extra={"task_id": record.task_id})
        return None
    log.info(
        "run paused: %s waits for approval %s",
        approval.tool,
        approval.approval_id,
        extra={"task_id": record.task_id, "attempt": record.attempts, "step": approval.step},
    )
    return TaskStatus.AWAITING_APPROVAL


async def _release_session(deps: Execution, record: TaskRecord) -> None:
    """Give the session's slot to the next waiting run (multitask), once the task ended."""
    session_id = record.request.session_id
    if session_id is None:
        return
    try:
        await deps.durable.slots.release(record.tenant, session_id, record.task_id)
    except DependencyUnavailableError:
        # The next submission on the session finds the slot stale and releases it then.
        log.warning("session slot not released (Redis)", extra={"task_id": record.task_id})


def _count_delivery(metrics: Metrics, record: TaskRecord) -> None:
    if record.attempts == 1 and record.started_at is not None:
        wait = max(0.0, record.started_at - record.created_at)
        metrics.task_queue_wait.labels(record.queue).observe(wait)
    elif record.attempts > 1:
        # Only an unacknowledged message comes back: its previous worker died or lost Redis.
        metrics.task_redeliveries.labels(record.queue, "worker_lost").inc()


async def _agent_gone(deps: Execution, record: TaskRecord) -> TaskStatus:
    """The task's agent left the config (or its tenant lost access) between submission and
    this delivery: the task fails, since another agent would not be what was asked for."""
    message = (
        f"agent {record.agent!r} is not in the agent config in force (generation "
        f"{deps.configs.current.version.generation}); it was when the task was submitted"
    )
    log.error("task cannot run: %s", message, extra={"task_id": record.task_id})
    await finish_when_stored(
        deps.tasks,
        record.task_id,
        TaskStatus.FAILED,
        error=TaskError(type=ErrorType.NOT_FOUND, message=message),
        webhook=record.webhook is not None,
    )
    deps.metrics.tasks_finished.labels(record.queue, TaskStatus.FAILED.value).inc()
    return TaskStatus.FAILED


def _log_end(
    task_id: str, status: TaskStatus, attempt: int, started: float, error: str | None
) -> None:
    log.info(
        "run %s",
        status.value,
        extra={
            "task_id": task_id,
            "attempt": attempt,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "error_type": error,
        },
    )
