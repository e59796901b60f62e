"""Chat Completions around a run: the request as a ``RunRequest``, the result as a
``chat.completion``, the streamed run as ``chat.completion.chunk`` events.

Called by ``api.routes.openai``. Client tools: the run stops when the model calls one of the
request's ``tools`` and the completion returns those calls (``finish_reason: "tool_calls"``)
with ids of the service's own (``call_`` + 24 hex). When the run made server tool calls before
(or in the same turn), the client never sees them: ``hidden_steps`` says what to keep under the
returned ids, and ``expand`` puts those steps back into the conversation when the client sends
the results, so the model continues with everything it saw.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent_service.agent.loop import Agent
from agent_service.api.openai import common
from agent_service.api.openai.chat_models import (
    ChatAllowedToolsChoice,
    ChatCompletion,
    ChatUsage,
    Choice,
    CompletionBody,
    FunctionCallOut,
    JsonObjectFormat,
    JsonSchemaFormat,
    NamedToolChoice,
    ResponseMessage,
    ToolCallOut,
)
from agent_service.api.openai.common import Asked, output_format
from agent_service.domain.messages import ChatMessage, ToolCall
from agent_service.domain.runs import OutputFormat, RunRequest, RunResult


def run_request(
    body: CompletionBody,
    conversation: Sequence[ChatMessage],
    agent: Agent,
    model: str | None,
    tenant: str,
) -> RunRequest:
    """The run of a completion request whose messages are ``conversation`` (expanded)."""
    asked = Asked(
        functions=_offered_functions(body),
        output=_output_format(body),
        forced=_forced(body),
        max_output_tokens=body.max_completion_tokens or body.max_tokens,
        metadata=body.metadata,
        user=body.user,
    )
    return common.run_request(
        conversation, asked, agent=agent, model=model, tenant=tenant, param="messages"
    )


def _offered_functions(body: CompletionBody) -> list[Any]:
    """The request's functions the model is offered: none with ``tool_choice: "none"``, only
    the listed ones with ``allowed_tools``."""
    functions = [tool.function for tool in body.tools or ()]
    choice = body.tool_choice
    if choice == "none":
        return []
    if isinstance(choice, ChatAllowedToolsChoice):
        allowed = choice.allowed_tools.names()
        return [f for f in functions if f.name in allowed]
    return functions


def _forced(body: CompletionBody) -> str | dict[str, Any] | None:
    """The tool call the first LLM call must make: ``required``, or a named function."""
    choice = body.tool_choice
    if isinstance(choice, NamedToolChoice):
        return {"type": "function", "function": {"name": choice.function.name}}
    if choice == "required" or (
        isinstance(choice, ChatAllowedToolsChoice) and choice.allowed_tools.mode == "required"
    ):
        return "required"
    return None


def _output_format(body: CompletionBody) -> OutputFormat | None:
    wanted = body.response_format
    if isinstance(wanted, JsonObjectFormat):
        return output_format("json_object", None, None, None, "response_format")
    if isinstance(wanted, JsonSchemaFormat):
        spec = wanted.json_schema
        return output_format(
            "json_schema", spec.name, spec.schema_, spec.strict, "response_format.json_schema"
        )
    return None


def expand(
    conversation: Sequence[ChatMessage], kept: Mapping[str, list[ChatMessage]]
) -> list[ChatMessage]:
    """``conversation`` with each assistant message whose tool calls have kept steps replaced
    by those steps (which end with the same calls)."""
    out: list[ChatMessage] = []
    for message in conversation:
        found = next((kept[c.id] for c in message.tool_calls if c.id in kept), None)
        out.extend(found if message.role == "assistant" and found else [message])
    return out


def tool_call_ids(conversation: Sequence[ChatMessage]) -> list[str]:
    """Ids of the tool calls of the conversation's assistant messages."""
    return [call.id for m in conversation if m.role == "assistant" for call in m.tool_calls]


