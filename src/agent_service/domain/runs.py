"""A run of the agent: its request, the steps it took, its result, and the events it emits.

The same shapes serve sync runs (``POST /v1/chat``), streamed runs and queued tasks.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agent_service.domain.messages import ChatMessage, TokenUsage, ToolCall, ToolSpec
from agent_service.domain.sources import Source

DEFAULT_TENANT = "default"

RunMode = Literal["sync", "stream", "async"]


class OutputFormat(BaseModel):
    """A run's own structured-output request (OpenAI's ``response_format`` / ``text.format``):
    it overrides the agent's ``responseFormat`` for that run.

    ``json_object`` asks for any JSON object; ``json_schema`` for JSON matching ``schema``.
    """

    type: Literal["json_object", "json_schema"]
    name: str = "answer"
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool = False

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    @property
    def json_schema(self) -> dict[str, Any]:
        """The schema an answer is validated against (``json_object``: any object)."""
        return self.schema_ if self.schema_ is not None else {"type": "object"}


class RunRequest(BaseModel):
    """What the caller asked for. Validated at the API edge; trusted from here on.

    ``tenant`` scopes sessions, budgets and the cache; ``history`` holds earlier turns sent by
    the caller (the OpenAI-compatible endpoints) and replaces session memory when present.
    ``continuation`` holds what follows ``message`` in such a conversation: the assistant's
    calls of client tools and their results, which the client sends back to continue a run
    (OpenAI's tool round trip). ``client_tools`` are tools the caller executes itself: the
    model is offered them next to the agent's own, and a call of one ends the run with
    ``RunResult.tool_calls``.
    """

    message: str
    session_id: str | None = None
    model: str | None = None
    agent: str | None = None
    """The agent to run (a configured name; None: the config's default agent)."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    tenant: str = DEFAULT_TENANT
    history: list[ChatMessage] = Field(default_factory=list)
    continuation: list[ChatMessage] = Field(default_factory=list)
    client_tools: list[ToolSpec] = Field(default_factory=list)
    output_format: OutputFormat | None = None
    """Structured output for this run, instead of the agent's ``responseFormat``."""
    tool_choice: str | dict[str, Any] | None = None
    """A tool call the run's first LLM call must make (``"required"`` or a named function,
    OpenAI's chat form); later calls choose freely, or a forced call would repeat forever."""
    max_output_tokens: int | None = None
    """A cap on the output tokens of each LLM call of the run (below the model's own)."""
    keep_messages: bool = False
    """Return the messages the run added to the conversation (``RunResult.messages``)."""


class Usage(BaseModel):
    """Usage of a run, as the API shows it."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0

    @classmethod
    def from_tokens(cls, usage: TokenUsage) -> Usage:
        return cls(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
            cost_usd=round(usage.cost_usd, 8),
        )


class Step(BaseModel):
    """One LLM call or one tool call of a run, with its duration.

    ``name`` is the configured model name (``kind == "llm"``) or the tool name
    (``kind == "tool"``; ``"retrieval"`` for a knowledge search, ``search_<kb>``, with its
    ``hits`` and the passages it returned as ``sources``). ``output`` is the tool result or the
    model's text, truncated.
    """

    index: int
    kind: Literal["llm", "tool", "retrieval"]
    name: str
    started_at: float
    duration_ms: float
    status: Literal["ok", "error"] = "ok"
    input: str | None = None
    output: str | None = None
    error: str | None = None
    usage: Usage | None = None
    tool_calls: list[str] = Field(default_factory=list)
    fallback_from: str | None = None
    hits: int | None = None
    """Passages a knowledge search returned (``kind == "retrieval"``)."""
    sources: list[Source] = Field(default_factory=list)
    """Those passages, numbered across the run (a resumed run replays them from here)."""


class RunResult(BaseModel):
    """The outcome of a successful run."""

    answer: str
    steps: list[Step]
    usage: Usage
    model: str
    duration_ms: float
    agent: str | None = None
    """The agent that ran (its configured name)."""
    output: Any = None
    """The answer parsed as JSON, when the agent has a ``responseFormat`` (it validated)."""
    trace_id: str | None = None
    degraded: bool = False
    """True when the agent answered without tools because they kept failing."""
    config_generation: int | None = None
    cached: bool = False
    """True when the answer came from the response cache (no LLM call was made)."""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    """Calls of the request's client tools the run stopped at: the caller runs them and sends
    their results back (``finish_reason: "tool_calls"``); empty for a finished answer."""
    finish_reason: str | None = None
    """Why the last LLM call stopped (``stop``, ``length``, ``tool_calls``), when known."""
    messages: list[ChatMessage] | None = None
    """The messages the run added after its input (assistant tool calls, tool results, the
    answer), when the request asked for them (``keep_messages``)."""
    run_id: str | None = None
    """The run's id in the history: a sync run's (also its ``X-Run-Id`` header), a task's id
    for a queued run. Feedback and ``GET /v1/tasks/{id}`` take it."""
    sources: list[Source] = Field(default_factory=list)
    """The knowledge base passages the answer used, in the order it cited them
    (``agent.sources``); empty for an agent without knowledge bases."""


EventType = Literal["status", "step", "delta", "done", "error", "cancelled", "approval_required"]


class RunEvent(BaseModel):
    """A progress event: what the SSE endpoints send, and what the task stream stores."""

    type: EventType
    data: dict[str, Any]
