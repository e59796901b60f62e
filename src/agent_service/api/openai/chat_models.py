"""Chat Completions' request and response bodies, as the service serves them.

Every request field of OpenAI's API reference is accepted (docs/openai.md says which are
honoured and which ignored); what the service does not serve (image, audio and file content,
custom tools, the deprecated ``functions``) is refused with a message that says so, and is left
out of this schema. Booleans and numbers are strict: ``"stream": 0`` is not a boolean.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from agent_service.api.openai.common import (
    FUNCTION_NAME_PATTERN,
    FunctionDefinition,
    StrictBody,
    integral,
)
from agent_service.domain.messages import ChatMessage, ToolCall

MAX_TEXT = 1_000_000
Text = Annotated[str, Field(max_length=MAX_TEXT)]
_UNSERVED_PARTS = {
    "image_url": "image content",
    "input_audio": "audio content",
    "file": "file content",
}


class TextPart(StrictBody):
    type: Literal["text"]
    text: str = Field(max_length=MAX_TEXT)
    prompt_cache_breakpoint: dict[str, Any] | None = None
    """Accepted and ignored: prompt caching is the provider's."""


class RefusalPart(StrictBody):
    type: Literal["refusal"]
    refusal: str = Field(max_length=MAX_TEXT)


class FunctionCallBody(StrictBody):
    name: str = Field(max_length=256)
    arguments: str = Field(max_length=MAX_TEXT)


class MessageToolCall(StrictBody):
    id: str = Field(max_length=256)
    type: Literal["function"]
    function: FunctionCallBody


def _refuse_unserved_parts(data: Any) -> Any:
    """A clear refusal for content parts the service does not serve (before the union error)."""
    content = data.get("content") if isinstance(data, dict) else None
    if isinstance(content, list):
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in _UNSERVED_PARTS:
                raise ValueError(f"{_UNSERVED_PARTS[kind]} ({kind} parts) is not served: send text")
    return data


class _Message(StrictBody):
    name: str | None = Field(default=None, max_length=256)

    _check_parts = model_validator(mode="before")(_refuse_unserved_parts)


class SystemMessage(_Message):
    role: Literal["system"]
    content: Text | list[TextPart]


class DeveloperMessage(_Message):
    role: Literal["developer"]
    content: Text | list[TextPart]


class UserMessage(_Message):
    role: Literal["user"]
    content: Text | list[TextPart]


class AudioRef(StrictBody):
    id: str


class AssistantMessage(_Message):
    role: Literal["assistant"]
    content: Text | list[TextPart | RefusalPart] | None = None
    refusal: str | None = None
    tool_calls: list[MessageToolCall] | None = Field(default=None, max_length=128)
    audio: AudioRef | None = None
    """Accepted and ignored: audio is not served."""
    function_call: None = None
    """Deprecated: only null is accepted (``tool_calls`` replaces it)."""


class ToolMessage(StrictBody):
    role: Literal["tool"]
    content: Text | list[TextPart]
    tool_call_id: str = Field(max_length=256)


InputMessage = Annotated[
    SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage,
    Field(discriminator="role"),
]


def _text(content: str | list[Any] | None) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content if isinstance(part, TextPart))


def to_chat_messages(messages: list[InputMessage]) -> list[ChatMessage]:
    """The conversation as the agent loop sees it (developer messages are system messages;
    content parts joined; empty messages without tool calls dropped)."""
    out: list[ChatMessage] = []
    for message in messages:
        if isinstance(message, ToolMessage):
            out.append(
                ChatMessage(
                    role="tool", content=_text(message.content), tool_call_id=message.tool_call_id
                )
            )
        elif isinstance(message, AssistantMessage):
            calls = [
                ToolCall(id=call.id, name=call.function.name, arguments=call.function.arguments)
                for call in message.tool_calls or ()
            ]
            text = _text(message.content)
            if text or calls:
                out.append(ChatMessage(role="assistant", content=text or None, tool_calls=calls))
        else:
            text = _text(message.content)
            if text:
                role = "user" if isinstance(message, UserMessage) else "system"
                out.append(ChatMessage(role=role, content=text))
    return out


class ToolDefinition(StrictBody):
    type: Literal["function"]
    function: FunctionDefinition


class NamedFunction(StrictBody):
    name: str = Field(pattern=FUNCTION_NAME_PATTERN)


class NamedToolChoice(StrictBody):
    type: Literal["function"]
    function: NamedFunction


class AllowedTools(StrictBody):
    mode: Literal["auto", "required"]
    tools: list[dict[str, Any]] = Field(max_length=128)
    """Tool definitions (``{"type": "function", "function": {"name": ...}}``): functions not
    named here are not offered."""

    def names(self) -> set[str]:
        return {
            str(t["function"].get("name"))
            for t in self.tools
            if t.get("type") == "function" and isinstance(t.get("function"), dict)
        }


