"""The Responses API's request body (``POST /v1/responses``) as the service serves it.

Every field of OpenAI's reference is accepted (docs/openai.md says which are honoured and which
ignored). Input items: messages (text), ``function_call``, ``function_call_output``,
``mcp_call`` (a server tool step this service returned), ``item_reference`` (an item of a
stored response) and ``reasoning`` (ignored). Not served, refused with a message saying so:
image, file and audio input, tools other than functions, ``conversation`` and ``prompt``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from agent_service.api.openai.chat_models import refuse_unserved_tools
from agent_service.api.openai.common import FUNCTION_NAME_PATTERN, StrictBody, integral

MAX_TEXT = 1_000_000
Text = Annotated[str, Field(max_length=MAX_TEXT)]
_UNSERVED_PARTS = ("input_image", "input_file", "input_audio")
SERVED_ITEMS = (
    "message",
    "function_call",
    "function_call_output",
    "mcp_call",
    "item_reference",
    "reasoning",
)


class _Item(StrictBody):
    """Input items are read leniently: clients echo fields of output items (status, ids)."""

    model_config = ConfigDict(extra="ignore", strict=True)


class InputText(_Item):
    type: Literal["input_text"]
    text: Text


class OutputText(_Item):
    type: Literal["output_text"]
    text: Text


class Refusal(_Item):
    type: Literal["refusal"]
    refusal: Text


ContentPart = Annotated[InputText | OutputText | Refusal, Field(discriminator="type")]


def _typed_item(data: Any) -> Any:
    """``type`` is optional on messages and item references: fill it in, and refuse unserved
    content before the union's error."""
    if not isinstance(data, dict):
        return data
    content = data.get("content")
    if isinstance(content, list):
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in _UNSERVED_PARTS:
                raise ValueError(f"{kind} content is not served: send text")
    if "type" not in data:
        if "role" in data:
            return {**data, "type": "message"}
        if "id" in data:
            return {**data, "type": "item_reference"}
    kind = data.get("type")
    if isinstance(kind, str) and kind not in SERVED_ITEMS:
        raise ValueError(f"input items of type {kind!r} are not served: send messages and calls")
    return data


class MessageItem(_Item):
    type: Literal["message"]
    role: Literal["user", "assistant", "system", "developer"]
    content: Text | list[ContentPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if not isinstance(p, Refusal))


class FunctionCallItem(_Item):
    type: Literal["function_call"]
    call_id: str = Field(max_length=256)
    name: str = Field(max_length=256)
    arguments: Text
    id: str | None = None


class FunctionCallOutputItem(_Item):
    type: Literal["function_call_output"]
    call_id: str = Field(max_length=256)
    output: Text | list[ContentPart]

    def text(self) -> str:
        if isinstance(self.output, str):
            return self.output
        return "".join(p.text for p in self.output if not isinstance(p, Refusal))


class McpCallItem(_Item):
    type: Literal["mcp_call"]
    id: str = Field(max_length=256)
    server_label: str
    name: str = Field(max_length=256)
    arguments: Text
    output: str | None = None
    error: str | None = None


class ItemReference(_Item):
    type: Literal["item_reference"]
    id: str = Field(max_length=256)


class ReasoningItem(_Item):
    """Accepted and dropped: the service's models return no reasoning items."""

    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["reasoning"]


InputItem = Annotated[
    MessageItem
    | FunctionCallItem
    | FunctionCallOutputItem
    | McpCallItem
    | ItemReference
    | ReasoningItem,
    Field(discriminator="type"),
]


class FunctionTool(StrictBody):
    type: Literal["function"]
    name: str = Field(pattern=FUNCTION_NAME_PATTERN)
    description: str | None = Field(default=None, max_length=100_000)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionChoice(StrictBody):
    type: Literal["function"]
    name: str = Field(pattern=FUNCTION_NAME_PATTERN)


class ResponseAllowedToolsChoice(StrictBody):
    type: Literal["allowed_tools"]
    mode: Literal["auto", "required"]
    tools: list[dict[str, Any]] = Field(max_length=128)
    """Tool definitions (``{"type": "function", "name": ...}``): functions not named here are
    not offered."""

    def names(self) -> set[str]:
        return {str(t.get("name")) for t in self.tools if t.get("type") == "function"}


ToolChoice = Literal["none", "auto", "required"] | FunctionChoice | ResponseAllowedToolsChoice


class TextFormatText(StrictBody):
    type: Literal["text"]


class TextFormatJsonObject(StrictBody):
    type: Literal["json_object"]


class TextFormatJsonSchema(StrictBody):
    type: Literal["json_schema"]
    name: str = Field(pattern=FUNCTION_NAME_PATTERN)
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


TextFormat = Annotated[
    TextFormatText | TextFormatJsonObject | TextFormatJsonSchema, Field(discriminator="type")
]


class TextConfig(StrictBody):
    format: TextFormat | None = None
    verbosity: str | None = Field(default=None, max_length=64)


class ResponseStreamOptions(StrictBody):
    include_obfuscation: bool | None = None


def _refuse_unserved(data: Any) -> Any:
    if isinstance(data, dict):
        for field in ("conversation", "prompt"):
            if data.get(field) is not None:
                raise ValueError(f"{field} is not served: send input (and previous_response_id)")
        refuse_unserved_tools(data)
    return data


class ResponseBody(StrictBody):
    """``POST /v1/responses``: every field of OpenAI's reference (see docs/openai.md)."""

    _unserved = model_validator(mode="before")(_refuse_unserved)
    _integers = field_validator(
        "max_output_tokens", "top_logprobs", "max_tool_calls", mode="before"
    )(integral)

    @field_validator("input", mode="before")
    @classmethod
    def _typed_items(cls, value: Any) -> Any:
        return [_typed_item(item) for item in value] if isinstance(value, list) else value

    model: str = Field(
        min_length=1,
        max_length=256,
        description="An agent's name (that agent runs), or a configured model name (the "
        "default agent runs on it); see GET /v1/models.",
    )
    input: Text | list[InputItem] | None = Field(default=None)
    instructions: str | None = Field(default=None, max_length=MAX_TEXT)
    previous_response_id: str | None = Field(default=None, max_length=256)
    tools: list[FunctionTool] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    max_output_tokens: int | None = Field(default=None, ge=16)
    metadata: dict[str, Annotated[str, Field(max_length=512)]] | None = Field(
        default=None, max_length=16
    )
    store: bool | None = True
    background: bool | None = False
    stream: bool | None = False
    stream_options: ResponseStreamOptions | None = None
    user: str | None = Field(default=None, max_length=256)
    safety_identifier: str | None = Field(default=None, max_length=256)
    webhook_url: str | None = Field(
        default=None,
        max_length=2048,
        description="Service extension (background only): called (POST, signed) when the run "
        "ends, as for POST /v1/tasks.",
    )
    # Accepted and ignored (docs/openai.md).
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    max_tool_calls: int | None = Field(default=None, ge=1)
    truncation: Literal["auto", "disabled"] | None = None
    include: list[str] | None = None
    reasoning: dict[str, Any] | None = None
    service_tier: str | None = Field(default=None, max_length=64)
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, Any] | None = None
    context_management: list[dict[str, Any]] | None = None
    moderation: dict[str, Any] | None = None
    # Not served, so only null is accepted.
    conversation: None = None
    prompt: None = None
