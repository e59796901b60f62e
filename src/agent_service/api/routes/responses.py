"""OpenAI's Responses API: ``POST /v1/responses``, ``GET``/``DELETE /v1/responses/{id}``,
``POST /v1/responses/{id}/cancel``.

A foreground response runs in the API process like ``POST /v1/chat`` (streamed with
``"stream": true``); ``"background": true`` makes it a queued task (same durability,
``Idempotency-Key`` and webhooks as ``POST /v1/tasks``), answered at once with status
``queued``, then polled with ``GET`` or followed with ``GET ...?stream=true&starting_after=N``.
``previous_response_id`` continues the conversation of a stored response of the same tenant.
Responses are stored for the task TTL (``"store": false`` keeps none). Errors are in OpenAI's
shape. The translation lives in ``api.openai.responses`` and ``api.openai.response_events``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse

from agent_service.agent.loop import Agent, RunFailedError
from agent_service.api.admission import RunGate
from agent_service.api.deps import (
    CallerDep,
    GateDep,
    JsonBody,
    QueueDep,
    ResponsesDep,
    SettingsDep,
    SnapshotDep,
    SyncRunsDep,
    TasksDep,
)
from agent_service.api.errors import ApiError, run_error_status
from agent_service.api.openai.common import Asked, agent_and_model, output_format, run_request
from agent_service.api.openai.errors import OPENAI_ERROR_RESPONSES
from agent_service.api.openai.responses import (
    Outcome,
    StoredResponse,
    hex_of,
    item_messages,
    merge_calls,
    now_outcome,
    output_items,
    parse_item_id,
    response_error,
    response_id,
    response_object,
    task_outcome,
)
from agent_service.api.openai.responses_models import (
    FunctionChoice,
    FunctionTool,
    ResponseAllowedToolsChoice,
    ResponseBody,
    TextFormatJsonObject,
    TextFormatJsonSchema,
)
from agent_service.api.routes.response_stream import live_events, replay, task_events
from agent_service.api.routes.tasks import (
    IDEMPOTENCY_KEY_PATTERN,
    body_hash,
    check_idempotency_key,
    check_webhook,
)
from agent_service.api.sse import SSE_HEADERS
from agent_service.domain.callers import Caller
from agent_service.domain.errors import ErrorType
from agent_service.domain.messages import ChatMessage
from agent_service.domain.runs import OutputFormat, RunRequest
from agent_service.domain.tasks import TaskRecord, TaskStatus, WebhookState
from agent_service.observability.tracing import current_trace_id
from agent_service.queue.producer import TaskQueue
from agent_service.runtime import Snapshot
from agent_service.settings import Settings
from agent_service.store.responses import ResponseStore
from agent_service.store.tasks import TaskStore
from agent_service.webhooks.tenant_secret import signing_secret

router = APIRouter(tags=["openai"])

_RESPONSE_ID = re.compile(r"^resp_[0-9a-f]{32}$")
_RUNNING = ("queued", "in_progress")


def _not_found(value: str, param: str | None = None) -> ApiError:
    return ApiError(404, ErrorType.NOT_FOUND, f"response {value!r} not found", param=param)


async def _load(
    store: ResponseStore, tasks: TaskStore, tenant: str, value: str, param: str | None = None
) -> tuple[StoredResponse, Outcome]:
    """A stored response of ``tenant`` and where it stands; 404 when there is none."""
    if not _RESPONSE_ID.match(value):
        raise _not_found(value, param)
    document = await store.get(tenant, value)
    if document is None:
        raise _not_found(value, param)
    stored = StoredResponse.model_validate_json(document)
    if stored.task_id is None:
        return stored, stored.outcome or Outcome(status="in_progress")
    record = await tasks.get(stored.task_id)
    if record is None or record.tenant != tenant:
        raise _not_found(value, param)
    return stored, task_outcome(record)


async def _input_messages(
    body: ResponseBody, store: ResponseStore, tasks: TaskStore, tenant: str
) -> list[ChatMessage]:
    """The request's input as conversation messages (item references resolved)."""
    if body.input is None:
        return []
    if isinstance(body.input, str):
        return [ChatMessage(role="user", content=body.input)] if body.input else []
    messages: list[ChatMessage] = []
    for item in body.input:
        if item.type == "item_reference":
            messages.extend(await _referenced(item.id, store, tasks, tenant))
        else:
            messages.extend(item_messages(item.model_dump(by_alias=True)))
    return messages