@dataclass(frozen=True)
class ClientCalls:
    """The client tool calls a completion returns, with the service's ids, and the steps to
    keep for them (empty when the client saw everything)."""

    calls: list[ToolCall]
    hidden_steps: list[ChatMessage]


def client_calls(result: RunResult) -> ClientCalls:
    """Give ``result.tool_calls`` ids of the service's own, and the run's hidden steps."""
    renamed = {call.id: f"call_{uuid.uuid4().hex[:24]}" for call in result.tool_calls}
    calls = [call.model_copy(update={"id": renamed[call.id]}) for call in result.tool_calls]
    steps = [_renamed(m, renamed) for m in result.messages or ()]
    last = steps[-1] if steps else None
    # The client sees the last assistant message; anything else it did not see.
    seen_all = len(steps) == 1 and last is not None and len(last.tool_calls) == len(calls)
    return ClientCalls(calls, [] if seen_all else steps)


def _renamed(message: ChatMessage, renamed: Mapping[str, str]) -> ChatMessage:
    if not message.tool_calls:
        return message
    calls = [c.model_copy(update={"id": renamed.get(c.id, c.id)}) for c in message.tool_calls]
    return message.model_copy(update={"tool_calls": calls})


def usage(result: RunResult) -> ChatUsage:
    return ChatUsage(
        prompt_tokens=result.usage.input_tokens,
        completion_tokens=result.usage.output_tokens,
        total_tokens=result.usage.total_tokens,
    )


def finish_reason(result: RunResult, calls: Sequence[ToolCall]) -> str:
    if calls:
        return "tool_calls"
    return "length" if result.finish_reason == "length" else "stop"


def completion(
    completion_id: str,
    *,
    created: int,
    model: str,
    fingerprint: str,
    result: RunResult,
    calls: Sequence[ToolCall],
) -> ChatCompletion:
    """The ``chat.completion`` of a run's result (its client tool calls: ``calls``), with the
    run's id (``result.run_id``) as an extension field."""
    message = ResponseMessage(content=result.answer or (None if calls else ""))
    if calls:
        message.tool_calls = [
            ToolCallOut(id=c.id, function=FunctionCallOut(name=c.name, arguments=c.arguments))
            for c in calls
        ]
    return ChatCompletion(
        id=completion_id,
        created=created,
        model=model,
        choices=[Choice(message=message, finish_reason=finish_reason(result, calls))],
        usage=usage(result),
        system_fingerprint=fingerprint,
        run_id=result.run_id,
        sources=sources_body(result),
    )


@dataclass(frozen=True)
class ChunkHead:
    """What every ``chat.completion.chunk`` of one streamed completion repeats."""

    id: str
    created: int
    model: str
    fingerprint: str
    include_usage: bool

    def chunk(self, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._data([choice], **extra)

    def usage_chunk(self, result: RunResult) -> bytes:
        """The extra chunk of ``stream_options.include_usage``: no choices, the run's usage."""
        return self._data([], usage=usage(result).model_dump())

    def tool_call_chunks(self, calls: Sequence[ToolCall]) -> list[bytes]:
        """Each call as OpenAI streams it: id, type and name first, then the arguments."""
        chunks = []
        for index, call in enumerate(calls):
            head = {
                "index": index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            chunks.append(self.chunk({"tool_calls": [head]}))
            arguments = {"index": index, "function": {"arguments": call.arguments}}
            chunks.append(self.chunk({"tool_calls": [arguments]}))
        return chunks

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
        return sse_data(body)


def sources_body(result: RunResult) -> list[dict[str, Any]]:
    """The ``sources`` extension field of the OpenAI-compatible responses."""
    return [source.model_dump(mode="json") for source in result.sources]


def sse_data(body: Any) -> bytes:
    """One ``data:`` line of OpenAI's streams."""
    return (
        b"data: " + json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
    )


DONE = b"data: [DONE]\n\n"
