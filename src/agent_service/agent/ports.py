"""Ports: what the agent loop needs from the outside, as protocols.

Adapters implement them: ``llm.LiteLLMClient`` (LLMPort), ``store.sessions.RedisSessionMemory``
(SessionMemory), ``httptools`` (Tool), ``observability`` (RunObserver). Unit tests pass fakes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from agent_service.domain.approvals import ApprovalDecision
from agent_service.domain.journal import JournalEntry
from agent_service.domain.messages import (
    ChatMessage,
    LLMAttempt,
    LLMCompletion,
    TokenUsage,
    ToolSpec,
)
from agent_service.domain.runs import RunEvent, RunResult
from agent_service.domain.sources import Retrieval

DeltaCallback = Callable[[str], Awaitable[None]]
"""Receives each text fragment of a streamed LLM answer."""

EventSink = Callable[[RunEvent], Awaitable[None]]
"""Receives the run's progress events (SSE for sync streams, a Redis stream for tasks)."""


class LLMPort(Protocol):
    """The LLM client of one config snapshot (it knows the models and their fallbacks)."""

    async def complete(
        self,
        *,
        model: str,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        max_tokens: int | None = None,
        on_delta: DeltaCallback | None = None,
        response_format: dict[str, Any] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
    ) -> LLMCompletion:
        """One logical LLM call on ``model`` (a configured name), with its retries and fallbacks.

        ``response_format`` asks for structured output, ``tool_choice`` for a tool call
        (``"required"`` or a named function), both in OpenAI's form.

        Raises ``LLMUnavailableError`` when the whole fallback chain failed and
        ``LLMBadRequestError`` when the provider rejected the request.
        """
        ...


class Tool(Protocol):
    """One tool the model may call: built-in, HTTP or MCP."""

    @property
    def spec(self) -> ToolSpec: ...

    async def invoke(self, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> str:
        """Run the tool. Raises ``ToolError`` with a message the model may read.

        ``idempotency_key`` (``<task_id>:<step>``, queued runs only) is the same for every
        attempt at this step of this run: a tool with side effects sends it along (HTTP
        ``Idempotency-Key``, MCP ``_meta``) so its service can dedupe a call made twice.
        """
        ...


@runtime_checkable
class RetrievalTool(Tool, Protocol):
    """A tool that searches a knowledge base (``knowledge.tool.KnowledgeSearchTool``): the loop
    calls ``retrieve`` instead of ``invoke``, with the run's tenant, and keeps the hits as the
    run's sources (a ``retrieval`` step)."""

    async def retrieve(
        self, arguments: dict[str, Any], *, tenant: str, first_number: int = 1
    ) -> Retrieval:
        """Search; hits are numbered from ``first_number``. Raises ``ToolError``."""
        ...


Toolbox = Callable[[], Mapping[str, "Tool"]]
"""The tools of an agent by name, read when a run starts (MCP tools change as servers are
discovered again, come and go)."""


class SessionMemory(Protocol):
    async def load(self, session_id: str, max_turns: int) -> list[ChatMessage]:
        """The last ``max_turns`` turns of the session, oldest first."""
        ...

    async def append(
        self, session_id: str, messages: Sequence[ChatMessage], max_turns: int
    ) -> None:
        """Append one turn (the user message and the final answer) and trim old turns."""
        ...


class RunGuard(Protocol):
    """What may stop a run between steps: cancellation and the caller's budgets.

    ``store.limits.RedisRunGuard`` implements it; the loop calls ``check`` before every LLM and
    tool call and ``charge`` after every LLM call.
    """

    async def check(self) -> None:
        """Raise ``AgentError`` (``cancelled`` or ``budget_exceeded``) if the run must stop."""
        ...

    async def charge(self, usage: TokenUsage) -> None:
        """Account one LLM call's tokens and cost against the caller's rates and budgets."""
        ...


class StepJournal(Protocol):
    """The step journal of one run: ``store.journal.RedisStepJournal`` for queued runs,
    ``agent.journal.MemoryJournal`` for a sync run that may be handed over to a task.

    The loop replays the entries it finds (no call is made again) and appends each new step
    before starting the next one.
    """

    @property
    def entries(self) -> Sequence[JournalEntry]:
        """The steps recorded so far: by earlier attempts, then by this one."""
        ...

    @property
    def decisions(self) -> Mapping[int, ApprovalDecision]:
        """Approval decisions by journal step, as they stood when this attempt began."""
        ...

    def idempotency_key(self, step: int) -> str | None:
        """The key tool calls at ``step`` send (``<task_id>:<step>``), or None."""
        ...

    async def append(self, entry: JournalEntry) -> None:
        """Record ``entry`` at the end (``entry.step.index == len(entries)``).

        Raises ``JournalConflictError`` when another attempt of the run took it over.
        """
        ...


class ResponseCache(Protocol):
    """Exact-match answers of earlier runs (``store.cache.RedisResponseCache``)."""

    async def get(self, key: str) -> RunResult | None: ...

    async def put(self, key: str, result: RunResult, ttl_seconds: int) -> None: ...


class RunObserver(Protocol):
    """Hears about every LLM and tool call (metrics and traces implement it)."""

    def llm_call(self, completion: LLMCompletion) -> None:
        """A logical LLM call answered (its attempts include failed tries before it)."""
        ...

    def llm_failed(self, model: str, attempts: Sequence[LLMAttempt]) -> None:
        """A logical LLM call on ``model`` failed after ``attempts``."""
        ...

    def tool_call(self, name: str, ok: bool, duration_s: float) -> None: ...

    def cache_lookup(self, hit: bool) -> None:
        """A response-cache lookup was answered (``hit``) or missed."""
        ...


class NullObserver:
    """A RunObserver that records nothing."""

    def llm_call(self, completion: LLMCompletion) -> None:
        return None

    def llm_failed(self, model: str, attempts: Sequence[LLMAttempt]) -> None:
        return None

    def tool_call(self, name: str, ok: bool, duration_s: float) -> None:
        return None

    def cache_lookup(self, hit: bool) -> None:
        return None
