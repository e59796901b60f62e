"""A run of the agent: its request, the steps it took, its result, and the events it emits.

The same shapes serve sync runs (``POST /v1/chat``), streamed runs and queued tasks.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from agent_service.domain.messages import ChatMessage, TokenUsage

DEFAULT_TENANT = "default"

RunMode = Literal["sync", "stream", "async"]


class RunRequest(BaseModel):
    """What the caller asked for. Validated at the API edge; trusted from here on.

    ``tenant`` scopes sessions, budgets and the cache; ``history`` holds earlier turns sent by
    the caller (the OpenAI-compatible endpoint) and replaces session memory when present.
    """

    message: str
    session_id: str | None = None
    model: str | None = None
    agent: str | None = None
    """The agent to run (a configured name; None: the config's default agent)."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    tenant: str = DEFAULT_TENANT
    history: list[ChatMessage] = Field(default_factory=list)


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
    (``kind == "tool"``). ``output`` is the tool result or the model's text, truncated.
    """

    index: int
    kind: Literal["llm", "tool"]
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
    run_id: str | None = None
    """The run's id in the history: a sync run's (also its ``X-Run-Id`` header), a task's id
    for a queued run. Feedback and ``GET /v1/tasks/{id}`` take it."""


EventType = Literal["status", "step", "delta", "done", "error", "cancelled"]


class RunEvent(BaseModel):
    """A progress event: what the SSE endpoints send, and what the task stream stores."""

    type: EventType
    data: dict[str, Any]
