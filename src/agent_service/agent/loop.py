"""The tool-calling agent loop.

Called by the API (sync and streamed runs) and by the worker (queued runs) through
``Agent.run``. One ``Agent`` is one named agent (``AgentProfile``: prompt, model, tools, limits,
structured output) of one config snapshot: a config reload builds new ones, and in-flight runs
finish with the agent they started with. The agent's tools are read from its ``Toolbox`` when a
run starts, so tools discovered later (MCP servers) reach the next run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace

from agent_service.agent import journal as steps_journal
from agent_service.agent import policy, spans, structured
from agent_service.agent.approvals import ApprovalPolicy, apply_decision
from agent_service.agent.ports import (
    EventSink,
    LLMPort,
    NullObserver,
    ResponseCache,
    RetrievalTool,
    RunGuard,
    RunObserver,
    SessionMemory,
    StepJournal,
    Tool,
    Toolbox,
)
from agent_service.agent.sources import used_sources
from agent_service.agent.tools.registry import parse_arguments
from agent_service.agentconfig.agents import AgentProfile
from agent_service.agentconfig.model import AgentConfig
from agent_service.domain.approvals import ApprovalDecision, ApprovalPending, ApprovalRequest
from agent_service.domain.errors import AgentError, ErrorType, ToolError
from agent_service.domain.messages import (
    ChatMessage,
    LLMCompletion,
    TokenUsage,
    ToolCall,
    ToolSpec,
)
from agent_service.domain.runs import (
    DEFAULT_TENANT,
    RunEvent,
    RunMode,
    RunRequest,
    RunResult,
    Step,
    Usage,
)
from agent_service.domain.sources import Retrieval, Source

_PREVIEW_CHARS = 500
_DEGRADED_NOTE = (
    "The tools are failing right now and are no longer offered. Answer from what you know, "
    "and say that the answer could not use the tools."
)


class RunFailedError(AgentError):
    """A run of ``agent`` ended without an answer. ``steps`` and ``usage`` say how far it got."""

    def __init__(
        self, cause: AgentError, steps: list[Step], usage: TokenUsage, agent: str = ""
    ) -> None:
        super().__init__(cause.type, cause.message)
        self.steps = steps
        self.usage = usage
        self.agent = agent


@dataclass
class _RunState:
    """What one run accumulates; owned by a single ``Agent.run`` call."""

    started: float
    guard: RunGuard | None = None
    toolset: Mapping[str, Tool] = field(default_factory=dict)
    tools: list[ToolSpec] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    usage: TokenUsage = field(default_factory=TokenUsage)
    last_model: str = ""
    failed_tools_in_a_row: int = 0
    degraded: bool = False
    repaired: bool = False
    output: Any = None
    journal: StepJournal | None = None
    history: list[ChatMessage] | None = None
    """Session memory the run began with, pinned in the journal's first entry."""
    schema: dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    tool_choice: str | dict[str, Any] | None = None
    client_tools: frozenset[str] = frozenset()
    pending: list[ToolCall] = field(default_factory=list)
    """Client tool calls the run stopped at (the caller runs them)."""
    messages: list[ChatMessage] = field(default_factory=list)
    input_length: int = 0
    finish_reason: str | None = None
    tenant: str = DEFAULT_TENANT
    """Whose documents the run's knowledge searches read."""
    sources: list[Source] = field(default_factory=list)
    """Every passage the run's searches returned, numbered [1], [2]... in retrieval order."""

    def add_step(self, step: Step) -> Step:
        self.steps.append(step)
        self.sources.extend(step.sources)  # also for steps replayed from the journal
        return step


