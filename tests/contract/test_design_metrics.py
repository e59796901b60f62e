"""The PromQL reader and the copy of the design metrics table, table-driven."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.contract.design_metrics import (
    BUILT_PLANNED,
    DESIGN_METRICS,
    EXTENSION_METRICS,
    PLANNED_LABELS,
    PLANNED_METRICS,
    SERVICE_METRICS,
    Aggregation,
    Clause,
    Selector,
    base_metric_name,
    metric_names_in_promql,
    parse_design_metrics_table,
    parse_planned_metrics_table,
    parse_promql,
)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('up{job=~".*agent-service.*"} == 0', {"up"}),
        # histogram series reduce to the base name; functions and numbers are not metrics
        (
            "histogram_quantile(0.95, sum by (namespace, le) "
            "(rate(agent_task_queue_wait_seconds_bucket[5m])))",
            {"agent_task_queue_wait_seconds"},
        ),
        (
            "rate(agent_run_steps_sum[5m]) / rate(agent_run_steps_count[5m])",
            {"agent_run_steps"},
        ),
        # a non-histogram keeps its suffix, so a made-up name stays visible as unknown
        ("agent_queue_depth_count", {"agent_queue_depth_count"}),
        ("something_bucket", {"something_bucket"}),
        # label names in matchers and clauses, label values and regexes are not metrics
        (
            'sum without (pod) (agent_queue_depth{queue="agent_worker_slots", pod!~"x.*"})',
            {"agent_queue_depth"},
        ),
        (
            "sum(rate(agent_llm_tokens_total[1h:5m] offset 10m)) by (namespace, model)",
            {"agent_llm_tokens_total"},
        ),
        # vector matching keywords and their label lists
        (
            "a_metric / on (namespace, queue) group_left (model) b_metric "
            "and ignoring (pod) c_metric unless d_metric or e_metric > bool 2",
            {"a_metric", "b_metric", "c_metric", "d_metric", "e_metric"},
        ),
        ("x_metric * on (namespace) group_right y_metric", {"x_metric", "y_metric"}),
        # strings of any quoting, durations, scientific and hex numbers, @ modifiers, comments
        (
            'label_replace(m1, "dst", "$1", "src", "(.*)") + label_join(m2, `d`, \'-\', "a")'
            " + 1e3 + 0x1F + Inf + NaN + m3 @ start() + m4 @ 1609746000 # m5 is a comment",
            {"m1", "m2", "m3", "m4"},
        ),
        ("max_over_time(deriv(m6[1h30m])[10m:1m])", {"m6"}),
        # a metric selected through __name__, and aggregations named like metrics
        ('{__name__="agent_build_info", version=~".+"}', {"agent_build_info"}),
        ('{__name__=~"agent_.*"}', set()),
        ('count(topk(3, m7)) + quantile(0.9, m8) + count_values("v", m9)', {"m7", "m8", "m9"}),
        ("time() - vector(1)", set()),
        ("absent(agent_worker_slots)", {"agent_worker_slots"}),
    ],
)
def test_metric_names_in_promql(expr: str, names: set[str]) -> None:
    assert metric_names_in_promql(expr) == names


def test_parse_promql_lists_selectors_clauses_and_aggregations() -> None:
    expr = """
      sum by (namespace, from_model) (rate(agent_llm_fallbacks_total{to_model="sim"}[15m]))
      / on (namespace, from_model)
      label_replace(
        sum(rate(agent_llm_requests_total[15m])) without (pod),
        "from_model", "$1", "model", "(.*)"
      )
      > 0.05
    """
    parsed = parse_promql(expr)
    assert parsed.selectors == (
        Selector("agent_llm_fallbacks_total", ("to_model",)),
        Selector("agent_llm_requests_total", ()),
    )
    assert parsed.clauses == (
        Clause("by", ("namespace", "from_model")),
        Clause("on", ("namespace", "from_model")),
        Clause("without", ("pod",)),
    )
    assert parsed.aggregations == (
        Aggregation("sum", Clause("by", ("namespace", "from_model"))),
        Aggregation("sum", Clause("without", ("pod",))),
    )
    assert parsed.created_labels == ("from_model",)


def test_aggregation_without_clause() -> None:
    assert parse_promql("max(agent_queue_depth)").aggregations == (Aggregation("max", None),)


def test_unbalanced_expression_is_an_error() -> None:
    with pytest.raises(ValueError, match="unbalanced"):
        parse_promql("sum(rate(x[5m])")


def test_base_metric_name() -> None:
    assert base_metric_name("agent_tool_duration_seconds_bucket") == "agent_tool_duration_seconds"
    assert base_metric_name("agent_tool_calls_total") == "agent_tool_calls_total"


def test_design_table_copy_is_well_formed() -> None:
    kinds = {"counter", "gauge", "histogram"}
    assert not set(DESIGN_METRICS) & set(EXTENSION_METRICS), "an extension is in the design table"
    for name, (kind, labels) in SERVICE_METRICS.items():
        assert name.startswith("agent_"), name
        assert kind in kinds, name
        assert len(set(labels)) == len(labels), name
        assert kind != "counter" or name.endswith("_total"), name
        assert "le" not in labels and "namespace" not in labels, name


def test_parse_design_metrics_table() -> None:
    markdown = """
| metric | type | labels |
|---|---|---|
| `agent_runs_total` | counter | `mode` (`sync`, `stream`, `async`), `status` |
| `agent_config_info` | gauge (1) | `generation`, `hash` |
| `agent_worker_slots` | gauge | `queue` (runs a worker can hold at once; utilisation = a / b) |
"""
    assert parse_design_metrics_table(markdown) == {
        "agent_runs_total": ("counter", ("mode", "status")),
        "agent_config_info": ("gauge", ("generation", "hash")),
        "agent_worker_slots": ("gauge", ("queue",)),
    }


def test_copy_matches_the_design_document() -> None:
    """The design document lives outside the repository; CI points AGENT_TEST_DESIGN_DOC at it."""
    path = os.environ.get("AGENT_TEST_DESIGN_DOC")
    if not path:
        pytest.skip("AGENT_TEST_DESIGN_DOC (path to the design document) is not set")
    text = Path(path).read_text(encoding="utf-8")
    assert parse_design_metrics_table(text) == DESIGN_METRICS
    assert parse_planned_metrics_table(text) == (PLANNED_METRICS, PLANNED_LABELS)


def test_parse_planned_metrics_table() -> None:
    markdown = """
| metric | type | labels | issue |
|---|---|---|---|
| `agent_runs_total`, `agent_run_steps` | (as above) | add `agent` | named agents |
| `agent_mcp_server_up` | gauge | `server` | MCP servers |
| `agent_approvals_pending` | gauge | (none) | durable runs |
"""
    assert parse_planned_metrics_table(markdown) == (
        {
            "agent_mcp_server_up": ("gauge", ("server",)),
            "agent_approvals_pending": ("gauge", ()),
        },
        {"agent_runs_total": ("agent",), "agent_run_steps": ("agent",)},
    )


def test_built_planned_metrics_are_planned() -> None:
    assert set(PLANNED_METRICS) >= BUILT_PLANNED
    assert set(PLANNED_LABELS) <= set(DESIGN_METRICS)
