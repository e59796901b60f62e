"""Chat messages, tool calls and LLM completions as the agent loop sees them.

The ``llm`` adapter translates these to and from the provider wire format (OpenAI style).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]


class ToolCall(BaseModel):
    """A model's request to call one tool. ``arguments`` is the raw JSON text the model wrote."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: str = "{}"


class ChatMessage(BaseModel):
    """One message of a conversation (OpenAI chat format, minus multimodal parts)."""

    role: Role
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None

    def to_openai(self) -> dict[str, Any]:
        """The message as an OpenAI-compatible dict (what LiteLLM and the simulator accept)."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in self.tool_calls
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None and self.role == "tool":
            out["name"] = self.name
        return out


class ToolSpec(BaseModel):
    """A tool offered to the model: name, description and JSON-schema parameters."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    parameters: dict[str, Any]

    def to_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


class TokenUsage(BaseModel):
    """Tokens and money spent by one LLM call or a whole run."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 10),
        )


class LLMAttempt(BaseModel):
    """One try against one model inside a completion (for fallback/retry accounting)."""

    model: str
    provider: str = ""
    outcome: Literal[
        "ok",
        "rate_limited",
        "server_error",
        "timeout",
        "connection_error",
        "bad_request",
        "other_error",
    ]
    duration_ms: float
    error: str | None = None


class LLMCompletion(BaseModel):
    """What one logical LLM call returned, after retries and fallbacks.

    ``model`` is the configured name that answered (it differs from the requested one after a
    fallback); ``provider`` is the LiteLLM provider (``openai``, ``anthropic``, ...).
    """

    content: str | None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: TokenUsage = Field(default_factory=TokenUsage)
    model: str
    requested_model: str
    provider: str
    response_model: str | None = None
    finish_reason: str | None = None
    duration_ms: float = 0.0
    time_to_first_token_ms: float | None = None
    attempts: list[LLMAttempt] = Field(default_factory=list)

    @property
    def fell_back(self) -> bool:
        return self.model != self.requested_model
