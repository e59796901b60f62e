"""Executing one queued run: the task record's life from ``queued`` to a terminal state.

Called by the Celery task in ``worker.tasks`` on the worker's event loop, with the parts of the
process runtime a run needs (``Execution``). Delivery counting,
the poison cap and duplicate deliveries are decided here from the record, not from Celery.
The run joins the trace of the request that queued it: the task hands its span's context over
explicitly, since the coroutine runs on another thread.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from opentelemetry.context import Context

from agent_service.agent.loop import RunFailedError
from agent_service.domain.callers import ANONYMOUS_KEY, Caller
from agent_service.domain.errors import DependencyUnavailableError, ErrorType
from agent_service.domain.runs import RunEvent, Usage
from agent_service.domain.tasks import TaskError, TaskRecord, TaskStatus
from agent_service.observability.metrics import Metrics
from agent_service.observability.tracing import attached, record_queue_wait, tag_current_span
from agent_service.runtime import ConfigHolder, Runtime
from agent_service.store.limits import RunGuards
from agent_service.store.tasks import TaskStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Execution:
    """What running queued tasks needs of the process runtime."""

    tasks: TaskStore
    configs: ConfigHolder
    guards: RunGuards
    metrics: Metrics
    max_deliveries: int
    """Deliveries of one task before it ends ``failed`` with type ``poison``."""

    @classmethod
    def of(cls, runtime: Runtime) -> Execution:
        return cls(
            tasks=runtime.tasks,
            configs=runtime.configs,
            guards=runtime.guards,
            metrics=runtime.metrics,
            max_deliveries=1 + runtime.settings.worker.max_redeliveries,
        )


async def execute_task(
    deps: Execution,
    task_id: str,
    trace_context: Context | None = None,
    sent_from: Context | None = None,
) -> TaskStatus | None:
    """Run task ``task_id`` to its end and record it. None when the record is gone.

    ``trace_context`` is the Celery task span's context (the run's spans go under it);
    ``sent_from`` the producer's, read from the message (the queue wait span goes under it).
    """
    with attached(trace_context):
        status = await _execute(deps, task_id, sent_from)
        tag_current_span("agent.task.status", status.value if status else "missing")
        return status


async def _execute(deps: Execution, task_id: str, sent_from: Context | None) -> TaskStatus | None:
    store = deps.tasks
    record = await store.start_attempt(task_id)
    if record is None:
        log.warning("task record missing or expired; message dropped", extra={"task_id": task_id})
        return None
    if record.status.terminal:
        log.info(
            "task already %s; duplicate delivery ignored",
            record.status.value,
            extra={"task_id": task_id},
        )
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
    if record.attempts > max_deliveries:
        message = (
            f"delivered {record.attempts} times; a worker died on each of the last "
            f"{record.attempts - 1} (limit {max_deliveries})"
        )
        log.error("poison task: %s", message, extra={"task_id": task_id})
        await store.finish(
            task_id,
            TaskStatus.FAILED,
            error=TaskError(type=ErrorType.POISON, message=message),
            webhook=record.webhook is not None,
        )
        metrics.tasks_finished.labels(record.queue, TaskStatus.FAILED.value).inc()
        return TaskStatus.FAILED

    async def sink(event: RunEvent) -> None:
        await store.append_event(task_id, event)

    snapshot = deps.configs.current  # the config in force now; a reload does not touch this run
    agent = snapshot.agent_for(record.agent, record.tenant)
    if agent is None:
        return await _agent_gone(deps, record)
    caller = Caller(record.tenant, record.key_id or ANONYMOUS_KEY)
    guard = deps.guards.for_run(caller, snapshot.config.limits_for(caller.tenant), task_id)
    started = time.monotonic()
    in_progress = metrics.worker_in_progress.labels(record.queue)
    in_progress.inc()
    webhook = record.webhook is not None
    try:
        result = await agent.run(record.request, mode="async", sink=sink, guard=guard)
    except RunFailedError as exc:
        if exc.type == ErrorType.DEPENDENCY_UNAVAILABLE:
            # Redis went away under the run (an event or its memory could not be written):
            # an outage, not the run's failure. The task hands its message back for another
            # delivery, bounded by the poison cap, instead of recording a failure.
            log.warning(
                "run interrupted by a Redis outage; handed back for another delivery",
                extra={"task_id": task_id, "attempt": record.attempts},
            )
            raise DependencyUnavailableError(exc.message) from exc
        status = TaskStatus.CANCELLED if exc.type == ErrorType.CANCELLED else TaskStatus.FAILED
        await store.finish(
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
    await store.finish(task_id, TaskStatus.SUCCEEDED, result=result, webhook=webhook)
    metrics.task_finished(
        record.queue, "succeeded", time.monotonic() - started, len(result.steps), agent.name
    )
    _log_end(task_id, TaskStatus.SUCCEEDED, record.attempts, started, None)
    return TaskStatus.SUCCEEDED


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
    await deps.tasks.finish(
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
