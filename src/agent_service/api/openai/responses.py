"""The Responses API around a run: input items as a conversation, a run's messages as output
items, and the ``response`` object of a stored response.

Called by ``api.routes.responses`` and ``api.openai.response_events``. A response is stored as
a ``StoredResponse`` (``store.responses``): the request's echoed parameters, the conversation
it ran on (the previous response's, then its own input; ``instructions`` are not part of it,
as in OpenAI's API), and, for a foreground response, its outcome; a background response's
outcome is its task record's. Output items: the assistant's text is a ``message``, a call of
one of the request's functions a ``function_call`` (the client runs it), and a step of one of
the agent's own tools an ``mcp_call`` with ``server_label: "agent-service"`` and its output
(it ran on the server). Item ids are ``<kind>_<response hex>_<output index>``, so an
``item_reference`` finds its item from the id alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from agent_service.domain.messages import ChatMessage, ToolCall
from agent_service.domain.runs import RunResult, Usage
from agent_service.domain.tasks import TaskRecord, TaskStatus

SERVER_LABEL = "agent-service"
_ITEM_KINDS = {"message": "msg", "function_call": "fc", "mcp_call": "mcp"}


class Outcome(BaseModel):
    """Where a response stands: its status, and its result or error once it ended."""

    status: str
    result: RunResult | None = None
    error: dict[str, str] | None = None
    usage: Usage | None = None
    completed_at: int | None = None


class StoredResponse(BaseModel):
    """A response as the service keeps it (per tenant, for the task TTL)."""

    id: str
    created_at: int
    params: dict[str, Any]
    """The request's parameters the ``response`` object echoes (model, instructions, tools...)."""
    conversation: list[ChatMessage]
    """The conversation the run had as input, without ``instructions``."""
    client_tools: list[str] = Field(default_factory=list)
    task_id: str | None = None
    """The task running a background response (it holds the outcome)."""
    outcome: Outcome | None = None
    """A foreground response's outcome (None while it runs)."""

    def transcript(self, result: RunResult | None) -> list[ChatMessage]:
        """The conversation after this response: its input and what its run added."""
        return [*self.conversation, *((result.messages or []) if result else [])]


def response_id(hex_id: str) -> str:
    return f"resp_{hex_id}"


def hex_of(response_id_: str) -> str:
    return response_id_.removeprefix("resp_")


def task_outcome(record: TaskRecord) -> Outcome:
    """A background response's outcome, from its task record."""
    status = {
        TaskStatus.QUEUED: "queued",
        TaskStatus.RUNNING: "in_progress",
        TaskStatus.SUCCEEDED: "completed",
        TaskStatus.FAILED: "failed",
        TaskStatus.CANCELLED: "cancelled",
    }[record.status]
    error = None
    if record.error is not None:
        error = response_error(record.error.type, record.error.message)
    outcome = Outcome(
        status=status,
        result=record.result,
        error=error,
        usage=record.usage,
        completed_at=int(record.finished_at) if record.finished_at else None,
    )
    return finished(outcome)


def finished(outcome: Outcome) -> Outcome:
    """``completed`` becomes ``incomplete`` when the last LLM call hit its token cap."""
    result = outcome.result
    if outcome.status == "completed" and result is not None and result.finish_reason == "length":
        return outcome.model_copy(update={"status": "incomplete"})
    return outcome


def response_error(error_type: str, message: str) -> dict[str, str]:
    """A failed response's ``error``: OpenAI's codes are a closed set, so the service's error
    type leads the message."""
    limited = error_type in ("rate_limited", "budget_exceeded")
    code = "rate_limit_exceeded" if limited else "server_error"
    return {"code": code, "message": f"{error_type}: {message}"}


def now_outcome(result: RunResult | None, error: dict[str, str] | None) -> Outcome:
    """The outcome of a foreground run that just ended."""
    status = "completed" if result is not None else "failed"
    usage = result.usage if result is not None else None
    return finished(
        Outcome(
            status=status, result=result, error=error, usage=usage, completed_at=int(time.time())
        )
    )


def item_id(kind: str, hex_id: str, index: int) -> str:
    return f"{_ITEM_KINDS[kind]}_{hex_id}_{index}"


def parse_item_id(value: str) -> tuple[str, int] | None:
    """(response hex, output index) of an item id of this service, else None."""
    kind, _, rest = value.partition("_")
    hex_id, _, index = rest.partition("_")
    if kind not in _ITEM_KINDS.values() or len(hex_id) != 32 or not index.isdigit():
        return None
    return hex_id, int(index)


