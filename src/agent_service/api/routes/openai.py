"""``POST /v1/chat/completions``: the agent behind OpenAI's Chat Completions API.

Any OpenAI SDK is a client: ``OpenAI(base_url="http://<api>/v1", api_key="<tenant key>")``.
``model`` names an agent (that agent runs) or a configured model (the default agent runs on
it); ``GET /v1/models`` lists both. The conversation is the run's input: the last user message
is the message, what precedes it the history (trimmed to the agent's memory budget), what
follows it (tool calls and their results) the continuation of a client tool round trip. The
agent's own tools run on the server; a request's ``tools`` are the client's (see
``api.openai.chat``). Errors are in OpenAI's shape. docs/openai.md has the field table.
The completion's id is ``chatcmpl-<run id>``; the run id itself is in the ``X-Run-Id`` header
(and ``run_id`` of a non-streamed answer): feedback takes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from agent_service.agent.loop import Agent
from agent_service.agent.ports import RunGuard
from agent_service.api.deps import (
    CallerDep,
    DrainDep,
    DurableDep,
    GateDep,
    JsonBody,
    ResponsesDep,
    SettingsDep,
    SnapshotDep,
    SyncRunsDep,
)
from agent_service.api.drain import Drain
from agent_service.api.handoff import SyncHandoff
from agent_service.api.openai import chat
from agent_service.api.openai.chat_models import ChatCompletion, CompletionBody, to_chat_messages
from agent_service.api.openai.common import agent_and_model
from agent_service.api.openai.errors import OPENAI_ERROR_RESPONSES, OpenAIErrorBody
from agent_service.api.routes.chat import run_events, run_sync
from agent_service.api.sse import KEEPALIVE, SSE_HEADERS
from agent_service.api.sync_runs import SyncRun
from agent_service.domain.errors import ErrorType
from agent_service.domain.messages import ToolCall
from agent_service.domain.runs import RunRequest, RunResult
from agent_service.observability.metrics import Metrics
from agent_service.store.responses import ResponseStore

router = APIRouter(tags=["openai"])


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={
        **OPENAI_ERROR_RESPONSES,
        200: {"content": {"text/event-stream": {}}, "description": "Completion (JSON or SSE)"},
        409: {
            "model": OpenAIErrorBody,
            "description": "A tool call needs a person's approval (`approval_required`): the "
            "run continues as the task in Location",
        },
    },
    dependencies=[JsonBody],
)
async def chat_completions(
    *,
    body: CompletionBody,
    response: Response,
    snapshot: SnapshotDep,
    gate: GateDep,
    settings: SettingsDep,
    caller: CallerDep,
    drain: DrainDep,
    durable: DurableDep,
    store: ResponsesDep,
    sync_runs: SyncRunsDep,
) -> ChatCompletion | StreamingResponse:
    """Run the agent on ``messages`` and answer in OpenAI's chat-completion format."""
    config = snapshot.config
    agent, model = agent_and_model(body.model, snapshot, caller.tenant)
    conversation = to_chat_messages(body.messages)
    kept = await store.continuations(caller.tenant, chat.tool_call_ids(conversation))
    request = chat.run_request(body, chat.expand(conversation, kept), agent, model, caller.tenant)
    gate.check_limits(request.message, model, len(json.dumps(request.metadata)), config)
    rate = await gate.admit(caller, config)
    guard = gate.guard(caller, config)
    run = sync_runs.begin(request, caller)
    completion_id = f"chatcmpl-{run.run_id}"
    headers = {**rate, **run.headers}
    created = int(time.time())
    fingerprint = f"cfg-{agent.config_hash}"
    handoff = SyncHandoff(
        durable.approvals, settings.worker.queue, caller, snapshot.version.generation
    )
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        head = chat.ChunkHead(completion_id, created, body.model, fingerprint, include_usage)
        chunks = _chunks(
            head,
            agent,
            run,
            store,
            keepalive=settings.api.sse_keepalive_seconds,
            metrics=gate.metrics,
            guard=guard,
            drain=drain,
            handoff=handoff,
        )
        return StreamingResponse(
            chunks, media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
        )
    response.headers.update(headers)
    result = await run_sync(agent, run, gate.metrics, guard, headers, drain=drain, handoff=handoff)
    calls = await _client_calls(store, run.request, result)
    return chat.completion(
        completion_id,
        created=created,
        model=result.model or body.model,
        fingerprint=fingerprint,
        result=result,
        calls=calls,
    )


async def _client_calls(
    store: ResponseStore, request: RunRequest, result: RunResult
) -> list[ToolCall]:
    """The client tool calls to return, once the steps the client will not see are kept."""
    if not result.tool_calls:
        return []
    found = chat.client_calls(result)
    if found.hidden_steps:
        ids = [call.id for call in found.calls]
        await store.save_continuation(request.tenant, ids, found.hidden_steps)
    return found.calls


async def _chunks(
    head: chat.ChunkHead,
    agent: Agent,
    run: SyncRun,
    store: ResponseStore,
    *,
    keepalive: float,
    metrics: Metrics,
    guard: RunGuard | None,
    drain: Drain,
    handoff: SyncHandoff,
) -> AsyncIterator[bytes]:
    yield head.chunk({"role": "assistant", "content": ""})
    events = run_events(agent, run, keepalive, metrics, guard, drain=drain, handoff=handoff)
    async for event in events:
        if event is None:
            yield KEEPALIVE
        elif event.type == "delta":
            yield head.chunk({"content": event.data["text"]})
        elif event.type == "done":
            result = RunResult.model_validate(event.data)
            calls = await _client_calls(store, run.request, result)
            for chunk in head.tool_call_chunks(calls):
                yield chunk
            yield head.chunk(
                {}, finish=chat.finish_reason(result, calls), sources=chat.sources_body(result)
            )
            if head.include_usage:
                yield head.usage_chunk(result)
        elif event.type == "error":
            # Mid-stream the status line is sent: OpenAI SDKs raise on an `error` chunk.
            error = event.data
            yield chat.sse_data(
                {
                    "error": {
                        "message": error["message"],
                        "type": "server_error",
                        "param": None,
                        "code": error.get("type"),
                    }
                }
            )
        elif event.type == "approval_required":  # handed over to a task: said as an error
            yield chat.sse_data(
                {
                    "error": {
                        "message": event.data["message"],
                        "type": "invalid_request_error",
                        "param": None,
                        "code": ErrorType.APPROVAL_REQUIRED.value,
                    }
                }
            )
    yield chat.DONE