async def _referenced(
    value: str, store: ResponseStore, tasks: TaskStore, tenant: str
) -> list[ChatMessage]:
    """The messages of an output item of one of the tenant's stored responses."""
    parsed = parse_item_id(value)
    missing = ApiError(404, ErrorType.NOT_FOUND, f"item {value!r} not found", param="input")
    if parsed is None:
        raise missing
    hex_id, _ = parsed
    stored, outcome = await _load(store, tasks, tenant, response_id(hex_id), "input")
    messages = outcome.result.messages or [] if outcome.result else []
    for item in output_items(hex_id, messages, stored.client_tools):
        if item["id"] == value:
            return item_messages(item)
    raise missing


async def _previous(
    body: ResponseBody, store: ResponseStore, tasks: TaskStore, tenant: str
) -> list[ChatMessage]:
    """The conversation after ``previous_response_id`` (none without one)."""
    if body.previous_response_id is None:
        return []
    param = "previous_response_id"
    stored, outcome = await _load(store, tasks, tenant, body.previous_response_id, param)
    if outcome.status not in ("completed", "incomplete"):
        raise ApiError(
            409,
            ErrorType.CONFLICT,
            f"previous_response_id: response {stored.id!r} is {outcome.status}",
            param=param,
        )
    return stored.transcript(outcome.result)


def _functions(body: ResponseBody) -> list[FunctionTool]:
    """The request's functions offered to the model, as ``tool_choice`` allows."""
    functions = list(body.tools or ())
    choice = body.tool_choice
    if choice == "none":
        return []
    if isinstance(choice, ResponseAllowedToolsChoice):
        allowed = choice.names()
        return [f for f in functions if f.name in allowed]
    return functions


def _forced(body: ResponseBody) -> str | dict[str, Any] | None:
    """The tool call the first LLM call must make: ``required``, or a named function."""
    choice = body.tool_choice
    if isinstance(choice, FunctionChoice):
        return {"type": "function", "function": {"name": choice.name}}
    if choice == "required" or (
        isinstance(choice, ResponseAllowedToolsChoice) and choice.mode == "required"
    ):
        return "required"
    return None


def _output_format(body: ResponseBody) -> OutputFormat | None:
    wanted = body.text.format if body.text else None
    if isinstance(wanted, TextFormatJsonObject):
        return output_format("json_object", None, None, None, "text.format")
    if isinstance(wanted, TextFormatJsonSchema):
        return output_format(
            "json_schema", wanted.name, wanted.schema_, wanted.strict, "text.format.schema"
        )
    return None


def _params(body: ResponseBody) -> dict[str, Any]:
    """What the ``response`` object echoes of the request."""
    params = body.model_dump(
        mode="json",
        by_alias=True,
        exclude={"input", "stream", "stream_options", "webhook_url", "include"},
        exclude_none=True,
    )
    params["tools"] = [
        {
            "type": "function",
            "name": t.name,
            "description": t.description,
            "parameters": t.parameters,
            "strict": t.strict,
        }
        for t in body.tools or ()
    ]
    return params


def _run_request(
    body: ResponseBody,
    conversation: list[ChatMessage],
    agent: Agent,
    model: str | None,
    tenant: str,
) -> RunRequest:
    asked = Asked(
        functions=_functions(body),
        output=_output_format(body),
        forced=_forced(body),
        max_output_tokens=body.max_output_tokens,
        metadata=body.metadata,
        user=body.user,
    )
    return run_request(
        conversation,
        asked,
        agent=agent,
        model=model,
        tenant=tenant,
        param="input",
        instructions=body.instructions,
    )


