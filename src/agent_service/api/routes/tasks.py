"""Queued runs: ``POST /v1/tasks``, ``GET /v1/tasks/{task_id}`` and its SSE event stream."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, Response
from fastapi.responses import StreamingResponse

from agent_service.api.deps import JsonBody, QueueDep, ServicesDep, check_run_body
from agent_service.api.errors import ApiError
from agent_service.api.schemas import ERROR_RESPONSES, RunBody, TaskAccepted
from agent_service.api.sse import KEEPALIVE, SSE_HEADERS, sse_event
from agent_service.domain.errors import ErrorType
from agent_service.domain.tasks import TaskRecord, TaskStatus
from agent_service.observability.tracing import current_trace_id
from agent_service.store.tasks import TERMINAL_EVENTS, TaskStore

router = APIRouter(tags=["tasks"])

_TASK_ID = re.compile(r"^[0-9a-f]{32}$")
_EVENT_ID = re.compile(r"^\d+-\d+$")


def _not_found(task_id: str) -> ApiError:
    return ApiError(404, ErrorType.NOT_FOUND, f"task {task_id!r} not found")


async def _load(store: TaskStore, task_id: str) -> TaskRecord:
    # Ids are ours (uuid4 hex): anything else cannot exist, and is not worth a Redis call.
    if not _TASK_ID.match(task_id):
        raise _not_found(task_id)
    record = await store.get(task_id)
    if record is None:
        raise _not_found(task_id)
    return record


@router.post(
    "/v1/tasks",
    status_code=202,
    response_model=TaskAccepted,
    responses=ERROR_RESPONSES,
    dependencies=[JsonBody],
)
async def submit_task(
    body: RunBody, response: Response, services: ServicesDep, queue: QueueDep
) -> TaskAccepted:
    """Enqueue a run; ``202`` with its ``task_id`` once the task is durably queued."""
    check_run_body(body.message, body.model, len(json.dumps(body.metadata)), services)
    if body.stream:
        raise ApiError(
            422,
            ErrorType.INVALID_REQUEST,
            "stream: not for tasks; follow GET /v1/tasks/{task_id}/events",
        )
    record = TaskRecord(
        task_id=uuid.uuid4().hex,
        status=TaskStatus.QUEUED,
        queue=services.settings.worker.queue,
        request=body.to_run_request(),
        created_at=time.time(),
        # The request's trace: the worker continues it (traceparent in the message headers).
        trace_id=current_trace_id(),
    )
    await queue.submit(record)
    services.metrics.tasks_submitted.labels(record.queue).inc()
    response.headers["Location"] = f"/v1/tasks/{record.task_id}"
    return TaskAccepted(task_id=record.task_id, queue=record.queue)


@router.get("/v1/tasks/{task_id}", response_model=TaskRecord, responses=ERROR_RESPONSES)
async def get_task(task_id: str, services: ServicesDep) -> TaskRecord:
    """The task record: status, timestamps, attempts, result or error, usage."""
    return await _load(services.store, task_id)


@router.get(
    "/v1/tasks/{task_id}/events",
    responses={**ERROR_RESPONSES, 200: {"content": {"text/event-stream": {}}}},
)
async def task_events(
    task_id: str,
    services: ServicesDep,
    last_event_id: str | None = Header(default=None, alias="Last-Event-ID"),
) -> StreamingResponse:
    """The run's events as SSE (``status``, ``step``, then ``done`` or ``error``).

    Each event's ``id`` is its Redis stream id; reconnect with ``Last-Event-ID`` to resume.
    The stream ends after the terminal event.
    """
    await _load(services.store, task_id)
    after = last_event_id if last_event_id and _EVENT_ID.match(last_event_id) else "0"
    keepalive = services.settings.api.sse_keepalive_seconds
    return StreamingResponse(
        _follow(services.store, task_id, after, keepalive),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


async def _follow(
    store: TaskStore, task_id: str, after: str, keepalive: float
) -> AsyncIterator[bytes]:
    block_ms = int(keepalive * 1000)
    while True:
        events = await store.read_events(task_id, after, block_ms)
        if not events:
            # Nothing new within the keep-alive interval: a comment keeps proxies from closing.
            if await store.get(task_id) is None:
                return
            yield KEEPALIVE
            continue
        for event_id, event in events:
            after = event_id
            yield sse_event(event.type, event.data, event_id)
            if event.type in TERMINAL_EVENTS:
                return
