"""What the simulated model answers: pure functions over OpenAI-format messages and tools.

``server`` calls ``decide`` once per completion request. The rules, first match wins:

1. The conversation ends with tool results: answer in text from them.
2. The last user message holds an arithmetic expression and ``calculator`` is offered: call it.
3. The last user message asks for the time or date and ``current_time`` is offered: call it.
4. The last user message says "use the NAME tool" and NAME is offered: call it with the rest of
   the message as ``{"query": ...}`` (how tests and benchmarks reach HTTP tools).
5. Otherwise: a short text answer that quotes the message.

Everything is deterministic for a given seed and conversation, including tool call ids.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent_service.sim.tokens import content_text

CALCULATOR = "calculator"
CURRENT_TIME = "current_time"

# Runs of characters an arithmetic expression can contain; validated further by ``ast``.
_EXPRESSION_RUN = re.compile(r"[0-9.()+\-*/% ]+")
_BINARY_OPERATOR = re.compile(r"[0-9.)]\s*(?:\*\*|//|[+\-*/%])\s*[-+]?\s*[0-9.(]")
_TIME_QUESTION = re.compile(
    r"\b(?:time|times|date|dates|clock)\b|\bwhat\s+day\b|几点|时间|日期", re.IGNORECASE
)
# Chinese characters count as word characters, so plain \b would miss "上海Asia/Shanghai时间".
_IANA_ZONE = re.compile(
    r"(?<![A-Za-z_/])"
    r"(?:Africa|America|Antarctica|Arctic|Asia|Atlantic|Australia|Europe|Indian|Pacific|Etc)"
    r"/[A-Za-z_+\-0-9]+(?:/[A-Za-z_]+)?"
    r"(?![A-Za-z_])"
)
# Operands with optional signs and parentheses around them, joined by binary operators; a
# regex instead of ast.parse because this runs on every request.
_NUMBER = r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
_OPERAND = rf"[-+(]*{_NUMBER}\)*"
_EXPRESSION_SHAPE = re.compile(rf"{_OPERAND}(?:(?:\*\*|//|[-+*/%]){_OPERAND})*")
_SPACED_OPERANDS = re.compile(r"[0-9.)]\s+[0-9.(]")
_ANSWER_TAILS = (
    "This is the simulated model {model}.",
    "The simulated model {model} has nothing to add.",
    "Answered by the simulated model {model}.",
)
_SNIPPET_CHARS = 60
_USE_TOOL = re.compile(
    r"\buse\s+the\s+([A-Za-z_][A-Za-z0-9_-]{0,63})\s+tool\b[\s:,.]*", re.IGNORECASE
)


@dataclass(frozen=True)
class PlannedToolCall:
    """One tool call the simulated model makes; ``arguments`` is JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Reply:
    """The simulated model's answer: text, or one or more tool calls (never both)."""

    text: str | None = None
    tool_calls: tuple[PlannedToolCall, ...] = ()


def decide(
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] = (),
    *,
    model: str = "sim-agent",
    seed: int = 0,
    tool_choice: Any = None,
) -> Reply:
    """The reply to a chat completion request (``messages`` and ``tools`` in OpenAI format)."""
    results = trailing_tool_results(messages)
    if results:
        return Reply(text=" ".join(answer_from_tool_result(name, text) for name, text in results))

    user_text = last_user_text(messages)
    offered = set() if tool_choice == "none" else offered_tool_names(tools)
    if CALCULATOR in offered:
        expression = find_expression(user_text)
        if expression is not None:
            arguments = json.dumps({"expression": expression}, ensure_ascii=False)
            return _call(CALCULATOR, arguments, messages, seed)
    if CURRENT_TIME in offered and asks_for_time(user_text):
        arguments = json.dumps({"timezone": find_timezone(user_text) or "UTC"})
        return _call(CURRENT_TIME, arguments, messages, seed)
    named = _USE_TOOL.search(user_text)
    if named is not None and named.group(1) in offered:
        query = (user_text[: named.start()] + user_text[named.end() :]).strip()
        return _call(
            named.group(1), json.dumps({"query": query}, ensure_ascii=False), messages, seed
        )
    return Reply(text=text_answer(user_text, model=model, seed=seed))


def _call(name: str, arguments: str, messages: Sequence[Mapping[str, Any]], seed: int) -> Reply:
    call = PlannedToolCall(
        id=tool_call_id(seed, len(messages), name), name=name, arguments=arguments
    )
    return Reply(tool_calls=(call,))


def tool_call_id(seed: int, conversation_length: int, name: str) -> str:
    """A deterministic OpenAI-looking tool call id."""
    digest = hashlib.sha256(f"{seed}:{conversation_length}:{name}".encode()).hexdigest()
    return f"call_{digest[:24]}"


