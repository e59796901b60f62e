"""Structured output of the simulated model: JSON answers for ``response_format`` requests.

``server.make_answer`` calls ``structured_text`` when a request asks for ``json_object`` or
``json_schema`` output and the model answers in text. The rules (docs/simulator.md):

* ``json_schema``: a JSON value built from the schema, deterministic for a conversation:
  objects get every property (required or not), strings quote the decided text answer (an
  ``enum`` or ``const`` gives its first value; ``format: date-time`` a fixed timestamp),
  numbers are the first number of the last tool result or user message (0 if none), booleans
  ``true``, arrays one item.
* ``json_object``: ``{"answer": <the decided text answer>}``.
* A conversation whose user messages contain ``[[invalid-json]]`` gets text that is not JSON,
  every time (an agent gives up with ``invalid_output`` after its one repair);
  ``[[invalid-json-once]]`` gets it only while the conversation holds no assistant answer yet,
  so the repair succeeds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

INVALID_ALWAYS = "[[invalid-json]]"
INVALID_ONCE = "[[invalid-json-once]]"
_NOT_JSON = "Here is the answer you asked for: {text}"
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_MAX_DEPTH = 6


def wants_json(response_format: Any) -> bool:
    """Whether a request's ``response_format`` asks for JSON."""
    return isinstance(response_format, Mapping) and response_format.get("type") in (
        "json_object",
        "json_schema",
    )


def structured_text(
    response_format: Mapping[str, Any],
    text: str,
    messages: Sequence[Mapping[str, Any]],
    user_text: str,
) -> str:
    """The answer to send instead of ``text`` for a JSON ``response_format``."""
    said = " ".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")
    if INVALID_ALWAYS in said or (INVALID_ONCE in said and not _answered(messages)):
        return _NOT_JSON.format(text=text)
    if response_format.get("type") == "json_object":
        return json.dumps({"answer": text}, ensure_ascii=False)
    spec = response_format.get("json_schema")
    schema = spec.get("schema") if isinstance(spec, Mapping) else None
    number = _first_number(messages, user_text)
    value = instance(schema if isinstance(schema, Mapping) else {}, text, number)
    return json.dumps(value, ensure_ascii=False)


def instance(schema: Mapping[str, Any], text: str, number: float, depth: int = 0) -> Any:
    """A value satisfying ``schema`` (the common keywords), built from ``text`` and ``number``."""
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list) and options and isinstance(options[0], Mapping):
            return instance(options[0], text, number, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        return _object(schema, text, number, depth)
    if kind == "array":
        return _array(schema, text, number, depth)
    return _scalar(kind, schema, text, number)


def _scalar(kind: Any, schema: Mapping[str, Any], text: str, number: float) -> Any:
    values: dict[Any, Any] = {"integer": int(number), "number": number, "boolean": True}
    if kind in values:
        return values[kind]
    if kind == "null":
        return None
    return "2024-05-02T12:00:00Z" if schema.get("format") == "date-time" else text


def _array(schema: Mapping[str, Any], text: str, number: float, depth: int) -> list[Any]:
    items = schema.get("items")
    if depth >= _MAX_DEPTH:
        return []
    return [instance(items if isinstance(items, Mapping) else {}, text, number, depth + 1)]


def _object(schema: Mapping[str, Any], text: str, number: float, depth: int) -> dict[str, Any]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or depth >= _MAX_DEPTH:
        return {}
    return {
        name: instance(sub if isinstance(sub, Mapping) else {}, text, number, depth + 1)
        for name, sub in properties.items()
    }


def _answered(messages: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the conversation already holds an assistant text answer (a repair request)."""
    return any(m.get("role") == "assistant" and m.get("content") for m in messages)


def _first_number(messages: Sequence[Mapping[str, Any]], user_text: str) -> float:
    for message in reversed(messages):
        if message.get("role") == "tool":
            found = _NUMBER.search(str(message.get("content") or ""))
            if found:
                return float(found.group())
            break
    found = _NUMBER.search(user_text)
    return float(found.group()) if found else 0.0
