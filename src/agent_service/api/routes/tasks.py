"""Queued runs: ``POST /v1/tasks``, ``GET /v1/tasks/{task_id}``, its SSE event stream, cancel.

Tasks belong to the tenant that submitted them: another tenant's task answers 404, exactly as
an unknown one (an admin key reads any). With history on, a task Redis no longer holds is read
from the archive (``api.history_reads``).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Header, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from agent_service.api.deps import (
    CallerDep,
    DrainDep,
    DurableDep,
    GateDep,
    JsonBody,
    MetricsDep,
    OptionalHistoryDep,
    QueueDep,
    SettingsDep,
    SnapshotDep,
    TasksDep,
)
from agent_service.api.drain import STREAM_RESUME_MESSAGE, Drain, ShuttingDownError, first_of
from agent_service.api.errors import ApiError
from agent_service.api.history_reads import find_task, not_found, replayed_events
from agent_service.api.schemas import ERROR_RESPONSES, CancelAnswer, TaskAccepted, TaskBody
from agent_service.api.sessions import end_task
from agent_service.api.sse import KEEPALIVE, SSE_HEADERS, sse_event
from agent_service.domain.errors import ErrorType, ToolError
from agent_service.domain.tasks import TaskRecord, TaskStatus, WebhookState
from agent_service.egress.guard import check_url
from agent_service.observability.tracing import current_trace_id
from agent_service.queue.sessions import SessionBusyError
from agent_service.settings import WebhookSettings
from agent_service.store.tasks import TERMINAL_EVENTS, TaskStore
from agent_service.webhooks.policy import target_refusal
from agent_service.webhooks.tenant_secret import signing_secret

router = APIRouter(tags=["tasks"])

_EVENT_ID = re.compile(r"^\d+-\d+$")
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9._:-]{1,255}$"
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def check_webhook(url: str, settings: WebhookSettings, *, has_secret: bool) -> None:
    """422 unless the webhook URL is one the service may call (scheme, hosts, SSRF guard) and
    the tenant has a secret to sign its deliveries with."""
    try:
        check_url(url, settings.allow_private_networks)  # also refuses unparsable URLs
    except ToolError as exc:
        raise ApiError(422, ErrorType.INVALID_REQUEST, f"webhook_url: {exc}") from None
    # The worker applies the same rule again before each delivery (its settings decide).
    refusal = target_refusal(
        url, allow_http=settings.allow_http, allowed_hosts=settings.allowed_hosts
    )
    if refusal is not None:
        raise ApiError(422, ErrorType.INVALID_REQUEST, f"webhook_url: {refusal}")
    if not has_secret:
        raise ApiError(
            422,
            ErrorType.INVALID_REQUEST,
            "webhook_url: no webhook secret is configured for this tenant (webhookSecret)",
        )


def check_idempotency_key(key: str | None) -> None:
    """422 unless an ``Idempotency-Key`` header is absent or well formed."""
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        raise ApiError(
            422,
            ErrorType.INVALID_REQUEST,
            "Idempotency-Key: 1 to 255 characters among letters, digits and ._:-",
        )


def body_hash(body: BaseModel) -> str:
    """What tells two requests with one ``Idempotency-Key`` apart."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@router.post(
    "/v1/tasks",
    status_code=202,
    response_model=TaskAccepted,
    responses={
        **ERROR_RESPONSES,
        200: {"model": TaskAccepted, "description": "Idempotent replay: the existing task"},
        409: {
            "model": ERROR_RESPONSES[400]["model"],
            "description": "Idempotency-Key reused with another body, or the session has a run "
            "in progress and the agent's multitask is `reject`",
        },
    },
    dependencies=[JsonBody],
)
async def submit_task(
    *,
    body: TaskBody,
    response: Response,
    snapshot: SnapshotDep,
    gate: GateDep,
    settings: SettingsDep,
    tasks: TasksDep,
    queue: QueueDep,
    caller: CallerDep,
    durable: DurableDep,
    history: OptionalHistoryDep,
    idempotency_key: str | None = Header(
        default=None, alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY_PATTERN
    ),
) -> TaskAccepted | JSONResponse:
    """Enqueue a run; ``202`` with its ``task_id`` once the task is durably queued.

    With an ``Idempotency-Key`` header: the same key with the same body answers ``200`` with
    the task it made (concurrent duplicates make one task); the same key with another body is
    ``409``. Keys are per tenant and live as long as the task record.

    With a ``session_id`` whose session has a run going, the agent's ``multitask`` decides:
    ``reject`` answers 409, ``enqueue`` queues the run after it (``status: queued``,
    ``waiting: true``), ``interrupt`` cancels it and queues this one.
    """
    config = snapshot.config
    agent = gate.check(body, snapshot, caller)
    if body.stream:
        raise ApiError(
            422,
            ErrorType.INVALID_REQUEST,
            "stream: not for tasks; follow GET /v1/tasks/{task_id}/events",
        )
    check_idempotency_key(idempotency_key)
    if body.webhook_url is not None:
        secret = signing_secret(config, caller.tenant, settings)
        check_webhook(body.webhook_url, settings.webhooks, has_secret=bool(secret))
    rate = await gate.admit(caller, config)
    record = TaskRecord(
        task_id=uuid.uuid4().hex,
        status=TaskStatus.QUEUED,
        queue=settings.worker.queue,
        request=body.to_run_request(caller.tenant, agent.name),
        agent=agent.name,
        config_generation=snapshot.version.generation,
        created_at=time.time(),
        # The request's trace: the worker continues it (traceparent in the message headers).
        trace_id=current_trace_id(),
        tenant=caller.tenant,
        key_id=caller.key_id,
        idempotency_key=idempotency_key,
        webhook=WebhookState(url=body.webhook_url) if body.webhook_url else None,
    )
    # The body's hash only matters against an Idempotency-Key's earlier request.
    digest = body_hash(body) if idempotency_key is not None else None
    try:
        submitted = await queue.submit(record, body_hash=digest, multitask=agent.profile.multitask)
    except SessionBusyError as exc:
        raise ApiError(
            409,
            ErrorType.CONFLICT,
            f"session {body.session_id!r} has a run in progress (task {exc.task_id}, "
            f"{exc.status}); the agent's multitask is reject",
            headers={"Location": f"/v1/tasks/{exc.task_id}"},
        ) from None
    if submitted.withdrawn is not None:  # an interrupted run that waited for an approval
        await durable.approvals.withdraw(*submitted.withdrawn)
    response.headers.update(rate)
    response.headers["Location"] = f"/v1/tasks/{submitted.task_id}"
    if submitted.created:
        gate.metrics.tasks_submitted.labels(record.queue).inc()
        return TaskAccepted(
            task_id=record.task_id,
            queue=record.queue,
            waiting=submitted.waiting,
            interrupted=list(submitted.interrupted),
        )
    if not submitted.same_body:
        raise ApiError(
            409,
            ErrorType.CONFLICT,
            "Idempotency-Key was already used with a different request body",
            headers={"Location": f"/v1/tasks/{submitted.task_id}"},
        )
    existing = (await find_task(tasks, history, submitted.task_id, caller)).record
    answer = TaskAccepted(
        task_id=submitted.task_id,
        status=existing.status.value,
        queue=existing.queue or record.queue,
        idempotent_replay=True,
    )
    return JSONResponse(answer.model_dump(), status_code=200, headers=dict(response.headers))