@router.post(
    "/v1/responses",
    responses={
        **OPENAI_ERROR_RESPONSES,
        200: {
            "content": {"application/json": {}, "text/event-stream": {}},
            "description": "The response object (JSON), or its events (SSE)",
        },
        409: {"model": OPENAI_ERROR_RESPONSES[404]["model"], "description": "Conflict"},
    },
    dependencies=[JsonBody],
)
async def create_response(
    *,
    body: ResponseBody,
    response: Response,
    snapshot: SnapshotDep,
    gate: GateDep,
    settings: SettingsDep,
    caller: CallerDep,
    store: ResponsesDep,
    tasks: TasksDep,
    queue: QueueDep,
    sync_runs: SyncRunsDep,
    idempotency_key: str | None = Header(
        default=None, alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY_PATTERN
    ),
) -> Any:
    """Run the agent on ``input`` and answer with a ``response`` object (or its events)."""
    config = snapshot.config
    agent, model = agent_and_model(body.model, snapshot, caller.tenant)
    if body.background and body.store is False:
        raise ApiError(
            422, ErrorType.INVALID_REQUEST, "background responses need store: true", param="store"
        )
    if body.webhook_url is not None and not body.background:
        raise ApiError(
            422,
            ErrorType.INVALID_REQUEST,
            "webhook_url: for background responses",
            param="webhook_url",
        )
    previous = await _previous(body, store, tasks, caller.tenant)
    conversation = merge_calls(
        [*previous, *await _input_messages(body, store, tasks, caller.tenant)]
    )
    request = _run_request(body, conversation, agent, model, caller.tenant)
    gate.check_limits(request.message, model, len(json.dumps(request.metadata)), config)
    hex_id = uuid.uuid4().hex
    stored = StoredResponse(
        id=response_id(hex_id),
        created_at=int(time.time()),
        params=_params(body),
        conversation=conversation,
        client_tools=[tool.name for tool in request.client_tools],
    )
    if body.background:
        return await _submit(
            body,
            request,
            stored,
            snapshot,
            caller,
            gate=gate,
            settings=settings,
            store=store,
            tasks=tasks,
            queue=queue,
            idempotency_key=idempotency_key,
        )
    rate = await gate.admit(caller, config)
    guard = gate.guard(caller, config)
    run = sync_runs.begin(request, caller)  # archived with history on, like a /v1/chat run
    headers = {**rate, **run.headers}
    if body.stream:
        events = live_events(
            stored,
            agent,
            run,
            store,
            bool(body.store),
            keepalive=settings.api.sse_keepalive_seconds,
            metrics=gate.metrics,
            guard=guard,
        )
        return StreamingResponse(
            events, media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
        )
    response.headers.update(headers)
    failure: RunFailedError | None = None
    try:
        result = await agent.run(request, mode="sync", guard=guard)
    except RunFailedError as exc:
        gate.metrics.run_finished("sync", "failed", len(exc.steps), agent.name)
        run.failed(exc)
        failure = exc
        stored.outcome = now_outcome(None, response_error(exc.type, exc.message))
    except Exception:
        run.crashed()
        raise
    else:
        gate.metrics.run_finished("sync", "succeeded", len(result.steps), agent.name)
        stored.outcome = now_outcome(run.succeeded(result), None)
    if body.store:
        await store.put(caller.tenant, stored.id, stored.model_dump_json())
    if failure is not None:
        status = run_error_status(failure.type)
        raise ApiError(status, failure.type, failure.message, headers=headers)
    return JSONResponse(response_object(stored, stored.outcome), headers=headers)


async def _submit(
    body: ResponseBody,
    request: RunRequest,
    stored: StoredResponse,
    snapshot: Snapshot,
    caller: Caller,
    *,
    gate: RunGate,
    settings: Settings,
    store: ResponseStore,
    tasks: TaskStore,
    queue: TaskQueue,
    idempotency_key: str | None,
) -> Any:
    """A background response: its task and its stored response in one transaction."""
    check_idempotency_key(idempotency_key)
    config = snapshot.config
    if body.webhook_url is not None:
        secret = signing_secret(config, caller.tenant, settings)
        check_webhook(body.webhook_url, settings.webhooks, has_secret=bool(secret))
    rate = await gate.admit(caller, config)
    task_id = hex_of(stored.id)
    stored.task_id = task_id
    record = TaskRecord(
        task_id=task_id,
        status=TaskStatus.QUEUED,
        queue=settings.worker.queue,
        request=request,
        agent=request.agent,
        config_generation=snapshot.version.generation,
        created_at=time.time(),
        trace_id=current_trace_id(),
        tenant=caller.tenant,
        key_id=caller.key_id,
        idempotency_key=idempotency_key,
        webhook=WebhookState(url=body.webhook_url) if body.webhook_url else None,
    )
    digest = body_hash(body) if idempotency_key is not None else None
    document = stored.model_dump_json()
    submitted = await queue.submit(
        record,
        body_hash=digest,
        also=lambda pipe: store.add_create(pipe, caller.tenant, stored.id, document),
    )
    if submitted.created:
        gate.metrics.tasks_submitted.labels(record.queue).inc()
    elif not submitted.same_body:
        raise ApiError(
            409,
            ErrorType.CONFLICT,
            "Idempotency-Key was already used with a different request body",
            headers=rate,
        )
    current, outcome = await _load(store, tasks, caller.tenant, response_id(submitted.task_id))
    if body.stream:
        keepalive = settings.api.sse_keepalive_seconds
        return StreamingResponse(
            task_events(tasks, current, -1, keepalive),
            media_type="text/event-stream",
            headers={**SSE_HEADERS, **rate},
        )
    return JSONResponse(response_object(current, outcome), headers=rate)


