"""What Chat Completions and the Responses API share: the model or agent a request names,
client tools, structured output, and how a conversation becomes a run.

Called by ``api.openai.chat`` and ``api.openai.responses`` while they turn a request body into
a ``RunRequest``; every refusal is an ``ApiError`` naming the field at fault (``param``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from pydantic import BaseModel, ConfigDict, Field

from agent_service.agent.loop import Agent
from agent_service.api.errors import ApiError
from agent_service.domain.errors import ErrorType
from agent_service.domain.messages import ChatMessage, ToolSpec
from agent_service.domain.runs import OutputFormat, RunRequest
from agent_service.runtime import Snapshot

MODEL_NOT_FOUND = "model_not_found"
FUNCTION_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


def integral(value: Any) -> Any:
    """A before-validator of the integer fields of strict bodies: JSON Schema counts ``16.0``
    as an integer, so does the service (a boolean stays refused)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class StrictBody(BaseModel):
    """A request body part: unknown fields refused, no coercion (``"stream": 0`` is not a
    boolean)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class FunctionDefinition(StrictBody):
    """A function the caller offers (Chat Completions' ``tools[].function``)."""

    name: str = Field(pattern=FUNCTION_NAME_PATTERN)
    description: str | None = Field(default=None, max_length=100_000)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


def agent_and_model(name: str, snapshot: Snapshot, tenant: str) -> tuple[Agent, str | None]:
    """What ``model`` selects: an agent by its name (on its own model), or the default agent on
    a configured model. 404 ``model_not_found`` (as OpenAI answers) for a name that is
    neither, or an agent the tenant may not use."""
    if name in snapshot.agents:
        agent = snapshot.agent_for(name, tenant)
        if agent is not None:
            return agent, None
    elif name in snapshot.config.model_names:
        agent = snapshot.agent_for(None, tenant)
        if agent is None:
            raise ApiError(404, ErrorType.NOT_FOUND, "the default agent is not available")
        return agent, name
    raise ApiError(
        404,
        ErrorType.NOT_FOUND,
        f"The model {name!r} does not exist or you do not have access to it: name an agent or "
        "a configured model (GET /v1/models lists them).",
        param="model",
    )


class Function(Protocol):
    """A function a request offers (Chat Completions' and Responses' shapes both have these)."""

    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def parameters(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Asked:
    """What an OpenAI request asks of its run, in the service's terms."""

    functions: Sequence[Function]
    """The functions offered to the model (``tool_choice`` applied)."""
    output: OutputFormat | None
    forced: str | dict[str, Any] | None
    max_output_tokens: int | None
    metadata: dict[str, str] | None
    user: str | None


def run_request(
    conversation: Sequence[ChatMessage],
    asked: Asked,
    *,
    agent: Agent,
    model: str | None,
    tenant: str,
    param: str,
    instructions: str | None = None,
) -> RunRequest:
    """The run of an OpenAI request on ``conversation`` (``param``: the field holding it).

    ``instructions`` lead the history as a system message. The run returns the messages it
    adds: chat continuations and stored responses need them.
    """
    history, message, continuation = split_conversation(conversation, param)
    if instructions:
        history = [ChatMessage(role="system", content=instructions), *history]
    metadata: dict[str, Any] = dict(asked.metadata or {})
    if asked.user:
        metadata["user"] = asked.user
    return RunRequest(
        message=message,
        model=model,
        agent=agent.name,
        tenant=tenant,
        history=history,
        continuation=continuation,
        metadata=metadata,
        client_tools=client_tools(asked.functions, agent, "tools"),
        output_format=asked.output,
        tool_choice=asked.forced,
        max_output_tokens=asked.max_output_tokens,
        keep_messages=True,
    )


def client_tools(functions: Sequence[Function], agent: Agent, param: str) -> list[ToolSpec]:
    """The request's functions as tools the caller runs (a name given twice: its first
    definition); 422 when one has the name of one of the agent's own tools (the model could
    not tell them apart)."""
    server = set(agent.tool_names)
    seen: set[str] = set()
    specs = []
    for function in functions:
        if function.name in server:
            raise ApiError(
                422,
                ErrorType.INVALID_REQUEST,
                f"{param}: {function.name!r} is the name of one of the agent's own tools; "
                "rename the function",
                param=param,
            )
        if function.name in seen:
            continue  # the model can be offered a name once: the first definition stands
        seen.add(function.name)
        check_schema(function.parameters, param)
        specs.append(
            ToolSpec(
                name=function.name,
                description=function.description or "",
                parameters=function.parameters or {"type": "object", "properties": {}},
            )
        )
    return specs


def check_schema(schema: dict[str, Any] | None, param: str) -> None:
    """422 unless ``schema`` is a valid JSON Schema (OpenAI refuses invalid ones too)."""
    if schema is None:
        return
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise ApiError(
            422,
            ErrorType.INVALID_REQUEST,
            f"{param}: not a valid JSON Schema: {exc.message}"[:500],
            param=param,
        ) from None


def output_format(
    kind: str, name: str | None, schema: dict[str, Any] | None, strict: bool | None, param: str
) -> OutputFormat | None:
    """A run's structured output from ``response_format`` / ``text.format`` (None: text)."""
    if kind == "text":
        return None
    if kind == "json_object":
        return OutputFormat(type="json_object")
    check_schema(schema, param)
    return OutputFormat(
        type="json_schema", name=name or "answer", schema=schema or {}, strict=bool(strict)
    )


def split_conversation(
    messages: Sequence[ChatMessage], param: str
) -> tuple[list[ChatMessage], str, list[ChatMessage]]:
    """(history, the last user message's text, what follows it) of a conversation.

    What follows the last user message (the assistant's tool calls and their results, in a
    client tool round trip) is kept whole; history before it may be trimmed to the agent's
    memory budget. 422 without a user message.
    """
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.role == "user" and message.content:
            return list(messages[:index]), message.content, list(messages[index + 1 :])
    raise ApiError(
        422,
        ErrorType.INVALID_REQUEST,
        f"{param}: the conversation needs a user message with text",
        param=param,
    )