def message_item(item: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "message",
        "id": item,
        "status": status,
        "role": "assistant",
        "content": [text_part(text)] if status == "completed" else [],
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(item: str, call: ToolCall, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item,
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
        "status": status,
    }


def mcp_call_item(item: str, call: ToolCall, output: str | None) -> dict[str, Any]:
    failed = output is not None and output.startswith("error")
    return {
        "type": "mcp_call",
        "id": item,
        "server_label": SERVER_LABEL,
        "name": call.name,
        "arguments": call.arguments,
        "output": output,
        "error": output if failed else None,
        "status": "failed" if failed else "completed",
    }


def output_items(
    hex_id: str, messages: Sequence[ChatMessage], client_tools: Sequence[str]
) -> list[dict[str, Any]]:
    """The output items of the messages a run added (see the module docstring)."""
    results = {m.tool_call_id: m.content for m in messages if m.role == "tool"}
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role != "assistant":
            continue  # tool results belong to their calls; repair prompts stay internal
        if message.content:
            items.append(message_item(item_id("message", hex_id, len(items)), message.content))
        for call in message.tool_calls:
            if call.name in client_tools:
                items.append(function_call_item(item_id("function_call", hex_id, len(items)), call))
            else:
                index = len(items)
                items.append(
                    mcp_call_item(item_id("mcp_call", hex_id, index), call, results.get(call.id))
                )
    return items


def usage_body(usage: Usage | None) -> dict[str, Any]:
    usage = usage or Usage()
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def response_object(
    stored: StoredResponse, outcome: Outcome, output: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The ``response`` object of ``stored`` at ``outcome`` (``output`` given while streaming)."""
    params = stored.params
    hex_id = hex_of(stored.id)
    if output is None:
        messages = outcome.result.messages or [] if outcome.result else []
        output = output_items(hex_id, messages, stored.client_tools)
    text = "".join(
        part["text"] for item in output if item["type"] == "message" for part in item["content"]
    )
    incomplete = {"reason": "max_output_tokens"} if outcome.status == "incomplete" else None
    return {
        "id": stored.id,
        "object": "response",
        "created_at": stored.created_at,
        "completed_at": outcome.completed_at,
        "status": outcome.status,
        "background": bool(params.get("background")),
        "error": outcome.error,
        "incomplete_details": incomplete,
        "instructions": params.get("instructions"),
        "max_output_tokens": params.get("max_output_tokens"),
        "max_tool_calls": params.get("max_tool_calls"),
        "model": params["model"],
        "output": output,
        "output_text": text,
        "parallel_tool_calls": params.get("parallel_tool_calls", True),
        "previous_response_id": params.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": params.get("safety_identifier"),
        "service_tier": "default",
        "store": params.get("store", True),
        "temperature": params.get("temperature", 1.0),
        "text": params.get("text") or {"format": {"type": "text"}},
        "tool_choice": params.get("tool_choice") or "auto",
        "tools": params.get("tools") or [],
        "top_logprobs": params.get("top_logprobs", 0),
        "top_p": params.get("top_p", 1.0),
        "truncation": params.get("truncation") or "disabled",
        "usage": usage_body(outcome.usage),
        "metadata": params.get("metadata") or {},
        # Extension: the knowledge base passages the answer used (docs/api.md).
        "sources": [s.model_dump(mode="json") for s in outcome.result.sources]
        if outcome.result is not None
        else [],
        **({"user": params["user"]} if params.get("user") else {}),
    }


def item_messages(item: dict[str, Any]) -> list[ChatMessage]:
    """The conversation messages of one input (or output) item; reasoning items give none."""
    kind = item.get("type")
    if kind == "message":
        return _message(item)
    if kind == "function_call":
        call = ToolCall(id=item["call_id"], name=item["name"], arguments=item["arguments"])
        return [ChatMessage(role="assistant", tool_calls=[call])]
    if kind == "function_call_output":
        output = _content_text(item.get("output"))
        return [ChatMessage(role="tool", content=output, tool_call_id=item["call_id"])]
    if kind == "mcp_call":
        call = ToolCall(id=item["id"], name=item["name"], arguments=item["arguments"])
        output = item.get("output") or item.get("error") or ""
        return [
            ChatMessage(role="assistant", tool_calls=[call]),
            ChatMessage(role="tool", content=output, tool_call_id=call.id, name=call.name),
        ]
    return []


def _message(item: dict[str, Any]) -> list[ChatMessage]:
    text = _content_text(item.get("content"))
    role = item.get("role")
    if not text:
        return []
    if role in ("system", "developer"):
        return [ChatMessage(role="system", content=text)]
    return [ChatMessage(role="assistant" if role == "assistant" else "user", content=text)]


def merge_calls(messages: Sequence[ChatMessage]) -> list[ChatMessage]:
    """Consecutive call items as one assistant message (calls made in one model turn), so the
    results follow the message that made them: an ``mcp_call`` item brings its result at once,
    and ``function_call`` items come before their outputs."""
    out: list[ChatMessage] = []
    calls_at: int | None = None  # the assistant message the following calls join
    for message in messages:
        joins = message.role == "assistant" and message.tool_calls and not message.content
        if joins and calls_at is not None:
            caller = out[calls_at]
            calls = [*caller.tool_calls, *message.tool_calls]
            out[calls_at] = caller.model_copy(update={"tool_calls": calls})
            continue
        out.append(message)
        if joins:
            calls_at = len(out) - 1
        elif message.role != "tool":
            calls_at = None
    return out


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""
