"""What the simulated model answers: pure functions over OpenAI-format messages and tools.

``server`` calls ``decide`` once per completion request. The rules, first match wins:

1. The conversation ends with tool results: answer in text from them.
2. The last user message says "call tool NAME with {JSON}" and NAME (or one ``<server>__NAME``)
   is offered: call it with that JSON object (how tests reach any tool, MCP tools included).
3. The last user message asks for a refund of an order id like ``OD-20240502`` and a tool
   whose name ends in ``refund_order`` is offered: call it once with ``{"order_id": ...,
   "reason": <the message>}``. Else, when it names order ids and a tool whose name ends in
   ``lookup_order`` is offered: call it once per order with ``{"order_id": ...}``.
4. The last user message holds an arithmetic expression and ``calculator`` is offered: call it.
5. The last user message asks for the time or date and ``current_time`` is offered: call it.
6. The last user message says "use the NAME tool" and NAME is offered: call it with the rest of
   the message as ``{"query": ...}`` (how tests and benchmarks reach HTTP tools).
7. The last user message is a question and knowledge search tools (``search_<kb>``) are
   offered: call each with the message as ``{"query": ...}``; the answer quotes the best
   passage and cites it as ``[n]``.
8. Otherwise: a short text answer that quotes the message.

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
_CALL_TOOL = re.compile(
    r"\bcall\s+(?:the\s+)?tool\s+([A-Za-z0-9_-]{1,64})(?:\s+with\s+(.*))?",
    re.IGNORECASE | re.DOTALL,
)
_ORDER_ID = re.compile(r"\bOD-\d{6,12}\b", re.IGNORECASE)
LOOKUP_ORDER = "lookup_order"
REFUND_ORDER = "refund_order"
_REFUND = re.compile(r"\brefund", re.IGNORECASE)
MAX_ORDER_LOOKUPS = 5
MCP_SEPARATOR = "__"
SEARCH_PREFIX = "search_"
MAX_SEARCHES = 3
_QUESTION = re.compile(
    r"\?\s*$|^\s*(?:how|what|where|why|when|which|who|can|could|does|do|is|are|should|"
    r"explain|tell me)\b",
    re.IGNORECASE,
)
_PASSAGE = re.compile(r"^\[(\d+)\] ([^\n]+)\n(.*?)(?=\n\n\[\d+\] |\Z)", re.MULTILINE | re.DOTALL)
_CODE_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


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
    planned = plan_tool_calls(user_text, offered) or forced_call(tool_choice, offered)
    if planned:
        return _calls(planned, messages, seed)
    return Reply(text=text_answer(user_text, model=model, seed=seed))


def forced_call(tool_choice: Any, offered: set[str]) -> list[tuple[str, str]]:
    """A call ``tool_choice`` demands when no rule made one: the named function, or with
    ``"required"`` the first offered tool by name, with ``{}``."""
    if isinstance(tool_choice, Mapping):
        function = tool_choice.get("function")
        name = function.get("name") if isinstance(function, Mapping) else None
        return [(name, "{}")] if name in offered else []
    if tool_choice == "required" and offered:
        return [(sorted(offered)[0], "{}")]
    return []


def plan_tool_calls(user_text: str, offered: set[str]) -> list[tuple[str, str]]:
    """(tool, arguments JSON) of the calls rules 2 to 6 make for ``user_text``, or none."""
    explicit = _explicit_calls(user_text, offered)
    if explicit:
        return explicit
    orders = _order_calls(user_text, offered)
    if orders:
        return orders
    expression = find_expression(user_text) if CALCULATOR in offered else None
    if expression is not None:
        return [(CALCULATOR, json.dumps({"expression": expression}, ensure_ascii=False))]
    if CURRENT_TIME in offered and asks_for_time(user_text):
        return [(CURRENT_TIME, json.dumps({"timezone": find_timezone(user_text) or "UTC"}))]
    named = _USE_TOOL.search(user_text)
    if named is not None and named.group(1) in offered:
        query = (user_text[: named.start()] + user_text[named.end() :]).strip()
        return [(named.group(1), json.dumps({"query": query}, ensure_ascii=False))]
    return _searches(user_text, offered)


def _searches(text: str, offered: set[str]) -> list[tuple[str, str]]:
    """Rule 7: a question, asked of every offered knowledge search tool (a few at most)."""
    if not text.strip() or not _QUESTION.search(text):
        return []
    tools = sorted(name for name in offered if name.startswith(SEARCH_PREFIX))[:MAX_SEARCHES]
    arguments = json.dumps({"query": text.strip()}, ensure_ascii=False)
    return [(name, arguments) for name in tools]


def _calls(
    planned: Sequence[tuple[str, str]], messages: Sequence[Mapping[str, Any]], seed: int
) -> Reply:
    """Several tool calls in one reply; ids stay distinct when a tool is called twice."""
    calls = tuple(
        PlannedToolCall(
            id=tool_call_id(seed, len(messages), name if index == 0 else f"{name}:{index}"),
            name=name,
            arguments=arguments,
        )
        for index, (name, arguments) in enumerate(planned)
    )
    return Reply(tool_calls=calls)


def resolve_tool_name(name: str, offered: set[str]) -> str | None:
    """``name`` if offered, else the one offered ``<server>__name`` (an MCP tool), else None."""
    if name in offered:
        return name
    matches = sorted(o for o in offered if o.endswith(MCP_SEPARATOR + name))
    return matches[0] if len(matches) == 1 else None


def _explicit_calls(text: str, offered: set[str]) -> list[tuple[str, str]]:
    """(tool, arguments JSON) for each "call tool NAME with {...}" of ``text``, when each NAME
    is offered and its arguments are a JSON object (none given: ``{}``). Several in one
    message are parallel calls in one reply; one that cannot be made makes none."""
    calls = []
    rest = text
    while (match := _CALL_TOOL.search(rest)) is not None:
        name = resolve_tool_name(match.group(1), offered)
        arguments = _arguments(match.group(2))
        if name is None or arguments is None:
            return []
        calls.append((name, arguments))
        rest = rest[match.end(1) :]
    return calls


def _arguments(rest: str | None) -> str | None:
    """The JSON object that starts ``rest`` (text may follow it), as JSON text."""
    if rest is None:
        return "{}"
    try:
        arguments, _ = json.JSONDecoder().raw_decode(rest)
    except ValueError:
        return None
    if not isinstance(arguments, dict):
        return None
    return json.dumps(arguments, ensure_ascii=False)


def _order_calls(text: str, offered: set[str]) -> list[tuple[str, str]]:
    """Rule 3: a refund asked for, else order lookups."""
    refund = _refund(text, offered)
    return [refund] if refund is not None else _order_lookups(text, offered)


def _refund(text: str, offered: set[str]) -> tuple[str, str] | None:
    """A ``refund_order`` call for the first order id of a message asking for a refund."""
    tools = sorted(
        o for o in offered if o == REFUND_ORDER or o.endswith(MCP_SEPARATOR + REFUND_ORDER)
    )
    order = _ORDER_ID.search(text)
    if not tools or order is None or _REFUND.search(text) is None:
        return None
    arguments = {"order_id": order.group().upper(), "reason": " ".join(text.split())[:200]}
    return tools[0], json.dumps(arguments, ensure_ascii=False)


def _order_lookups(text: str, offered: set[str]) -> list[tuple[str, str]]:
    """One ``lookup_order`` call per distinct order id in ``text`` (at most five)."""
    tools = sorted(
        o for o in offered if o == LOOKUP_ORDER or o.endswith(MCP_SEPARATOR + LOOKUP_ORDER)
    )
    if not tools:
        return []
    ids = list(dict.fromkeys(m.group().upper() for m in _ORDER_ID.finditer(text)))
    return [(tools[0], json.dumps({"order_id": i})) for i in ids[:MAX_ORDER_LOOKUPS]]


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


def first_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """The text of the first ``user`` message ("" when there is none): what names a
    conversation (``conversations.conversation_id``)."""
    for message in messages:
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
    if tool.startswith(SEARCH_PREFIX):
        return answer_from_passages(content)
    if tool in (CALCULATOR, CURRENT_TIME):
        what = "answer" if tool == CALCULATOR else "current time"
        return f"The {what} is {_result_value(content)}."
    if tool.endswith(REFUND_ORDER):
        refund = _json_object(content)
        if refund is not None and "refund_id" in refund:
            return (
                f"Refund {refund['refund_id']} of {refund.get('amount')} "
                f"{refund.get('currency', '')} for order {refund.get('order_id')} is issued."
            ).replace(" .", ".")
    if tool.endswith(LOOKUP_ORDER):
        order = _json_object(content)
        if order is not None and "order_id" in order and "status" in order:
            return order_summary(order)
    return f"The {tool} tool returned: {content}"


def answer_from_passages(content: str) -> str:
    """The best passage of a knowledge search result, quoted and cited: ``According to
    <title> [1]: <its first sentences>``."""
    first = _PASSAGE.search(content)
    if first is None:
        return "The knowledge base has nothing on this."
    number, where, body = first.group(1), first.group(2), first.group(3)
    prose = _CODE_BLOCK.sub(" ", body.strip())  # quote prose, not code
    lines = [line for line in prose.splitlines()[1:] if line.strip()]  # heading path off
    text = " ".join(lines) or prose.strip() or body.strip()
    sentences = _SENTENCE_END.split(text)
    quote = " ".join(sentences[:2]).strip()
    if len(quote) > 400:
        quote = quote[:400].rsplit(" ", 1)[0] + " …"
    title = where.split(" — ", 1)[0]
    return f"According to {title} [{number}]: {quote}"


def order_summary(order: Mapping[str, Any]) -> str:
    """One sentence about an order from a ``lookup_order`` result."""
    details: list[str] = []
    if order.get("carrier") and order.get("tracking_number"):
        details.append(f"{order['carrier']} tracking number {order['tracking_number']}")
    for key, label in (
        ("estimated_delivery", "estimated delivery"),
        ("delivered_at", "delivered on"),
        ("estimated_ship_date", "expected to ship on"),
    ):
        if order.get(key):
            details.append(f"{label} {order[key]}")
    refund = order.get("refund")
    if isinstance(refund, Mapping) and refund.get("amount") is not None:
        currency = order.get("currency", "")
        details.append(
            f"refund of {refund['amount']} {currency} issued on {refund.get('issued_at')}".replace(
                "  ", " "
            )
        )
    sentence = f"Order {order['order_id']} is {order['status']}"
    return f"{sentence}: {', '.join(details)}." if details else f"{sentence}."


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
