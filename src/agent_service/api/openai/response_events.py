"""The Responses API's streaming events, made from a run's progress.

``ResponseEvents`` turns what a run reports (it starts, a server tool step ended, a text
fragment, the end) into OpenAI's semantic events: ``response.created``, ``response.queued``,
``response.in_progress``, ``response.output_item.added`` / ``.done``,
``response.content_part.added`` / ``.done``, ``response.output_text.delta`` / ``.done``,
``response.function_call_arguments.delta`` / ``.done``, then ``response.completed``,
``response.incomplete`` or ``response.failed``, numbered by ``sequence_number``.

``api.routes.responses`` feeds it a live run (foreground streams) or a task's stored event
stream (background responses): the translation is deterministic, so the same stream read again
gives the same numbers, and ``starting_after`` resumes after one.
"""

from __future__ import annotations

from typing import Any

from agent_service.api.openai.responses import (
    Outcome,
    StoredResponse,
    hex_of,
    item_id,
    mcp_call_item,
    message_item,
    output_items,
    response_object,
    text_part,
)
from agent_service.api.sse import sse_event
from agent_service.domain.messages import ToolCall
from agent_service.domain.runs import Step

_TERMINAL = {"completed": "response.completed", "incomplete": "response.incomplete"}


class ResponseEvents:
    """The events of one response, as SSE bytes (those after ``starting_after`` only)."""

    def __init__(self, stored: StoredResponse, starting_after: int = -1) -> None:
        self._stored = stored
        self._hex = hex_of(stored.id)
        self._after = starting_after
        self._sequence = 0
        self._output: list[dict[str, Any]] = []
        self._open_text: str | None = None
        self._in_progress = False

    def _event(self, kind: str, **fields: Any) -> list[bytes]:
        sequence = self._sequence
        self._sequence += 1
        if sequence <= self._after:
            return []
        return [sse_event(kind, {"type": kind, "sequence_number": sequence, **fields})]

    def _snapshot(self, status: str) -> dict[str, Any]:
        return response_object(self._stored, Outcome(status=status), output=list(self._output))

    def begin(self, status: str) -> list[bytes]:
        """The response exists: ``queued`` (background) or ``in_progress``."""
        out = self._event("response.created", response=self._snapshot(status))
        if status == "queued":
            return out + self._event("response.queued", response=self._snapshot(status))
        return out + self.running()

    def running(self) -> list[bytes]:
        if self._in_progress:
            return []
        self._in_progress = True
        return self._event("response.in_progress", response=self._snapshot("in_progress"))

    def step(self, step: Step) -> list[bytes]:
        """A server tool step ended: an ``mcp_call`` item (LLM steps make no item)."""
        if step.kind != "tool":
            return []
        out = self._close_text()
        index = len(self._output)
        call = ToolCall(
            id=item_id("mcp_call", self._hex, index), name=step.name, arguments=step.input or "{}"
        )
        item = mcp_call_item(call.id, call, step.output)
        self._output.append(item)
        added = {**item, "status": "in_progress", "output": None, "error": None}
        out += self._event("response.output_item.added", output_index=index, item=added)
        return out + self._event("response.output_item.done", output_index=index, item=item)

    def delta(self, text: str) -> list[bytes]:
        """A fragment of the answer's text."""
        out = self._open_message() if self._open_text is None else []
        self._open_text = (self._open_text or "") + text
        index = len(self._output) - 1
        return out + self._event(
            "response.output_text.delta",
            item_id=self._output[index]["id"],
            output_index=index,
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def finish(self, outcome: Outcome) -> list[bytes]:
        """The end: the items not streamed yet, then the terminal event."""
        result = outcome.result
        final = output_items(
            self._hex, (result.messages or []) if result else [], self._stored.client_tools
        )
        open_index = len(self._output) - 1 if self._open_text is not None else None
        out: list[bytes] = []
        if open_index is not None:
            item = final[open_index] if open_index < len(final) else None
            text = item["content"][0]["text"] if item and item["type"] == "message" else None
            out += self._close_text(text)
        for item in final[len(self._output) :]:
            out += self._emit_whole(item)
        response = response_object(self._stored, outcome, output=final if result else None)
        if result is None:
            response["output"] = list(self._output)
        kind = _TERMINAL.get(outcome.status, "response.failed")
        return out + self._event(kind, response=response)

    def _open_message(self) -> list[bytes]:
        index = len(self._output)
        item = message_item(item_id("message", self._hex, index), "", status="in_progress")
        self._output.append(item)
        out = self._event("response.output_item.added", output_index=index, item=item)
        return out + self._event(
            "response.content_part.added",
            item_id=item["id"],
            output_index=index,
            content_index=0,
            part=text_part(""),
        )

    def _close_text(self, final_text: str | None = None) -> list[bytes]:
        if self._open_text is None:
            return []
        text = final_text if final_text is not None else self._open_text
        self._open_text = None
        index = len(self._output) - 1
        item = message_item(self._output[index]["id"], text)
        self._output[index] = item
        fields = {"item_id": item["id"], "output_index": index, "content_index": 0}
        out = self._event("response.output_text.done", **fields, text=text, logprobs=[])
        out += self._event("response.content_part.done", **fields, part=text_part(text))
        return out + self._event("response.output_item.done", output_index=index, item=item)

    def _emit_whole(self, item: dict[str, Any]) -> list[bytes]:
        if item["type"] == "message":
            out = self._open_message()
            text = item["content"][0]["text"]
            self._open_text = ""
            out += self.delta(text)
            return out + self._close_text(text)
        index = len(self._output)
        self._output.append(item)
        if item["type"] == "mcp_call":
            out = self._event("response.output_item.added", output_index=index, item=item)
            return out + self._event("response.output_item.done", output_index=index, item=item)
        added = {**item, "arguments": "", "status": "in_progress"}
        out = self._event("response.output_item.added", output_index=index, item=added)
        fields = {"item_id": item["id"], "output_index": index}
        out += self._event(
            "response.function_call_arguments.delta", **fields, delta=item["arguments"]
        )
        out += self._event(
            "response.function_call_arguments.done",
            **fields,
            name=item["name"],
            arguments=item["arguments"],
        )
        return out + self._event("response.output_item.done", output_index=index, item=item)
