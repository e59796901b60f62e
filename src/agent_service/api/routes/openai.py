"""``POST /v1/chat/completions``: the agent behind OpenAI's chat-completions API.

Any OpenAI SDK is a client: ``OpenAI(base_url="http://<api>/v1", api_key="<tenant key>")``.
``model`` names an agent (that agent answers) or a configured model (the default agent answers
on it); ``GET /v1/models`` lists both. The last message must be the user's; earlier user and
assistant messages are the conversation so far (trimmed to the config's memory token budget),
and system messages are added after the agent's own system prompt. The agent uses its
configured tools itself: a request's own ``tools`` are refused. Streaming answers
``chat.completion.chunk`` events, then a usage chunk when ``stream_options.include_usage`` is
set, then ``data: [DONE]``. The completion's id is ``chatcmpl-<run id>``; the run id itself is
in the ``X-Run-Id`` header (and ``run_id`` of a non-streamed answer): feedback takes it.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from agent_service.agent.loop import Agent
from agent_service.agent.ports import RunGuard
from agent_service.api.deps import (
    CallerDep,
    GateDep,
    JsonBody,
    SettingsDep,
    SnapshotDep,
    SyncRunsDep,
)
from agent_service.api.errors import ApiError
from agent_service.api.routes.chat import run_events, run_sync
from agent_service.api.schemas import ERROR_RESPONSES
from agent_service.api.sse import KEEPALIVE, SSE_HEADERS
from agent_service.api.sync_runs import SyncRun
from agent_service.domain.errors import ErrorType
from agent_service.domain.messages import ChatMessage
from agent_service.domain.runs import RunRequest, RunResult
from agent_service.observability.metrics import Metrics
from agent_service.runtime import Snapshot

router = APIRouter(tags=["openai"])


class TextPart(BaseModel):
    type: Literal["text"]
    text: str = Field(max_length=1_000_000)


class InputMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")  # SDKs send optional fields such as `name`

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = False


class CompletionBody(BaseModel):
    """OpenAI's request body, the fields that mean something to an agent."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        description="An agent's name (that agent runs), or a configured model name (the "
        "default agent runs on it); see GET /v1/models."
    )
    messages: list[InputMessage] = Field(min_length=1, max_length=1000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int = Field(default=1, ge=1, le=1, description="Only 1 choice.")
    user: str | None = Field(default=None, max_length=256)
    metadata: dict[str, str] | None = None
    # Accepted for compatibility; sampling is the model config's.
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None
    run_id: str = Field(description="The run's id in the history (feedback takes it).")


def _agent_and_model(name: str, snapshot: Snapshot, tenant: str) -> tuple[Agent, str | None]:
    """What ``model`` selects: an agent by its name (on its own model), or the default agent on
    a configured model; 404 for an agent the tenant may not use, 422 for an unknown name."""
    if name in snapshot.agents:
        agent = snapshot.agent_for(name, tenant)
        if agent is None:
            raise ApiError(404, ErrorType.NOT_FOUND, f"model {name!r} not found")
        return agent, None
    if name not in snapshot.config.model_names:
        known = ", ".join([*snapshot.agents, *snapshot.config.model_names])
        raise ApiError(
            422,
            ErrorType.INVALID_REQUEST,
            f"model: {name!r} is not configured: neither an agent nor a model (known: {known})",
        )
    agent = snapshot.agent_for(None, tenant)
    if agent is None:
        raise ApiError(404, ErrorType.NOT_FOUND, "the default agent is not available")
    return agent, name


def _to_request(body: CompletionBody, tenant: str, agent: str, model: str | None) -> RunRequest:
    if body.tools:
        raise ApiError(
            422,
            ErrorType.INVALID_REQUEST,
            "tools: not accepted; the agent uses the tools of its config",
        )
    last = body.messages[-1]
    if last.role != "user" or not last.text():
        raise ApiError(
            422, ErrorType.INVALID_REQUEST, "messages: the last message must be the user's text"
        )
    history = [
        ChatMessage(role="system" if m.role == "developer" else m.role, content=m.text())
        for m in body.messages[:-1]
        if m.text()
    ]
    metadata: dict[str, Any] = dict(body.metadata or {})
    if body.user:
        metadata["user"] = body.user
    return RunRequest(
        message=last.text(),
        model=model,
        agent=agent,
        tenant=tenant,
        history=history,
        metadata=metadata,
    )


def _usage(result: RunResult) -> Usage:
    return Usage(
        prompt_tokens=result.usage.input_tokens,
        completion_tokens=result.usage.output_tokens,
        total_tokens=result.usage.total_tokens,
    )


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={
        **ERROR_RESPONSES,
        200: {"content": {"text/event-stream": {}}, "description": "Completion (JSON or SSE)"},
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
    sync_runs: SyncRunsDep,
) -> ChatCompletion | StreamingResponse:
    """Run the agent on ``messages`` and answer in OpenAI's chat-completion format."""
    config = snapshot.config
    agent, model = _agent_and_model(body.model, snapshot, caller.tenant)
    request = _to_request(body, caller.tenant, agent.name, model)
    gate.check_limits(request.message, model, len(json.dumps(request.metadata)), config)
    rate = await gate.admit(caller, config)
    guard = gate.guard(caller, config)
    run = sync_runs.begin(request, caller)
    completion_id = f"chatcmpl-{run.run_id}"
    headers = {**rate, **run.headers}
    created = int(time.time())
    fingerprint = f"cfg-{agent.config_hash}"
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = _chunks(
            _ChunkHead(completion_id, created, body.model, fingerprint, include_usage),
            agent,
            run,
            keepalive=settings.api.sse_keepalive_seconds,
            metrics=gate.metrics,
            guard=guard,
        )
        return StreamingResponse(
            chunks, media_type="text/event-stream", headers={**SSE_HEADERS, **headers}
        )
    response.headers.update(headers)
    result = await run_sync(agent, run, gate.metrics, guard, headers)
    return ChatCompletion(
        id=completion_id,
        created=created,
        model=result.model or body.model,
        choices=[Choice(message=AssistantMessage(content=result.answer))],
        usage=_usage(result),
        system_fingerprint=fingerprint,
        run_id=run.run_id,
    )


@dataclass(frozen=True)
class _ChunkHead:
    """What every ``chat.completion.chunk`` of one streamed completion repeats."""

    id: str
    created: int
    model: str
    fingerprint: str
    include_usage: bool

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return self._data([{"index": 0, "delta": delta, "finish_reason": finish}])

    def usage_chunk(self, usage: Usage) -> bytes:
        """The extra chunk of ``stream_options.include_usage``: no choices, the run's usage."""
        return self._data([], usage=usage.model_dump())

    def _data(self, choices: list[dict[str, Any]], **extra: Any) -> bytes:
        body = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": self.fingerprint,
            "choices": choices,
            **extra,
        }
        return _data(body)


def _data(body: Any) -> bytes:
    return (
        b"data: " + json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
    )


async def _chunks(
    head: _ChunkHead,
    agent: Agent,
    run: SyncRun,
    *,
    keepalive: float,
    metrics: Metrics,
    guard: RunGuard | None,
) -> AsyncIterator[bytes]:
    yield head.chunk({"role": "assistant", "content": ""})
    async for event in run_events(agent, run, keepalive, metrics, guard):
        if event is None:
            yield KEEPALIVE
        elif event.type == "delta":
            yield head.chunk({"content": event.data["text"]})
        elif event.type == "done":
            result = RunResult.model_validate(event.data)
            yield head.chunk({}, finish="stop")
            if head.include_usage:
                yield head.usage_chunk(_usage(result))
        elif event.type == "error":
            # Mid-stream the status line is sent: OpenAI SDKs raise on an `error` chunk.
            yield _data({"error": {**event.data, "code": event.data.get("type")}})
    yield b"data: [DONE]\n\n"
