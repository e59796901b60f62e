"""Token counting of the simulator, cheap and deterministic (no tokenizer download).

A token follows the project's rule (``domain.tokens``): a run of ASCII letters and digits, or
one single other non-space character; whitespace is free. A prompt costs, per message, the
tokens of its content and of its tool calls' names and arguments plus 4 for the message
framing, plus 2 for priming the reply (the spirit of OpenAI's cookbook recipe). Tool
definitions are not counted. ``server`` uses these for ``usage`` and for pacing output;
``split_tokens`` gives the pieces that streaming sends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agent_service.domain.tokens import count_tokens

__all__ = ["content_text", "count_tokens", "prompt_tokens", "split_tokens", "tool_call_tokens"]

# Each piece carries the whitespace before its token, so the pieces join back to the text.
_PIECE = re.compile(r"\s*(?:[A-Za-z0-9]+|\S)|\s+$")

MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 2


def split_tokens(text: str) -> list[str]:
    """``text`` cut into one piece per token (trailing whitespace joins the last piece)."""
    pieces = _PIECE.findall(text)
    if len(pieces) > 1 and not pieces[-1].strip():
        trailing = pieces.pop()
        pieces[-1] += trailing
    return pieces


def content_text(content: Any) -> str:
    """The text of a message's ``content``: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type") == "text"
        )
    return ""


def _tool_call_tokens(calls: Iterable[Any]) -> int:
    total = 0
    for call in calls:
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping):
            total += count_tokens(str(function.get("name") or ""))
            total += count_tokens(str(function.get("arguments") or ""))
    return total


def prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """The prompt tokens of a conversation (OpenAI-format message dicts)."""
    total = REPLY_PRIMING
    for message in messages:
        total += MESSAGE_OVERHEAD + count_tokens(content_text(message.get("content")))
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            total += _tool_call_tokens(calls)
    return total


def tool_call_tokens(name: str, arguments: str) -> int:
    """The completion tokens of one generated tool call: its name and its arguments JSON."""
    return count_tokens(name) + count_tokens(arguments)
