"""Span names and attributes of the agent loop, after the OpenTelemetry GenAI conventions.

Used by ``agent.loop``: ``invoke_agent`` around a run, ``chat {model}`` around each logical LLM
call (its retries and fallbacks included) and ``execute_tool {tool}`` around each tool call.
Only the OpenTelemetry API is used: without an SDK (unit tests, tracing off) spans are no-ops.
Prompt, completion and tool text are recorded only when the caller asks (``capture_content``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from agent_service.domain.messages import (
    ChatMessage,
    LLMAttempt,
    LLMCompletion,
    TokenUsage,
    ToolCall,
)
from agent_service.domain.runs import RunMode, RunResult

TRACER_NAME = "agent_service.agent"

OPERATION = "gen_ai.operation.name"
REQUEST_MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
PROVIDER = "gen_ai.provider.name"
SYSTEM = "gen_ai.system"  # the older name of gen_ai.provider.name, still read by many backends
TOOL_NAME = "gen_ai.tool.name"
AGENT_NAME = "gen_ai.agent.name"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_RESULT = "gen_ai.tool.call.result"
COST = "agent.cost_usd"
CONFIG_GENERATION = "agent.config.generation"
ERROR_TYPE = "error.type"

Attributes = dict[str, AttributeValue]


def get_tracer(provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """The agent's tracer (from the global provider unless one is given)."""
    return trace.get_tracer(TRACER_NAME, tracer_provider=provider)


def trace_id_of(span: Span) -> str | None:
    """The span's trace id as 32 hex digits (None for a no-op span)."""
    context = span.get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


def _provider(provider: str) -> Attributes:
    return {PROVIDER: provider, SYSTEM: provider} if provider else {}


def _usage(usage: TokenUsage) -> Attributes:
    return {
        INPUT_TOKENS: usage.input_tokens,
        OUTPUT_TOKENS: usage.output_tokens,
        COST: round(usage.cost_usd, 10),
    }


def invoke_agent_attributes(
    agent: str, model: str, mode: RunMode, session_id: str | None, generation: int
) -> Attributes:
    """Attributes known when a run starts (``agent``: its configured name; ``model``: the
    configured name asked for; ``generation``: of the agent config the run uses)."""
    attributes: Attributes = {
        OPERATION: "invoke_agent",
        AGENT_NAME: agent,
        REQUEST_MODEL: model,
        "agent.mode": mode,
        CONFIG_GENERATION: generation,
    }
    if session_id:
        attributes["gen_ai.conversation.id"] = session_id
    return attributes


def run_result_attributes(result: RunResult) -> Attributes:
    """Attributes of a finished run: the answering model, usage, cost and step count."""
    return {
        RESPONSE_MODEL: result.model,
        INPUT_TOKENS: result.usage.input_tokens,
        OUTPUT_TOKENS: result.usage.output_tokens,
        COST: result.usage.cost_usd,
        "agent.steps": len(result.steps),
    }


def run_failure_attributes(error_type: str, usage: TokenUsage, steps: int) -> Attributes:
    return {ERROR_TYPE: error_type, **_usage(usage), "agent.steps": steps}


def chat_attributes(model: str, provider: str, max_tokens: int) -> Attributes:
    """Attributes of a ``chat`` span before the call (``model``: the configured name)."""
    return {
        OPERATION: "chat",
        REQUEST_MODEL: model,
        "gen_ai.request.max_tokens": max_tokens,
        **_provider(provider),
    }


def completion_attributes(completion: LLMCompletion) -> Attributes:
    """Attributes of a ``chat`` span after the call answered (after any fallback)."""
    attributes: Attributes = {
        RESPONSE_MODEL: completion.model,
        **_provider(completion.provider),
        **_usage(completion.usage),
        "agent.llm.attempts": len(completion.attempts),
    }
    if completion.response_model:
        attributes["agent.llm.provider_model"] = completion.response_model
    if completion.finish_reason:
        attributes["gen_ai.response.finish_reasons"] = [completion.finish_reason]
    if completion.fell_back:
        attributes["agent.llm.fallback_from"] = completion.requested_model
    if completion.time_to_first_token_ms is not None:
        attributes["agent.llm.time_to_first_token_ms"] = completion.time_to_first_token_ms
    return attributes


def tool_attributes(name: str, call_id: str) -> Attributes:
    return {
        OPERATION: "execute_tool",
        TOOL_NAME: name,
        "gen_ai.tool.call.id": call_id,
        "gen_ai.tool.type": "function",
    }


def _arguments(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parts(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {"type": "tool_call_response", "id": message.tool_call_id, "response": message.content}
        ]
    parts: list[dict[str, Any]] = []
    if message.content:
        parts.append({"type": "text", "content": message.content})
    parts += [_tool_call_part(call) for call in message.tool_calls]
    return parts


def _tool_call_part(call: ToolCall) -> dict[str, Any]:
    return {
        "type": "tool_call",
        "id": call.id,
        "name": call.name,
        "arguments": _arguments(call.arguments),
    }


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def input_messages(messages: Sequence[ChatMessage]) -> str:
    """``gen_ai.input.messages``: the conversation sent, as GenAI-convention JSON."""
    return _dumps([{"role": m.role, "parts": _parts(m)} for m in messages])


def output_messages(completion: LLMCompletion) -> str:
    """``gen_ai.output.messages``: the model's answer (text and tool calls) as JSON."""
    parts: list[dict[str, Any]] = []
    if completion.content:
        parts.append({"type": "text", "content": completion.content})
    parts += [_tool_call_part(call) for call in completion.tool_calls]
    message = {"role": "assistant", "parts": parts, "finish_reason": completion.finish_reason}
    return _dumps([message])


def add_attempt_events(span: Span, attempts: Sequence[LLMAttempt]) -> None:
    """One ``gen_ai.attempt`` event per failed try (retries and fallbacks inside a call)."""
    for attempt in attempts:
        if attempt.outcome == "ok":
            continue
        event: Attributes = {
            "gen_ai.request.model": attempt.model,
            "agent.llm.outcome": attempt.outcome,
            "agent.llm.duration_ms": attempt.duration_ms,
        }
        if attempt.provider:
            event[PROVIDER] = attempt.provider
        span.add_event("gen_ai.attempt", event)


def mark_error(span: Span, error_type: str, message: str, exc: BaseException | None = None) -> None:
    """Error status, ``error.type`` and (with an exception) the exception event."""
    span.set_attribute(ERROR_TYPE, error_type)
    if exc is not None:
        span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, message))