@router.get("/v1/tasks/{task_id}", response_model=TaskRecord, responses=ERROR_RESPONSES)
async def get_task(
    task_id: str, tasks: TasksDep, history: OptionalHistoryDep, caller: CallerDep
) -> TaskRecord:
    """The task record: status, timestamps, attempts, result or error, usage, webhook.

    With history on, a finished task (or sync run, by its run id) is read from the archive
    once Redis no longer holds it, in the same shape."""
    return (await find_task(tasks, history, task_id, caller)).record


@router.post(
    "/v1/tasks/{task_id}/cancel",
    response_model=CancelAnswer,
    responses={
        **ERROR_RESPONSES,
        202: {"model": CancelAnswer, "description": "Running: it stops at its next step"},
        409: {"model": ERROR_RESPONSES[400]["model"], "description": "The task already ended"},
    },
)
async def cancel_task(
    task_id: str,
    *,
    tasks: TasksDep,
    history: OptionalHistoryDep,
    metrics: MetricsDep,
    caller: CallerDep,
    durable: DurableDep,
) -> CancelAnswer | JSONResponse:
    """Cancel a task: a queued one never starts, and one waiting for an approval never resumes
    (``200``, ``cancelled``: its approval is withdrawn); a running one stops at its next step
    boundary on whichever worker runs it (``202``, ``cancelling``; it then ends
    ``cancelled``, or ``succeeded`` if its last step was already done). An ended task is
    ``409``."""
    record = (await find_task(tasks, history, task_id, caller, admin_reads=False)).record
    if record.status.terminal:
        raise _already_ended(task_id, record.status.value)
    outcome = await end_task(tasks, durable, record, metrics)
    if outcome is None:
        raise not_found(task_id)
    if outcome == "cancelled":
        return CancelAnswer(task_id=task_id, status=outcome)
    if outcome == "cancelling":
        return JSONResponse(CancelAnswer(task_id=task_id, status=outcome).model_dump(), 202)
    raise _already_ended(task_id, outcome)


