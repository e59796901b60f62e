"""Structured output: checking a final answer against an agent's JSON schema, and the repair.

Pure functions called by the agent loop when the agent has a ``responseFormat``: ``check``
parses the answer as JSON and validates it; on failure the loop makes one repair call with
``repair_message`` appended, then gives up with ``invalid_output``. ``response_format`` is what
the LLM call asks the provider for (OpenAI's ``json_schema`` form, which LiteLLM maps onto the
other providers' structured-output features).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jsonschema import ValidationError as SchemaViolation
from jsonschema.validators import validator_for

from agent_service.domain.messages import ChatMessage
from agent_service.domain.runs import OutputFormat

_MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class Checked:
    """The answer parsed (``value``), or why it does not satisfy the schema (``error``)."""

    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def response_format(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``response_format`` parameter asking for JSON matching ``schema``."""
    return {
        "type": "json_schema",
        "json_schema": {"name": _schema_name(name), "schema": schema, "strict": False},
    }


def format_parameter(wanted: OutputFormat) -> dict[str, Any]:
    """The ``response_format`` parameter of a run's own output format."""
    if wanted.type == "json_object":
        return {"type": "json_object"}
    spec = response_format(wanted.json_schema, wanted.name)
    spec["json_schema"]["strict"] = wanted.strict
    return spec


def check(answer: str, schema: dict[str, Any]) -> Checked:
    """Parse ``answer`` as JSON (a fenced ```json block is accepted) and validate it."""
    text = _unfenced(answer.strip())
    try:
        value = json.loads(text)
    except ValueError as exc:
        return Checked(error=f"the answer is not valid JSON ({exc})"[:_MAX_ERROR_CHARS])
    validator = validator_for(schema)(schema)
    error = _first_error(validator, value)
    if error is not None:
        return Checked(error=error)
    return Checked(value=value)


def repair_message(error: str) -> ChatMessage:
    """The message asking the model to answer again, in the schema this time."""
    return ChatMessage(
        role="user",
        content=f"Your answer does not match the required JSON schema: {error}. Answer again "
        "with only a JSON value that matches the schema, and nothing else.",
    )


def _first_error(validator: Any, value: Any) -> str | None:
    try:
        validator.validate(value)
    except SchemaViolation as exc:
        where = "/".join(str(part) for part in exc.absolute_path) or "(the answer)"
        return f"{where}: {exc.message}"[:_MAX_ERROR_CHARS]
    return None


def _unfenced(text: str) -> str:
    """The inside of a Markdown code fence, as some models wrap JSON in one."""
    if text.startswith("```") and text.endswith("```"):
        inner = text[3:-3]
        first_line, _, rest = inner.partition("\n")
        return rest if first_line.strip().lower() in ("", "json") else inner
    return text


def _schema_name(name: str) -> str:
    """A schema name OpenAI accepts (letters, digits, underscores and dashes, <= 64)."""
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)
    return (cleaned or "answer")[:64]