def offered_tool_names(tools: Sequence[Mapping[str, Any]]) -> set[str]:
    """Names of the functions in an OpenAI ``tools`` list."""
    names: set[str] = set()
    for tool in tools:
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            names.add(function["name"])
    return names


def last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text of the last ``user`` message ("" when there is none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def trailing_tool_results(messages: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(tool name, result text) of the ``tool`` messages that end the conversation, in order.

    The name comes from the message's ``name``, else from the assistant tool call it answers.
    """
    tail: list[Mapping[str, Any]] = []
    index = len(messages)
    while index > 0 and messages[index - 1].get("role") == "tool":
        index -= 1
        tail.insert(0, messages[index])
    if not tail:
        return []
    names: dict[str, str] = {}
    if index > 0:
        for call in messages[index - 1].get("tool_calls") or ():
            function = call.get("function") or {}
            names[str(call.get("id"))] = str(function.get("name") or "")
    results = []
    for message in tail:
        name = message.get("name") or names.get(str(message.get("tool_call_id")), "") or "unknown"
        results.append((str(name), content_text(message.get("content")).strip()))
    return results


def answer_from_tool_result(tool: str, content: str) -> str:
    """One sentence that reports a tool's result (or its error) to the user."""
    if _is_error(content):
        return f"I could not use the {tool} tool ({content}). Please check the input and try again."
    value = _result_value(content)
    if tool == CALCULATOR:
        return f"The answer is {value}."
    if tool == CURRENT_TIME:
        return f"The current time is {value}."
    return f"The {tool} tool returned: {content}"


def _is_error(content: str) -> bool:
    if content.lower().startswith("error"):
        return True
    parsed = _json_object(content)
    return parsed is not None and "error" in parsed


def _result_value(content: str) -> str:
    """The value inside a JSON result such as ``{"result": 84}``, else the content itself."""
    parsed = _json_object(content)
    if parsed is not None:
        for key in ("result", "value", "time", "datetime", "iso"):
            if key in parsed:
                return str(parsed[key])
        if len(parsed) == 1:
            return str(next(iter(parsed.values())))
    return content


def _json_object(content: str) -> dict[str, Any] | None:
    if not content.startswith("{"):
        return None
    try:
        parsed = json.loads(content)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def find_expression(text: str) -> str | None:
    """The longest arithmetic expression in ``text`` ("what is 12*(3+4)?" gives "12*(3+4)")."""
    best: str | None = None
    for match in _EXPRESSION_RUN.finditer(text):
        candidate = _trim_expression(match.group())
        if (
            candidate
            and (best is None or len(candidate) > len(best))
            and _BINARY_OPERATOR.search(candidate)
            and _is_arithmetic(candidate)
        ):
            best = candidate
    return best


def _trim_expression(run: str) -> str:
    """Strip what cannot start or end an expression, then unmatched edge parentheses."""
    run = run.strip(" .+*/%").strip()
    run = run.rstrip("-").strip()
    while run.startswith("(") and run.count("(") > run.count(")"):
        run = run[1:].lstrip()
    while run.endswith(")") and run.count(")") > run.count("("):
        run = run[:-1].rstrip()
    return run


def _is_arithmetic(expression: str) -> bool:
    """Whether ``expression`` parses as numbers, operators and balanced parentheses."""
    if _SPACED_OPERANDS.search(expression):
        return False
    compact = expression.replace(" ", "")
    depth = 0
    for char in compact:
        depth += (char == "(") - (char == ")")
        if depth < 0:
            return False
    return depth == 0 and _EXPRESSION_SHAPE.fullmatch(compact) is not None


def asks_for_time(text: str) -> bool:
    """Whether ``text`` asks for the time or date (English or Chinese)."""
    return _TIME_QUESTION.search(text) is not None


def find_timezone(text: str) -> str | None:
    """The first IANA-looking zone name in ``text``, such as "Europe/Paris"."""
    match = _IANA_ZONE.search(text)
    return match.group() if match else None


def text_answer(user_text: str, *, model: str, seed: int) -> str:
    """The plain answer: quotes the start of the message; wording varies by seed and message."""
    snippet = " ".join(user_text.split())[:_SNIPPET_CHARS].rstrip()
    digest = hashlib.sha256(f"{seed}:{user_text}".encode()).digest()
    tail = _ANSWER_TAILS[digest[0] % len(_ANSWER_TAILS)].format(model=model)
    if not snippet:
        return f"Hello! {tail}"
    return f"You said: {snippet}. {tail}"