class Agent:
    """Runs requests as one named agent of one config snapshot: its profile, the snapshot's LLM
    client, its tools and the session memory."""

    def __init__(
        self,
        profile: AgentProfile,
        config: AgentConfig,
        llm: LLMPort,
        tools: Toolbox | Mapping[str, Tool],
        *,
        memory: SessionMemory | None = None,
        observer: RunObserver | None = None,
        tracer: trace.Tracer | None = None,
        capture_content: bool = False,
        generation: int = 1,
        cache: ResponseCache | None = None,
    ) -> None:
        self.profile = profile
        self.name = profile.name
        self.limits = profile.limits
        self.config = config
        self.generation = generation
        self.config_hash = config.fingerprint()
        self.created_at = time.time()
        self._cache = cache if config.cache.enabled else None
        self._llm = llm
        if callable(tools):
            self._toolbox: Toolbox = tools
        else:
            fixed = dict(tools)
            self._toolbox = lambda: fixed
        self._memory = memory
        self._observer = observer or NullObserver()
        self._tracer = tracer or spans.get_tracer()
        # Prompt, completion and tool text on spans: only when the operator turned it on.
        self._capture = capture_content
        schema = profile.response_format
        self._response_format = (
            structured.response_format(schema, profile.name) if schema is not None else None
        )
        self.approvals = ApprovalPolicy(profile.approvals)

    @property
    def tool_names(self) -> list[str]:
        """The names of the tools a run starting now is offered."""
        return list(self._toolbox())

    def tool(self, name: str) -> Tool | None:
        """Tool ``name`` as a run starting now is offered it (None: not offered now)."""
        return self._toolbox().get(name)

    async def run(
        self,
        request: RunRequest,
        *,
        mode: RunMode = "sync",
        sink: EventSink | None = None,
        guard: RunGuard | None = None,
        journal: StepJournal | None = None,
    ) -> RunResult:
        """Run the agent to an answer; raises ``RunFailedError`` with a typed error otherwise.

        ``sink`` receives ``step`` events (and ``delta`` events in ``stream`` mode); ``guard``
        may stop the run between steps (cancellation, budgets). With ``journal`` the steps it
        holds are replayed, not made again, and each new step is appended to it; a call of a
        gated tool with no decision raises ``ApprovalPending`` (the run pauses). The run is one
        ``invoke_agent`` span; the result's ``trace_id`` is its trace.
        """
        routed = policy.routed_model(request, self.config.router)
        model = request.model or routed or self.profile.model
        attributes = spans.invoke_agent_attributes(
            self.name, model, mode, request.session_id, self.generation
        )
        with self._tracer.start_as_current_span(
            f"invoke_agent {self.name}", attributes=attributes
        ) as span:
            if routed is not None:
                span.set_attribute("agent.routed", True)
            key = self._cache_key(request, model, mode)
            cached = await self._cached(key)
            if cached is not None:
                span.set_attribute("agent.cache_hit", True)
                result = cached
            else:
                toolset = {} if routed is not None else self._toolbox()
                state = _RunState(
                    started=time.monotonic(),
                    guard=guard,
                    toolset=toolset,
                    # A request's client tools are offered next to the agent's own.
                    tools=[tool.spec for tool in toolset.values()] + request.client_tools,
                    client_tools=frozenset(tool.name for tool in request.client_tools),
                    journal=journal,
                    tenant=request.tenant,
                )
                state.schema, state.response_format = self._output_format(request)
                state.tool_choice = request.tool_choice
                try:
                    result = await self._run(request, model, mode, sink, state)
                except RunFailedError as exc:
                    # The span records the exception and the error status as the error leaves.
                    span.set_attributes(
                        spans.run_failure_attributes(exc.type, exc.usage, len(exc.steps))
                    )
                    raise
                if key is not None and _cacheable(result):
                    assert self._cache is not None
                    await self._cache.put(key, result, self.config.cache.ttl_seconds)
            span.set_attributes(spans.run_result_attributes(result))
            result.trace_id = spans.trace_id_of(span)
            result.config_generation = self.generation
            result.agent = self.name
            return result

    def _output_format(
        self, request: RunRequest
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """The schema answers are checked against and the LLM's ``response_format``: the
        request's own format when it has one, else the agent's."""
        if request.output_format is not None:
            wanted = request.output_format
            return wanted.json_schema, structured.format_parameter(wanted)
        return self.profile.response_format, self._response_format

    def _cache_key(self, request: RunRequest, model: str, mode: RunMode) -> str | None:
        # Streams are not served from cache: their callers wait for deltas as they come.
        if self._cache is None or mode == "stream":
            return None
        return policy.cache_key(request, model, f"{self.config_hash}:{self.name}")

    async def _cached(self, key: str | None) -> RunResult | None:
        if key is None or self._cache is None:
            return None
        found = await self._cache.get(key)
        self._observer.cache_lookup(found is not None)
        if found is None:
            return None
        return found.model_copy(
            update={"cached": True, "usage": Usage(), "duration_ms": 0.0, "steps": []}
        )

    async def _run(
        self,
        request: RunRequest,
        model: str,
        mode: RunMode,
        sink: EventSink | None,
        state: _RunState,
    ) -> RunResult:
        limits = self.limits
        try:
            async with asyncio.timeout(limits.run_timeout_seconds):
                answer = await self._loop(request, model, state, mode, sink)
        except TimeoutError:
            cause = AgentError(
                ErrorType.RUN_TIMEOUT,
                f"run exceeded its timeout of {limits.run_timeout_seconds:g} s",
            )
            raise RunFailedError(cause, state.steps, state.usage, self.name) from None
        except RunFailedError:
            raise
        except AgentError as exc:
            raise RunFailedError(exc, state.steps, state.usage, self.name) from exc
        if request.session_id and self._memory is not None:
            turn = [
                ChatMessage(role="user", content=request.message),
                ChatMessage(role="assistant", content=answer),
            ]
            await self._memory.append(_session(request), turn, limits.memory_turns)
        added = None
        if request.keep_messages:
            added = state.messages[state.input_length :]
            if not state.pending:
                added.append(ChatMessage(role="assistant", content=answer))
        return RunResult(
            answer=answer,
            steps=state.steps,
            usage=Usage.from_tokens(state.usage),
            model=state.last_model,
            duration_ms=round((time.monotonic() - state.started) * 1000, 3),
            degraded=state.degraded,
            agent=self.name,
            output=state.output,
            tool_calls=state.pending,
            finish_reason=state.finish_reason,
            messages=added,
            sources=used_sources(answer, state.sources),
        )

    async def _loop(
        self,
        request: RunRequest,
        model: str,
        state: _RunState,
        mode: RunMode,
        sink: EventSink | None,
    ) -> str:
        limits = self.limits
        schema = state.schema
        messages = state.messages = await self._initial_messages(request, state)
        state.input_length = len(messages)
        streaming = mode == "stream" and sink is not None
        # A structured answer is streamed only once it validated (as one delta): a rejected
        # first answer must not reach the client.
        on_delta = None
        if streaming and schema is None and sink is not None:
            on_delta = _delta_forwarder(sink)
        for _ in range(limits.max_iterations):
            max_tokens = policy.remaining_output_tokens(
                state.usage, limits, self.config.model(model).max_tokens
            )
            if request.max_output_tokens is not None:
                max_tokens = min(max_tokens, request.max_output_tokens)
            await _check(state)
            completion, fresh = await self._llm_step(state, model, messages, max_tokens, on_delta)
            if fresh:  # a replayed step was emitted and charged by the attempt that made it
                await _emit(sink, state.steps[-1])
                if state.guard is not None:
                    await state.guard.charge(completion.usage)
            policy.check_token_budget(state.usage, limits)
            policy.check_run_cost(state.usage, limits)
            if not completion.tool_calls:
                answer = completion.content or ""
                if schema is None:
                    return answer
                if self._accept_structured(state, messages, answer, schema):
                    if streaming:
                        assert sink is not None
                        await sink(RunEvent(type="delta", data={"text": answer}))
                    return answer
                continue
            await self._tool_calls(state, completion, messages, sink)
            if state.pending:
                # The caller runs its own tools: the run stops here (its server tools of this
                # turn already ran) and goes on when the caller sends their results.
                return completion.content or ""
            self._degrade_if_tools_keep_failing(state, messages)
        raise AgentError(
            ErrorType.MAX_ITERATIONS,
            f"no answer after {limits.max_iterations} LLM calls (max_iterations)",
        )

    async def _tool_calls(
        self,
        state: _RunState,
        completion: LLMCompletion,
        messages: list[ChatMessage],
        sink: EventSink | None,
    ) -> None:
        """Run the server tools ``completion`` called, in order, their results appended to
        ``messages``; calls of the request's client tools are kept in ``state.pending``."""
        messages.append(
            ChatMessage(
                role="assistant", content=completion.content, tool_calls=completion.tool_calls
            )
        )
        for call in completion.tool_calls:
            if call.name in state.client_tools:
                state.pending.append(call)
                continue
            await _check(state)
            result, fresh = await self._tool_step(state, call, completion.content)
            messages.append(
                ChatMessage(role="tool", content=result, tool_call_id=call.id, name=call.name)
            )
            if fresh:  # a replayed step was emitted by the attempt that made it
                await _emit(sink, state.steps[-1])

    def _accept_structured(
        self, state: _RunState, messages: list[ChatMessage], answer: str, schema: dict[str, Any]
    ) -> bool:
        """Whether ``answer`` satisfies the agent's schema (then kept in ``state.output``).

        The first invalid answer gets one repair: the answer and what is wrong with it go back
        to the model. A second invalid answer ends the run with ``invalid_output``.
        """
        checked = structured.check(answer, schema)
        if checked.ok:
            state.output = checked.value
            return True
        if state.repaired:
            raise AgentError(
                ErrorType.INVALID_OUTPUT,
                f"the answer does not match the agent's response format after one repair: "
                f"{checked.error}",
            )
        state.repaired = True
        messages.append(ChatMessage(role="assistant", content=answer))
        messages.append(structured.repair_message(checked.error or "invalid"))
        return False

    def _degrade_if_tools_keep_failing(self, state: _RunState, messages: list[ChatMessage]) -> None:
        """After too many failed tool calls in a row, stop offering tools (once per run)."""
        limit = self.limits.max_consecutive_tool_failures
        if state.degraded or not state.tools or state.failed_tools_in_a_row < limit:
            return
        state.degraded, state.tools = True, []
        messages.append(ChatMessage(role="system", content=_DEGRADED_NOTE))

    async def _initial_messages(self, request: RunRequest, state: _RunState) -> list[ChatMessage]:
        limits = self.limits
        history: list[ChatMessage] = []
        pinned = steps_journal.pinned_history(state.journal)
        if pinned is not None:  # a resumed run: the memory it began with, not today's
            history = pinned
        elif request.history:
            history = policy.trim_history(request.history, limits.memory_token_budget)
        elif request.session_id and self._memory is not None and limits.memory_turns > 0:
            stored = await self._memory.load(_session(request), limits.memory_turns)
            history = policy.trim_history(stored, limits.memory_token_budget)
            state.history = history
        return [
            ChatMessage(role="system", content=self.profile.system_prompt),
            *history,
            ChatMessage(role="user", content=request.message),
            *request.continuation,
        ]

    async def _llm_step(
        self,
        state: _RunState,
        model: str,
        messages: list[ChatMessage],
        max_tokens: int,
        on_delta: Any,
    ) -> tuple[LLMCompletion, bool]:
        """The next LLM step: replayed from the journal (False), or called and recorded (True)."""
        entry = steps_journal.recorded(state.journal, len(state.steps), "llm")
        if entry is not None and entry.completion is not None:
            state.add_step(entry.step)
            state.usage = state.usage + entry.completion.usage
            state.last_model = entry.completion.model
            return entry.completion, False
        completion = await self._call_llm(state, model, messages, max_tokens, on_delta)
        if state.journal is not None:
            first = not state.steps[:-1]
            history = state.history if first else None
            await state.journal.append(
                steps_journal.llm_entry(state.steps[-1], completion, history or None)
            )
        return completion, True

    async def _tool_step(
        self, state: _RunState, call: ToolCall, reasoning: str | None
    ) -> tuple[str, bool]:
        """The next tool step: replayed from the journal (False), or, after its approval when
        its agent gates it, called and recorded (True)."""
        index = len(state.steps)
        entry = steps_journal.recorded(state.journal, index, "tool")
        if entry is not None:
            state.add_step(entry.step)
            if entry.approval is None or entry.approval.decision == "approve":
                state.failed_tools_in_a_row = 0 if entry.ok else state.failed_tools_in_a_row + 1
            return entry.output or "", False
        decision, arguments = self._approval(state, call, index, reasoning)
        outcome = apply_decision(decision, call.name, arguments) if decision else None
        if outcome is not None and outcome.refusal is not None:
            output, ok = outcome.refusal, False
            state.add_step(_refused_step(index, call, decision, outcome.refusal))
        else:
            key = state.journal.idempotency_key(index) if state.journal is not None else None
            chosen = outcome.arguments if outcome is not None else None
            output = await self._call_tool(state, call, chosen, key)
            ok = state.steps[-1].status == "ok"
        if state.journal is not None:
            await state.journal.append(
                steps_journal.tool_entry(state.steps[-1], call.id, output, ok, decision)
            )
        return output, True

    def _approval(
        self, state: _RunState, call: ToolCall, index: int, reasoning: str | None
    ) -> tuple[ApprovalDecision | None, dict[str, Any]]:
        """The decision on a gated call (None for a call that needs none), and the model's
        arguments; ``ApprovalPending`` when a person has not decided yet."""
        if not self.approvals.enabled or call.name not in state.toolset:
            return None, {}
        try:
            arguments = parse_arguments(call.arguments)
        except ToolError:  # the call fails as usual, with nothing to approve
            return None, {}
        decided = state.journal.decisions.get(index) if state.journal is not None else None
        if decided is not None:
            return decided, arguments
        if not self.approvals.gates(call.name, arguments):
            return None, arguments
        request = ApprovalRequest(
            step=index,
            tool_call_id=call.id,
            tool=call.name,
            arguments=arguments,
            reasoning=reasoning,
        )
        spec = self.approvals.spec
        raise ApprovalPending(request, spec.timeout_seconds, spec.on_timeout)

    async def _call_llm(
        self,
        state: _RunState,
        model: str,
        messages: list[ChatMessage],
        max_tokens: int,
        on_delta: Any,
    ) -> LLMCompletion:
        attributes = spans.chat_attributes(model, self._provider(model), max_tokens)
        with self._tracer.start_as_current_span(
            f"chat {model}", kind=trace.SpanKind.CLIENT, attributes=attributes
        ) as span:
            if self._capture:
                span.set_attribute(spans.INPUT_MESSAGES, spans.input_messages(messages))
            completion = await self._complete(
                state, model, messages, max_tokens, on_delta, span=span
            )
            span.set_attributes(spans.completion_attributes(completion))
            spans.add_attempt_events(span, completion.attempts)
            if self._capture:
                span.set_attribute(spans.OUTPUT_MESSAGES, spans.output_messages(completion))
            return completion

    def _provider(self, model: str) -> str:
        try:
            return self.config.model(model).provider
        except KeyError:
            return ""

    async def _complete(
        self,
        state: _RunState,
        model: str,
        messages: list[ChatMessage],
        max_tokens: int,
        on_delta: Any,
        *,
        span: trace.Span,
    ) -> LLMCompletion:
        """One logical LLM call, recorded as a step (a failed step when it fails)."""
        started_wall = time.time()
        started = time.monotonic()
        try:
            completion = await self._llm.complete(
                model=model,
                messages=messages,
                tools=state.tools,
                max_tokens=max_tokens,
                on_delta=on_delta,
                response_format=state.response_format,
                tool_choice=state.tool_choice,
            )
            state.tool_choice = None  # forcing applies to the first call only
        except AgentError as exc:
            attempts = getattr(exc, "attempts", ())
            self._observer.llm_failed(model, attempts)
            span.set_attribute(spans.ERROR_TYPE, exc.type)
            spans.add_attempt_events(span, attempts)
            state.add_step(
                Step(
                    index=len(state.steps),
                    kind="llm",
                    name=model,
                    started_at=started_wall,
                    duration_ms=_ms_since(started),
                    status="error",
                    error=f"{exc.type}: {exc.message}",
                )
            )
            raise
        self._observer.llm_call(completion)
        state.usage = state.usage + completion.usage
        state.last_model = completion.model
        state.finish_reason = completion.finish_reason
        state.add_step(
            Step(
                index=len(state.steps),
                kind="llm",
                name=completion.model,
                started_at=started_wall,
                duration_ms=_ms_since(started),
                output=policy.truncate(completion.content or "", _PREVIEW_CHARS) or None,
                usage=Usage.from_tokens(completion.usage),
                tool_calls=[call.name for call in completion.tool_calls],
                fallback_from=completion.requested_model if completion.fell_back else None,
            )
        )
        return completion

    async def _call_tool(
        self,
        state: _RunState,
        call: ToolCall,
        arguments: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Run one tool call (with ``arguments`` in place of the model's, when an approver
        edited them); a failure becomes a tool error message for the model."""
        # A model may name a tool that does not exist: its text never becomes a span name.
        name = call.name if call.name in state.toolset else "unknown"
        with self._tracer.start_as_current_span(
            f"execute_tool {name}", attributes=spans.tool_attributes(name, call.id)
        ) as span:
            if self._capture:
                span.set_attribute(spans.TOOL_ARGUMENTS, call.arguments)
            output = await self._invoke_tool(state, call, span, arguments, idempotency_key)
            if self._capture:
                span.set_attribute(spans.TOOL_RESULT, output)
            return output

    async def _invoke_tool(
        self,
        state: _RunState,
        call: ToolCall,
        span: trace.Span,
        arguments: dict[str, Any] | None,
        idempotency_key: str | None,
    ) -> str:
        started_wall = time.time()
        started = time.monotonic()
        tool = state.toolset.get(call.name)
        found: Retrieval | None = None
        try:
            if tool is None:
                raise ToolError(f"unknown tool {call.name!r}")
            sent = arguments if arguments is not None else parse_arguments(call.arguments)
            if isinstance(tool, RetrievalTool):
                first = len(state.sources) + 1
                found = await tool.retrieve(sent, tenant=state.tenant, first_number=first)
                output = found.text
            else:
                output = await tool.invoke(sent, idempotency_key=idempotency_key)
            ok, error = True, None
        except ToolError as exc:
            output, ok, error = f"error: {exc}", False, str(exc)
            spans.mark_error(span, "tool_error", str(exc))
        except Exception as exc:  # a tool bug must not end the run; the model hears about it
            output, ok, error = f"error: tool failed ({type(exc).__name__})", False, repr(exc)
            spans.mark_error(span, type(exc).__qualname__, f"tool failed: {exc!r}", exc)
        duration_s = time.monotonic() - started
        state.failed_tools_in_a_row = 0 if ok else state.failed_tools_in_a_row + 1
        self._observer.tool_call(call.name, ok, duration_s)
        output = policy.truncate(output, self.limits.tool_output_max_chars)
        retrieval = isinstance(tool, RetrievalTool)
        state.add_step(
            Step(
                index=len(state.steps),
                kind="retrieval" if retrieval else "tool",
                hits=(len(found.sources) if found is not None else 0) if retrieval else None,
                sources=found.sources if found is not None else [],
                name=call.name if tool is not None else "unknown",
                started_at=started_wall,
                duration_ms=round(duration_s * 1000, 3),
                status="ok" if ok else "error",
                input=policy.truncate(_shown_arguments(call, arguments), _PREVIEW_CHARS),
                output=policy.truncate(output, _PREVIEW_CHARS),
                error=error,
            )
        )
        return output


def _shown_arguments(call: ToolCall, arguments: dict[str, Any] | None) -> str:
    """The arguments a step shows: the model's text, or the ones actually sent after an
    approver edited them."""
    if arguments is None:
        return call.arguments
    return json.dumps(arguments, ensure_ascii=False)


def _refused_step(
    index: int, call: ToolCall, decision: ApprovalDecision | None, refusal: str
) -> Step:
    """The step of a gated call that was not made: rejected, or not approved in time."""
    return Step(
        index=index,
        kind="tool",
        name=call.name,
        started_at=time.time(),
        duration_ms=0.0,
        status="error",
        input=policy.truncate(call.arguments, _PREVIEW_CHARS),
        output=policy.truncate(refusal, _PREVIEW_CHARS),
        error=f"not approved ({decision.decision if decision else 'reject'})",
    )


def _cacheable(result: RunResult) -> bool:
    """Only answers the model gave from the conversation alone: a tool's output may change
    with time (the clock) or the world (HTTP tools), and a degraded answer is a stopgap."""
    return (
        not result.degraded
        and not result.tool_calls
        and all(step.kind == "llm" for step in result.steps)
    )


def _session(request: RunRequest) -> str:
    """The memory key of a session: sessions belong to a tenant."""
    return f"{request.tenant}:{request.session_id}"


async def _check(state: _RunState) -> None:
    if state.guard is not None:
        await state.guard.check()


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)


async def _emit(sink: EventSink | None, step: Step) -> None:
    if sink is not None:
        await sink(RunEvent(type="step", data=step.model_dump(mode="json")))


def _delta_forwarder(sink: EventSink) -> Any:
    async def forward(text: str) -> None:
        await sink(RunEvent(type="delta", data={"text": text}))

    return forward
