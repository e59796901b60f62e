"""``MetricsObserver``: the agent loop's ``RunObserver`` port, recording LLM and tool metrics."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agent_service.domain.messages import LLMAttempt, LLMCompletion
from agent_service.observability.metrics import Metrics

UNKNOWN_TOOL = "unknown"


class MetricsObserver:
    """Counts attempts, tokens, cost, fallbacks and tool calls (configured names only)."""

    def __init__(self, metrics: Metrics, known_tool: Callable[[str], bool]) -> None:
        """``known_tool`` says whether a name is a configured tool (else it counts as
        ``unknown``): MCP tools are discovered at run time, so it is asked at each call."""
        self._m = metrics
        self._known = known_tool

    def _attempts(self, attempts: Sequence[LLMAttempt]) -> None:
        for attempt in attempts:
            self._m.llm_requests.labels(attempt.model, attempt.provider, attempt.outcome).inc()

    def llm_call(self, completion: LLMCompletion) -> None:
        m = self._m
        self._attempts(completion.attempts)
        model, provider = completion.model, completion.provider
        m.llm_duration.labels(model, provider).observe(completion.duration_ms / 1000)
        if completion.time_to_first_token_ms is not None:
            m.llm_ttft.labels(model, provider).observe(completion.time_to_first_token_ms / 1000)
        usage = completion.usage
        m.llm_tokens.labels(model, provider, "input").inc(usage.input_tokens)
        m.llm_tokens.labels(model, provider, "output").inc(usage.output_tokens)
        m.llm_cost.labels(model, provider).inc(usage.cost_usd)
        if completion.fell_back:
            m.llm_fallbacks.labels(completion.requested_model, model).inc()

    def llm_failed(self, model: str, attempts: Sequence[LLMAttempt]) -> None:
        self._attempts(attempts)

    def tool_call(self, name: str, ok: bool, duration_s: float) -> None:
        # A model may name a tool that does not exist: never let that text become a label.
        label = name if self._known(name) else UNKNOWN_TOOL
        self._m.tool_calls.labels(label, "ok" if ok else "error").inc()
        self._m.tool_duration.labels(label).observe(duration_s)

    def cache_lookup(self, hit: bool) -> None:
        self._m.cache_lookups.labels("hit" if hit else "miss").inc()