def _already_ended(task_id: str, status: str) -> ApiError:
    return ApiError(409, ErrorType.CONFLICT, f"task {task_id!r} already ended: {status}")


@router.get(
    "/v1/tasks/{task_id}/events",
    responses={**ERROR_RESPONSES, 200: {"content": {"text/event-stream": {}}}},
)
async def task_events(
    task_id: str,
    *,
    tasks: TasksDep,
    history: OptionalHistoryDep,
    settings: SettingsDep,
    caller: CallerDep,
    drain: DrainDep,
    last_event_id: str | None = Header(default=None, alias="Last-Event-ID"),
) -> StreamingResponse:
    """The run's events as SSE (``status``, ``step``, then ``done``, ``error`` or
    ``cancelled``).

    Each event's ``id`` is its Redis stream id; reconnect with ``Last-Event-ID`` to resume
    after it, with no gap and no duplicate. Any API process serves any task's stream. A
    keep-alive comment is sent every ``AGENT_API_SSE_KEEPALIVE_SECONDS`` (15 s) while nothing
    happens. The stream ends after the terminal event, or when this API process shuts down:
    then with an ``error`` event of type ``shutting_down`` and no id (reconnect with
    ``Last-Event-ID``; the task is not affected). A run read from the archive replays its
    steps and its terminal event (ids ``0-1``, ``0-2``, …).
    """
    found = await find_task(tasks, history, task_id, caller)
    after = last_event_id if last_event_id and _EVENT_ID.match(last_event_id) else "0"
    if found.archived:
        return StreamingResponse(
            _replay(found.record, after), media_type="text/event-stream", headers=SSE_HEADERS
        )
    keepalive = settings.api.sse_keepalive_seconds
    return StreamingResponse(
        _follow(tasks, task_id, after, keepalive, drain),
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


async def _replay(record: TaskRecord, after: str) -> AsyncIterator[bytes]:
    for event_id, event in replayed_events(record, after):
        yield sse_event(event.type, event.data, event_id)


async def _follow(
    store: TaskStore, task_id: str, after: str, keepalive: float, drain: Drain
) -> AsyncIterator[bytes]:
    block_ms = int(keepalive * 1000)
    while True:
        try:
            # Resumable, and run elsewhere: ends as soon as this process starts draining.
            events = await first_of(store.read_events(task_id, after, block_ms), drain.begun())
        except ShuttingDownError:
            yield sse_event(
                "error", {"type": ErrorType.SHUTTING_DOWN, "message": STREAM_RESUME_MESSAGE}
            )
            return
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