class ChatAllowedToolsChoice(StrictBody):
    type: Literal["allowed_tools"]
    allowed_tools: AllowedTools


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice | ChatAllowedToolsChoice


class TextFormat(StrictBody):
    type: Literal["text"]


class JsonObjectFormat(StrictBody):
    type: Literal["json_object"]


class JsonSchemaSpec(StrictBody):
    name: str = Field(pattern=FUNCTION_NAME_PATTERN)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class JsonSchemaFormat(StrictBody):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[
    TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")
]


class ChatStreamOptions(StrictBody):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None
    """Accepted and ignored: chunks carry no obfuscation padding."""


class PredictionContent(StrictBody):
    type: Literal["content"]
    content: str | list[TextPart]


def _refuse_unserved_message(message: Any) -> None:
    if not isinstance(message, dict):
        return
    if message.get("role") == "function":
        raise ValueError("function messages (deprecated) are not served: use tool messages")
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        if isinstance(call, dict) and call.get("type") != "function":
            raise ValueError(f"tool calls of type {call.get('type')!r} are not served")
    if message.get("function_call") is not None:
        raise ValueError("function_call in messages (deprecated) is not served: use tool_calls")


def refuse_unserved_tools(data: dict[str, Any]) -> None:
    """A clear refusal for tools and tool choices other than functions."""
    tools = data.get("tools")
    for tool in tools if isinstance(tools, list) else ():
        if isinstance(tool, dict) and tool.get("type") not in ("function", None):
            raise ValueError(f"tools of type {tool.get('type')!r} are not served: use functions")
    choice = data.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") not in ("function", "allowed_tools"):
        raise ValueError(f"tool_choice of type {choice.get('type')!r} is not served")


def _refuse_unserved(data: Any) -> Any:
    """A clear refusal, before the schema's own errors, for what the service does not serve."""
    if not isinstance(data, dict):
        return data
    messages = data.get("messages")
    for message in messages if isinstance(messages, list) else ():
        _refuse_unserved_message(message)
    refuse_unserved_tools(data)
    for field in ("functions", "function_call"):
        if data.get(field) is not None:
            raise ValueError(f"{field} (deprecated) is not served: use tools and tool_choice")
    modalities = data.get("modalities")
    if data.get("audio") is not None or (isinstance(modalities, list) and "audio" in modalities):
        raise ValueError("audio output is not served: leave out audio and modalities")
    return data


class CompletionBody(StrictBody):
    """``POST /v1/chat/completions``: every field of OpenAI's reference (see docs/openai.md)."""

    _unserved = model_validator(mode="before")(_refuse_unserved)
    _integers = field_validator(
        "max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs", mode="before"
    )(integral)

    model: str = Field(
        min_length=1,
        max_length=256,
        description="An agent's name (that agent runs), or a configured model name (the "
        "default agent runs on it); see GET /v1/models.",
    )
    messages: list[InputMessage] = Field(min_length=1, max_length=1000)
    stream: bool | None = False
    stream_options: ChatStreamOptions | None = None
    tools: list[ToolDefinition] | None = Field(
        default=None,
        max_length=128,
        description="Client-side functions: offered to the model next to the agent's own "
        "tools; a call of one ends the completion with finish_reason `tool_calls`.",
    )
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    n: int | None = Field(default=1, ge=1, le=1, description="Only 1 choice is served.")
    metadata: dict[str, Annotated[str, Field(max_length=512)]] | None = Field(
        default=None, max_length=16
    )
    user: str | None = Field(default=None, max_length=256)
    safety_identifier: str | None = Field(default=None, max_length=256)
    store: bool | None = None
    # Accepted and ignored (docs/openai.md): sampling and the like are the model config's.
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = Field(default=None)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, int] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    modalities: list[Literal["text"]] | None = None
    prediction: PredictionContent | None = None
    reasoning_effort: str | None = Field(default=None, max_length=64)
    verbosity: str | None = Field(default=None, max_length=64)
    service_tier: str | None = Field(default=None, max_length=64)
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    moderation: dict[str, Any] | None = None
    web_search_options: dict[str, Any] | None = None
    # Not served, so only null is accepted: audio output, the deprecated functions.
    audio: None = None
    functions: None = None
    function_call: None = None


class ChatUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class FunctionCallOut(BaseModel):
    name: str
    arguments: str


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: None = None
    tool_calls: list[ToolCallOut] | None = Field(default=None, exclude_if=lambda v: v is None)


class Choice(BaseModel):
    index: int = 0
    message: ResponseMessage
    finish_reason: Literal["stop", "length", "tool_calls"] = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: ChatUsage
    system_fingerprint: str | None = None
    run_id: str | None = Field(
        default=None,
        description="Extension: the run's id in the history (feedback takes it; also the "
        "X-Run-Id header).",
    )
    sources: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Extension: the knowledge base passages the answer used (docs/api.md).",
    )
