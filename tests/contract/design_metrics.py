"""The metrics table of the design contract, as data, and a small PromQL reader.

The tests of ``alerts/`` check that every metric an alert names is in ``DESIGN_METRICS`` with
exactly these labels; the exposure test checks that the running service exposes every metric of
``SERVICE_METRICS`` (the design table plus ``EXTENSION_METRICS``). The table is copied from
the design document (section "Metrics"); ``parse_design_metrics_table`` reads that table back so
a test can prove the copy is current where the document is available.

The PromQL reader is a tokenizer, not a parser: it knows enough of the grammar (strings, numbers
and durations, label matchers, range brackets, grouping clauses, functions and keywords) to list
the metric selectors, aggregations and vector matchings of an expression. It accepts any valid
expression; on invalid ones its answer is unspecified (``promtool check rules`` is the judge).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# name -> (type, labels), in the order of the design document's metrics table
DESIGN_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "agent_http_requests_total": ("counter", ("method", "route", "status_code")),
    "agent_http_request_duration_seconds": ("histogram", ("method", "route")),
    "agent_http_requests_in_progress": ("gauge", ("route",)),
    "agent_tasks_submitted_total": ("counter", ("queue",)),
    "agent_tasks_finished_total": ("counter", ("queue", "status")),
    "agent_task_queue_wait_seconds": ("histogram", ("queue",)),
    "agent_task_run_seconds": ("histogram", ("queue", "status")),
    "agent_task_redeliveries_total": ("counter", ("queue", "reason")),
    "agent_queue_depth": ("gauge", ("queue",)),
    "agent_queue_oldest_task_age_seconds": ("gauge", ("queue",)),
    "agent_worker_tasks_in_progress": ("gauge", ("queue",)),
    "agent_worker_slots": ("gauge", ("queue",)),
    "agent_runs_total": ("counter", ("mode", "status")),
    "agent_run_steps": ("histogram", ("mode",)),
    "agent_llm_requests_total": ("counter", ("model", "provider", "outcome")),
    "agent_llm_request_duration_seconds": ("histogram", ("model", "provider")),
    "agent_llm_time_to_first_token_seconds": ("histogram", ("model", "provider")),
    "agent_llm_tokens_total": ("counter", ("model", "provider", "type")),
    "agent_llm_cost_usd_total": ("counter", ("model", "provider")),
    "agent_llm_fallbacks_total": ("counter", ("from_model", "to_model")),
    "agent_tool_calls_total": ("counter", ("tool", "status")),
    "agent_tool_duration_seconds": ("histogram", ("tool",)),
    "agent_rate_limited_total": ("counter", ("reason",)),
    "agent_config_reloads_total": ("counter", ("result",)),
    "agent_config_info": ("gauge", ("generation", "hash")),
    "agent_build_info": ("gauge", ("version",)),
}

# Metrics the service exposes beyond the design table: features added after the contract was
# written (response cache, webhooks, history archive errors). They follow the same rules (closed
# label sets, ``_total`` counters) and are documented in docs/observability.md; the design
# document is not edited from this repository, so they are kept apart from its copy above.
EXTENSION_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "agent_cache_lookups_total": ("counter", ("result",)),
    "agent_webhook_deliveries_total": ("counter", ("outcome",)),
    "agent_history_archive_errors_total": ("counter", ("reason",)),
}

# The design document's table of metrics planned by open issues (four columns: metric, type,
# labels, issue), copied like the table above; once built they are contract too, under exactly
# these names and labels. Its first row adds a label to three metrics of the design table.
PLANNED_LABELS: dict[str, tuple[str, ...]] = {
    "agent_runs_total": ("agent",),
    "agent_run_steps": ("agent",),
    "agent_task_run_seconds": ("agent",),
}
PLANNED_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "agent_mcp_server_up": ("gauge", ("server",)),
    "agent_mcp_tools": ("gauge", ("server",)),
    "agent_approvals_total": ("counter", ("agent", "tool", "decision")),
    "agent_approvals_pending": ("gauge", ()),
    "agent_retrieval_duration_seconds": ("histogram", ("kb",)),
    "agent_retrieval_hits": ("histogram", ("kb",)),
    "agent_knowledge_chunks": ("gauge", ("kb",)),
    "agent_feedback_total": ("counter", ("agent", "score")),
    "agent_history_outbox_depth": ("gauge", ()),
    "agent_history_archive_lag_seconds": ("gauge", ()),
}
# The planned metrics the service exposes now (the rest come with their issues).
BUILT_PLANNED: frozenset[str] = frozenset(
    {
        "agent_mcp_server_up",
        "agent_mcp_tools",
        "agent_approvals_total",
        "agent_approvals_pending",
        "agent_feedback_total",
        "agent_history_outbox_depth",
        "agent_history_archive_lag_seconds",
        "agent_retrieval_duration_seconds",
        "agent_retrieval_hits",
        "agent_knowledge_chunks",
    }
)

# The contract as built: the design table with the planned labels, and the planned metrics
# built so far. Alerts and dashboards may name these (and ``up``).
CONTRACT_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    name: (kind, (*labels, *PLANNED_LABELS.get(name, ())))
    for name, (kind, labels) in DESIGN_METRICS.items()
} | {name: PLANNED_METRICS[name] for name in sorted(BUILT_PLANNED)}

# Every metric the service exposes: what the exposure test requires.
SERVICE_METRICS: dict[str, tuple[str, tuple[str, ...]]] = CONTRACT_METRICS | EXTENSION_METRICS

# Metrics that expressions may name besides the table: Prometheus' own per-target series.
STANDARD_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {"up": ("gauge", ())}

# Third-party exporter metrics, allowed in alert expressions only, named one by one: the design
# contract lists the service's own metrics (and `up`); the bundled Redis is watched through the
# oliver006/redis_exporter sidecar the chart runs next to it (redis.metrics, image pinned in
# values.yaml; names from its exporter/exporter.go and info.go), so the Redis alerts name these.
# Kept apart from the service's metrics: the exposure test never expects them from the service.
REDIS_EXPORTER_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "redis_up": ("gauge", ()),
    "redis_memory_used_bytes": ("gauge", ()),
    "redis_memory_max_bytes": ("gauge", ()),
    # INFO errorstats: one counter per error prefix (OOM: a write refused at maxmemory).
    "redis_errors_total": ("counter", ("err",)),
    # 1 ok, 0 err (INFO persistence's aof_last_write_status, aof_last_bgrewrite_status).
    "redis_aof_last_write_status": ("gauge", ()),
    "redis_aof_last_bgrewrite_status": ("gauge", ()),
}
# The run history's Postgres is watched through the postgres_exporter the chart can run next to
# it (history.postgresExporter; prometheus-community/postgres_exporter, collector/pg_up).
POSTGRES_EXPORTER_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pg_up": ("gauge", ()),
}
THIRD_PARTY_EXPORTER_METRICS: dict[str, tuple[str, tuple[str, ...]]] = (
    REDIS_EXPORTER_METRICS | POSTGRES_EXPORTER_METRICS
)

# Extension metrics an alert may name, each with its reason (the rest stay out of alerts, as the
# design contract says): runs dropped from the history (Postgres refused them, their record was
# unreadable, or it expired from Redis before it could be archived) show in no contract metric.
ALERTING_EXTENSION_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "agent_history_archive_errors_total": EXTENSION_METRICS["agent_history_archive_errors_total"],
}

# Labels Prometheus attaches to every series scraped through a ServiceMonitor or PodMonitor
# (prometheus-operator adds namespace, service, pod, container, endpoint and job), plus the two
# the chart's ServiceMonitors copy from its Services (targetLabels): the alerts select the
# service by them, so that fullnameOverride (which renames jobs) cannot blind them.
TARGET_LABELS: frozenset[str] = frozenset(
    {
        "namespace",
        "service",
        "pod",
        "container",
        "endpoint",
        "job",
        "instance",
        "app_kubernetes_io_part_of",
        "app_kubernetes_io_component",
    }
)

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

AGGREGATION_OPERATORS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)
_CLAUSES = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<number>(?:0[xX][0-9a-fA-F]+|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)\w*)
    | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=,(){}\[\]@:])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Selector:
    """A vector selector: the metric name as written and the label names it matches on."""

    name: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Clause:
    """A grouping or matching clause: ``by``/``without`` of an aggregation, ``on``/``ignoring``
    of a binary operation, or ``group_left``/``group_right``; ``labels`` as listed."""

    keyword: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Aggregation:
    """An aggregation operator and its ``by``/``without`` clause, ``None`` when it has none."""

    operator: str
    clause: Clause | None


@dataclass(frozen=True)
class PromQL:
    """What the tokenizer found in one expression."""

    selectors: tuple[Selector, ...]
    clauses: tuple[Clause, ...]
    aggregations: tuple[Aggregation, ...]
    created_labels: tuple[str, ...]  # destination labels of label_replace and label_join


def _tokens(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise ValueError(f"cannot tokenize PromQL at {pos}: {expr[pos : pos + 20]!r}")
        pos = match.end()
        kind = match.lastgroup
        assert kind is not None
        if kind != "space":
            tokens.append((kind, match.group()))
    return tokens


def _closing(tokens: list[tuple[str, str]], start: int, open_: str, close: str) -> int:
    """Index of the token closing the bracket opened at ``start``."""
    depth = 0
    for index in range(start, len(tokens)):
        text = tokens[index][1]
        if text == open_:
            depth += 1
        elif text == close:
            depth -= 1
            if depth == 0:
                return index
    raise ValueError(f"unbalanced {open_!r} in PromQL")


def _label_list(tokens: list[tuple[str, str]], start: int) -> tuple[tuple[str, ...], int]:
    """The labels of ``( a, b )`` opening at ``start``, and the index after it."""
    end = _closing(tokens, start, "(", ")")
    labels = tuple(text for kind, text in tokens[start + 1 : end] if kind in ("ident", "string"))
    return tuple(label.strip("\"'`") for label in labels), end + 1


def _matchers(tokens: list[tuple[str, str]], start: int) -> tuple[list[tuple[str, str, str]], int]:
    """The ``(label, operator, value)`` matchers of ``{...}`` opening at ``start``."""
    end = _closing(tokens, start, "{", "}")
    found: list[tuple[str, str, str]] = []
    body = tokens[start + 1 : end]
    for index in range(len(body) - 2):
        (kind, label), (_, operator), (value_kind, value) = body[index : index + 3]
        if kind == "ident" and operator in ("=", "!=", "=~", "!~") and value_kind == "string":
            found.append((label, operator, value[1:-1]))
    return found, end + 1


def _clause_at(tokens: list[tuple[str, str]], index: int) -> tuple[Clause | None, int]:
    """A ``by (...)``-style clause starting at ``index`` (or ``None``), and the index after."""
    if index < len(tokens) and tokens[index][1].lower() in _CLAUSES:
        keyword = tokens[index][1].lower()
        if index + 1 < len(tokens) and tokens[index + 1][1] == "(":
            labels, after = _label_list(tokens, index + 1)
            return Clause(keyword, labels), after
        return Clause(keyword, ()), index + 1
    return None, index


def _aggregation_at(tokens: list[tuple[str, str]], index: int) -> Aggregation:
    """The aggregation whose operator is at ``index``, with its clause in either position."""
    clause, _ = _clause_at(tokens, index + 1)  # prefix form: sum by (a) (...)
    if clause is None:  # suffix form: sum (...) by (a)
        clause, _ = _clause_at(tokens, _closing(tokens, index + 1, "(", ")") + 1)
    return Aggregation(tokens[index][1].lower(), clause)


def _created_label(tokens: list[tuple[str, str]], index: int) -> str:
    """The destination label of the ``label_replace(v, "dst", ...)`` call at ``index``."""
    depth = 0
    for kind, text in tokens[index + 1 : _closing(tokens, index + 1, "(", ")")]:
        depth += (text in "({[") - (text in ")}]") if kind == "op" else 0
        if kind == "string" and depth == 1:
            return text[1:-1]
    return ""


def _selector_at(tokens: list[tuple[str, str]], index: int) -> tuple[Selector, int]:
    """The selector ``name{...}``, ``name`` or ``{...}`` at ``index``, and the index after it."""
    name = ""
    if tokens[index][0] == "ident":
        name = tokens[index][1]
        index += 1
    matchers: list[tuple[str, str, str]] = []
    if index < len(tokens) and tokens[index][1] == "{":
        matchers, index = _matchers(tokens, index)
    for label, operator, value in matchers:
        if label == "__name__" and operator == "=":
            name = value
    labels = tuple(label for label, _, _ in matchers if label != "__name__")
    return Selector(name, labels), index


def parse_promql(expr: str) -> PromQL:
    """List the selectors, clauses and aggregations of a PromQL expression."""
    tokens = _tokens(expr)
    selectors: list[Selector] = []
    clauses: list[Clause] = []
    aggregations: list[Aggregation] = []
    created: list[str] = []
    index = 0
    while index < len(tokens):
        kind, text = tokens[index]
        word = text.lower() if kind == "ident" else ""
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if text == "[":  # a range or a subquery: durations only
            index = _closing(tokens, index, "[", "]") + 1
        elif word in _CLAUSES:
            clause, index = _clause_at(tokens, index)
            assert clause is not None
            clauses.append(clause)
        elif word in AGGREGATION_OPERATORS and following in ("(", "by", "without"):
            aggregations.append(_aggregation_at(tokens, index))
            index += 1  # its clause is recorded when the loop reaches it
        elif word and (following == "(" or word in _KEYWORDS):
            if word in ("label_replace", "label_join") and following == "(":
                created.append(_created_label(tokens, index))
            index += 1  # a function or a keyword
        elif word or text == "{":
            selector, index = _selector_at(tokens, index)
            selectors.append(selector)
        else:
            index += 1
    return PromQL(tuple(selectors), tuple(clauses), tuple(aggregations), tuple(created))


def base_metric_name(name: str) -> str:
    """``x_bucket``/``x_sum``/``x_count`` of a service histogram ``x`` -> ``x``; else ``name``."""
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and SERVICE_METRICS.get(base, ("",))[0] == "histogram":
            return base
    return name


def metric_names_in_promql(expr: str) -> set[str]:
    """The metric names an expression selects, histogram series reduced to their base name.

    >>> sorted(metric_names_in_promql('sum by (le) (rate(agent_run_steps_bucket{mode="x"}[5m]))'))
    ['agent_run_steps']
    """
    return {base_metric_name(s.name) for s in parse_promql(expr).selectors if s.name}


def parse_planned_metrics_table(
    markdown: str,
) -> tuple[dict[str, tuple[str, tuple[str, ...]]], dict[str, tuple[str, ...]]]:
    """Read the ``| metric | type | labels | issue |`` table of the design document: the new
    metrics, and the labels its ``(as above)`` rows add to metrics of the main table."""
    metrics: dict[str, tuple[str, tuple[str, ...]]] = {}
    added: dict[str, tuple[str, ...]] = {}
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`agent_"):
            continue
        names = re.findall(r"`(agent_\w+)`", cells[0])
        labels = tuple(re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", cells[2])))
        if cells[1].startswith("(as above)"):
            added.update(dict.fromkeys(names, labels))
        else:
            metrics.update(dict.fromkeys(names, (cells[1].split()[0], labels)))
    return metrics, added


def parse_design_metrics_table(markdown: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Read the ``| metric | type | labels |`` table of the design document."""
    table: dict[str, tuple[str, tuple[str, ...]]] = {}
    for line in markdown.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not re.fullmatch(r"`agent_\w+`", cells[0]):
            continue
        kind = cells[1].split()[0]
        # parentheses hold explanations and example values, not label names
        labels = re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", cells[2]))
        table[cells[0].strip("`")] = (kind, tuple(labels))
    return table
