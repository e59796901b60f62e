"""Executing one queued run: the task record's life from ``queued`` to a terminal state.

Called by the Celery task in ``worker.tasks`` on the worker's event loop. Delivery counting,
the poison cap and duplicate deliveries are decided here from the record, not from Celery.
"""

from __future__ import annotations

import logging
import time

from agent_service.agent.loop import RunFailedError
from agent_service.domain.errors import ErrorType
from agent_service.domain.runs import RunEvent, Usage
from agent_service.domain.tasks import TaskError, TaskStatus
from agent_service.services import Services

log = logging.getLogger(__name__)


async def execute_task(services: Services, task_id: str) -> TaskStatus | None:
    """Run task ``task_id`` to its end and record it. None when the record is gone."""
    store = services.store
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
    max_deliveries = 1 + services.settings.worker.max_redeliveries
    if record.attempts > max_deliveries:
        message = (
            f"delivered {record.attempts} times; a worker died on each of the last "
            f"{record.attempts - 1} (limit {max_deliveries})"
        )
        log.error("poison task: %s", message, extra={"task_id": task_id})
        await store.finish(
            task_id, TaskStatus.FAILED, error=TaskError(type=ErrorType.POISON, message=message)
        )
        return TaskStatus.FAILED

    async def sink(event: RunEvent) -> None:
        await store.append_event(task_id, event)

    agent = services.agent  # the snapshot in force now; a reload does not touch this run
    started = time.monotonic()
    try:
        result = await agent.run(record.request, mode="async", sink=sink)
    except RunFailedError as exc:
        await store.finish(
            task_id,
            TaskStatus.FAILED,
            error=TaskError(type=exc.type, message=exc.message),
            usage=Usage.from_tokens(exc.usage),
        )
        _log_end(task_id, TaskStatus.FAILED, record.attempts, started, exc.type)
        return TaskStatus.FAILED
    result.trace_id = record.trace_id
    await store.finish(task_id, TaskStatus.SUCCEEDED, result=result)
    _log_end(task_id, TaskStatus.SUCCEEDED, record.attempts, started, None)
    return TaskStatus.SUCCEEDED


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