@router.get(
    "/v1/responses/{response_id}",
    responses={
        **OPENAI_ERROR_RESPONSES,
        200: {
            "content": {"application/json": {}, "text/event-stream": {}},
            "description": "The response object (JSON), or its events (SSE)",
        },
    },
)
async def get_response(
    response_id: str,
    caller: CallerDep,
    store: ResponsesDep,
    tasks: TasksDep,
    settings: SettingsDep,
    *,
    stream: Annotated[bool, Query(description="Answer with the response's events.")] = False,
    starting_after: Annotated[
        int | None, Query(ge=-1, description="With stream: the events after this number.")
    ] = None,
    include: Annotated[list[str] | None, Query(description="Accepted and ignored.")] = None,
    include_obfuscation: Annotated[bool | None, Query(description="Accepted and ignored.")] = None,
) -> Any:
    """A stored response: poll it, or (``stream=true``) follow its events."""
    stored, outcome = await _load(store, tasks, caller.tenant, response_id)
    if not stream:
        return JSONResponse(response_object(stored, outcome))
    after = -1 if starting_after is None else starting_after
    if stored.task_id is not None:
        events = task_events(tasks, stored, after, settings.api.sse_keepalive_seconds)
    else:
        events = replay(stored, outcome, after)
    return StreamingResponse(events, media_type="text/event-stream", headers=SSE_HEADERS)


@router.post(
    "/v1/responses/{response_id}/cancel",
    responses={
        **OPENAI_ERROR_RESPONSES,
        409: {"model": OPENAI_ERROR_RESPONSES[404]["model"], "description": "Already ended"},
    },
)
async def cancel_response(
    response_id: str, caller: CallerDep, store: ResponsesDep, tasks: TasksDep
) -> Any:
    """Cancel a background response: a queued one never starts, a running one stops at its
    next step (its status is ``in_progress`` until then)."""
    stored, outcome = await _load(store, tasks, caller.tenant, response_id)
    if stored.task_id is None:
        raise ApiError(409, ErrorType.CONFLICT, "only background responses can be cancelled")
    if outcome.status not in _RUNNING:
        raise ApiError(409, ErrorType.CONFLICT, f"response {response_id!r} is {outcome.status}")
    await tasks.cancel(stored.task_id)
    stored, outcome = await _load(store, tasks, caller.tenant, response_id)
    return JSONResponse(response_object(stored, outcome))


@router.delete(
    "/v1/responses/{response_id}",
    responses={
        **OPENAI_ERROR_RESPONSES,
        409: {"model": OPENAI_ERROR_RESPONSES[404]["model"], "description": "Still running"},
    },
)
async def delete_response(
    response_id: str, caller: CallerDep, store: ResponsesDep, tasks: TasksDep
) -> Any:
    """Delete a stored response (a background one once it ended: cancel it first)."""
    stored, outcome = await _load(store, tasks, caller.tenant, response_id)
    if outcome.status in _RUNNING:
        raise ApiError(
            409,
            ErrorType.CONFLICT,
            f"response {response_id!r} is {outcome.status}: cancel it first",
        )
    await store.delete(caller.tenant, stored.id)
    return JSONResponse({"id": stored.id, "object": "response", "deleted": True})
