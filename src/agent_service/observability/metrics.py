"""Every Prometheus metric of the service, declared in one class over an injected registry.

Names, labels and buckets follow the metrics table of the design contract; alerts and
dashboards use only these names (a contract test checks it). Label values come from closed
sets: route templates, configured model and tool names, fixed outcome words.

Multiprocess: when ``PROMETHEUS_MULTIPROC_DIR`` is set (gunicorn with several workers), values
live in per-process files and a scrape sums them (``exposition.scrape_registry``); gauges carry
a ``multiprocess_mode`` so dead processes drop out.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

# Milliseconds to minutes: HTTP, queue waits, LLM calls and whole runs share one scale.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
    300.0, 600.0,
)  # fmt: skip
STEP_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50, 100)
HIT_BUCKETS = (0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50)
LLM_OUTCOMES = (
    "ok", "rate_limited", "server_error", "timeout", "connection_error", "bad_request",
    "other_error",
)  # fmt: skip
ARCHIVE_ERROR_REASONS = ("database", "outbox", "rejected", "unreadable", "expired")
"""Why archiving failed: Postgres unavailable, the Redis outbox unreachable; or a run dropped:
refused by Postgres, its record unreadable, or expired from Redis before it was archived."""
FEEDBACK_SCORES = ("1", "-1")
APPROVAL_DECISIONS = ("approve", "reject", "timeout")
RATE_LIMIT_REASONS = (
    "requests_per_minute", "tokens_per_minute", "daily_tokens", "daily_usd", "overloaded",
)  # fmt: skip


class _Disabled:
    """Stands in for every metric when metrics are off: each operation does nothing."""

    def labels(self, *_: object, **__: object) -> _Disabled:
        return self

    def inc(self, *_: object, **__: object) -> None:
        return None

    dec = set = observe = remove = inc

    def clear(self) -> None:
        return None


class Metrics:
    """Owns every metric; one instance per process, built by the entry point.

    ``enabled=False`` (``AGENT_METRICS_ENABLED=false``) replaces every metric by a no-op: only
    to measure what metrics cost (``bench/observability_overhead.py``); nothing is exported.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, enabled: bool = True) -> None:
        r = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.registry = r
        self.enabled = enabled
        self._config_labels: tuple[str, str] | None = None
        self.http_requests = Counter(
            "agent_http_requests", "HTTP requests answered.",
            ["method", "route", "status_code"], registry=r,
        )  # fmt: skip
        self.http_duration = Histogram(
            "agent_http_request_duration_seconds", "HTTP request duration.",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.http_in_progress = Gauge(
            "agent_http_requests_in_progress", "HTTP requests being served.",
            ["route"], multiprocess_mode="livesum", registry=r,
        )  # fmt: skip
        self.tasks_submitted = Counter(
            "agent_tasks_submitted", "Tasks accepted onto a queue.", ["queue"], registry=r
        )
        self.tasks_finished = Counter(
            "agent_tasks_finished", "Tasks that reached a terminal state.",
            ["queue", "status"], registry=r,
        )  # fmt: skip
        self.task_queue_wait = Histogram(
            "agent_task_queue_wait_seconds", "Time from submission to the first start of a task.",
            ["queue"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.task_run = Histogram(
            "agent_task_run_seconds", "Time a task's last attempt ran.",
            ["queue", "status", "agent"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.task_redeliveries = Counter(
            "agent_task_redeliveries", "Task deliveries after the first.",
            ["queue", "reason"], registry=r,
        )  # fmt: skip
        self.worker_in_progress = Gauge(
            "agent_worker_tasks_in_progress", "Runs a worker is executing.",
            ["queue"], multiprocess_mode="livesum", registry=r,
        )  # fmt: skip
        self.worker_slots = Gauge(
            "agent_worker_slots", "Runs a worker can hold at once.",
            ["queue"], multiprocess_mode="livesum", registry=r,
        )  # fmt: skip
        self.runs = Counter(
            "agent_runs", "Agent runs by mode, outcome and agent.",
            ["mode", "status", "agent"], registry=r,
        )  # fmt: skip
        self.run_steps = Histogram(
            "agent_run_steps", "LLM and tool steps per run.",
            ["mode", "agent"], buckets=STEP_BUCKETS, registry=r,
        )  # fmt: skip
        self.llm_requests = Counter(
            "agent_llm_requests", "LLM call attempts by outcome.",
            ["model", "provider", "outcome"], registry=r,
        )  # fmt: skip
        self.llm_duration = Histogram(
            "agent_llm_request_duration_seconds", "Duration of successful LLM calls.",
            ["model", "provider"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.llm_ttft = Histogram(
            "agent_llm_time_to_first_token_seconds", "Time to the first streamed token.",
            ["model", "provider"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.llm_tokens = Counter(
            "agent_llm_tokens", "Tokens used by LLM calls.",
            ["model", "provider", "type"], registry=r,
        )  # fmt: skip
        self.llm_cost = Counter(
            "agent_llm_cost_usd", "Cost of LLM calls in USD (configured prices).",
            ["model", "provider"], registry=r,
        )  # fmt: skip
        self.llm_fallbacks = Counter(
            "agent_llm_fallbacks", "LLM calls answered by a fallback model.",
            ["from_model", "to_model"], registry=r,
        )  # fmt: skip
        self.tool_calls = Counter(
            "agent_tool_calls", "Tool calls by outcome.", ["tool", "status"], registry=r
        )
        self.tool_duration = Histogram(
            "agent_tool_duration_seconds", "Tool call duration.",
            ["tool"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.rate_limited = Counter(
            "agent_rate_limited", "Requests refused by rate limits or budgets.",
            ["reason"], registry=r,
        )  # fmt: skip
        self.cache_lookups = Counter(
            "agent_cache_lookups", "Response-cache lookups by result.", ["result"], registry=r
        )
        self.webhook_deliveries = Counter(
            "agent_webhook_deliveries", "Webhook delivery attempts by outcome.",
            ["outcome"], registry=r,
        )  # fmt: skip
        self.history_outbox_depth = Gauge(
            "agent_history_outbox_depth", "Finished runs waiting on the outbox to be archived.",
            multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        self.history_archive_lag = Gauge(
            "agent_history_archive_lag_seconds",
            "Age of the oldest finished run waiting to be archived (0 when none waits).",
            multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        self.history_archive_errors = Counter(
            "agent_history_archive_errors", "Archive attempts that failed, by reason.",
            ["reason"], registry=r,
        )  # fmt: skip
        self.feedback = Counter(
            "agent_feedback", "Feedback given on runs, by agent and score (1 or -1).",
            ["agent", "score"], registry=r,
        )  # fmt: skip
        self.approvals = Counter(
            "agent_approvals", "Decisions on gated tool calls: approve, reject or timeout.",
            ["agent", "tool", "decision"], registry=r,
        )  # fmt: skip
        # Every worker's sweeper reads the same count from Redis: the largest is the freshest.
        self.approvals_pending = Gauge(
            "agent_approvals_pending", "Tool calls waiting for a person's decision.",
            multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        self.retrieval_duration = Histogram(
            "agent_retrieval_duration_seconds",
            "Knowledge base searches: embedding the question, querying, reading versions.",
            ["kb"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.retrieval_hits = Histogram(
            "agent_retrieval_hits", "Chunks a knowledge base search returned.",
            ["kb"], buckets=HIT_BUCKETS, registry=r,
        )  # fmt: skip
        # The store's own count, set by whichever process changed it last: "mostrecent" keeps
        # that value when the process exits, where a sum over processes would count it twice.
        self.knowledge_chunks = Gauge(
            "agent_knowledge_chunks", "Chunks stored in a knowledge base (all tenants).",
            ["kb"], multiprocess_mode="mostrecent", registry=r,
        )  # fmt: skip
        self.config_reloads = Counter(
            "agent_config_reloads", "Agent config reloads by result.", ["result"], registry=r
        )
        self.config_info = Gauge(
            "agent_config_info", "The agent config in force (value 1).",
            ["generation", "hash"], multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        # Per process: each holds its own sessions. Several processes (gunicorn workers)
        # report the worst view of a server's health and the largest tool count.
        self.mcp_server_up_gauge = Gauge(
            "agent_mcp_server_up", "Whether an MCP tool server answers (1) or not (0).",
            ["server"], multiprocess_mode="livemin", registry=r,
        )  # fmt: skip
        self.mcp_tools_gauge = Gauge(
            "agent_mcp_tools", "Tools an MCP server offers to the agent.",
            ["server"], multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        self.build_info = Gauge(
            "agent_build_info", "Build of the running service (value 1).",
            ["version"], multiprocess_mode="livemax", registry=r,
        )  # fmt: skip
        if not enabled:
            for name, value in list(vars(self).items()):
                if isinstance(value, MetricWrapperBase):
                    r.unregister(value)
                    setattr(self, name, _Disabled())

    def prime(
        self,
        queue: str,
        models: Iterable[tuple[str, str]],
        tools: Iterable[str],
        fallbacks: Iterable[tuple[str, str]] = (),
        *,
        agents: Iterable[str] = (),
        gated_tools: Iterable[tuple[str, str]] = (),
        feedback: bool = False,
    ) -> None:
        """Create the zero series of known label sets, so dashboards and alerts see 0, not
        absent data, before the first event (``models``: (name, provider) pairs;
        ``fallbacks``: (from, to) pairs of the config; ``agents``: its agent names;
        ``gated_tools``: (agent, tool) pairs whose calls need approval; ``feedback``: whether
        runs take feedback, i.e. history is on)."""
        for status in ("succeeded", "failed", "cancelled"):
            self.tasks_finished.labels(queue, status)
        self.tasks_submitted.labels(queue)
        self.task_redeliveries.labels(queue, "worker_lost")
        for agent in agents:
            for mode in ("sync", "stream", "async"):
                self.runs.labels(mode, "succeeded", agent)
                self.runs.labels(mode, "failed", agent)
            for score in FEEDBACK_SCORES if feedback else ():
                self.feedback.labels(agent, score)
        for model, provider in models:
            for outcome in LLM_OUTCOMES:
                self.llm_requests.labels(model, provider, outcome)
            self.llm_tokens.labels(model, provider, "input")
            self.llm_tokens.labels(model, provider, "output")
            self.llm_cost.labels(model, provider)
        for source, target in fallbacks:
            self.llm_fallbacks.labels(source, target)
        for tool in tools:
            self.tool_calls.labels(tool, "ok")
            self.tool_calls.labels(tool, "error")
        for agent, tool in gated_tools:
            for decision in APPROVAL_DECISIONS:
                self.approvals.labels(agent, tool, decision)
        self._prime_closed_sets()

    def _prime_closed_sets(self) -> None:
        """The series whose labels are fixed words, not configured names."""
        closed: list[tuple[Any, Iterable[str]]] = [
            (self.rate_limited, RATE_LIMIT_REASONS),
            (self.config_reloads, ("applied", "rejected")),
            (self.cache_lookups, ("hit", "miss")),
            (self.webhook_deliveries, ("delivered", "retry", "dead")),
            (self.history_archive_errors, ARCHIVE_ERROR_REASONS),
        ]
        for metric, values in closed:
            for value in values:
                metric.labels(value)

    def history_outbox(self, depth: int, lag_seconds: float) -> None:
        """The outbox as the history drainer last saw it."""
        self.history_outbox_depth.set(depth)
        self.history_archive_lag.set(lag_seconds)

    def history_archive_failed(self, reason: str, count: int = 1) -> None:
        """An archive attempt failed (``database``, ``outbox``), or ``count`` runs were dropped
        (``rejected``, ``unreadable``, ``expired``): one of ``ARCHIVE_ERROR_REASONS``."""
        self.history_archive_errors.labels(reason).inc(count)

    def feedback_given(self, agent: str, score: int) -> None:
        """A person scored a run of ``agent`` (a configured name) ``score`` (-1 or 1)."""
        self.feedback.labels(agent, str(score)).inc()

    def approval_decided(self, agent: str, tool: str, decision: str) -> None:
        """A gated call of ``tool`` by ``agent`` (configured names) was decided: ``approve``,
        ``reject`` (a person) or ``timeout`` (nobody, in time)."""
        self.approvals.labels(agent, tool, decision).inc()

    def approvals_waiting(self, count: int) -> None:
        """Tool calls waiting for a decision now (every tenant), as a sweep counted them."""
        self.approvals_pending.set(count)

    def run_finished(self, mode: str, status: str, steps: int, agent: str) -> None:
        """A run of ``agent`` (a configured name) ended with ``status`` after ``steps``."""
        self.runs.labels(mode, status, agent).inc()
        self.run_steps.labels(mode, agent).observe(steps)

    def task_finished(
        self, queue: str, status: str, seconds: float, steps: int, agent: str
    ) -> None:
        """A queued run of ``agent`` ended: its task, its last attempt's run time, the run."""
        self.tasks_finished.labels(queue, status).inc()
        self.task_run.labels(queue, status, agent).observe(seconds)
        self.run_finished("async", status, steps, agent)

    def config_reload(self, result: str) -> None:
        """A config reload ended ``applied`` or ``rejected``."""
        self.config_reloads.labels(result).inc()

    def set_config(self, generation: int, config_hash: str) -> None:
        """Record the config in force: its series at 1, the previous one at 0.

        The previous series is set to 0 rather than removed: in multiprocess mode a removed
        label set would keep its last value (1) in this process's file.
        """
        labels = (str(generation), config_hash)
        previous = self._config_labels
        if previous is not None and previous != labels:
            self.config_info.labels(*previous).set(0)
        self.config_info.labels(*labels).set(1)
        self._config_labels = labels

    def mcp_server_up(self, server: str, up: bool) -> None:
        """An MCP server (a configured name) answered, or stopped answering."""
        self.mcp_server_up_gauge.labels(server).set(1 if up else 0)

    def mcp_tools(self, server: str, count: int) -> None:
        """An MCP server's tool list was read: ``count`` tools are offered."""
        self.mcp_tools_gauge.labels(server).set(count)

    def mcp_server_removed(self, server: str) -> None:
        """An MCP server left the config: its series go away (with several processes, the
        multiprocess files keep a removed series until the process restarts)."""
        for gauge in (self.mcp_server_up_gauge, self.mcp_tools_gauge):
            with suppress(KeyError):
                gauge.remove(server)

    def retrieval_finished(self, kb: str, seconds: float, hits: int) -> None:
        """One search of knowledge base ``kb`` took ``seconds`` and returned ``hits`` chunks."""
        self.retrieval_duration.labels(kb).observe(seconds)
        self.retrieval_hits.labels(kb).observe(hits)

    def knowledge_chunks_counted(self, kb: str, chunks: int) -> None:
        """Knowledge base ``kb`` now holds ``chunks`` chunks (after an ingestion or deletion)."""
        self.knowledge_chunks.labels(kb).set(chunks)

    def prime_knowledge(self, kbs: Iterable[str]) -> None:
        """Zero series of the retrieval histograms for the configured knowledge bases."""
        for kb in kbs:
            self.retrieval_duration.labels(kb)
            self.retrieval_hits.labels(kb)
