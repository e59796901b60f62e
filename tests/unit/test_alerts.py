"""The alert rules in ``alerts/``: valid, unit-tested, on the metrics contract, with runbooks.

``promtool`` (Debian package ``prometheus``; ``PROMTOOL`` may name another binary) checks the
rule files and runs the rule unit tests in ``alerts/tests/``. The rest is read from the YAML:
every alert carries a severity, a summary, a description and a runbook link whose section exists
in docs/runbooks.md, names only metrics and labels of the design contract, and keeps
``namespace`` in every aggregation and join (kube-prometheus-stack groups alerts by namespace).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.contract.design_metrics import (
    ALERTING_EXTENSION_METRICS,
    CONTRACT_METRICS,
    STANDARD_METRICS,
    TARGET_LABELS,
    THIRD_PARTY_EXPORTER_METRICS,
    base_metric_name,
    parse_promql,
)

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "alerts"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
RUNBOOK_PREFIX = "https://github.com/agent-service/agent-service/blob/main/docs/runbooks.md#"
SEVERITIES = {"critical", "warning", "info"}
DURATION = re.compile(r"^(\d+[smhdwy])+$")


def rule_files() -> list[Path]:
    return sorted(ALERTS.glob("*.yaml"))


def rule_test_files() -> list[Path]:
    return sorted((ALERTS / "tests").glob("*.yaml"))


@cache
def alert_rules() -> tuple[dict[str, Any], ...]:
    rules = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            rules += [rule for rule in group["rules"] if "alert" in rule]
    return tuple(rules)


def alert_ids() -> list[str]:
    return [rule["alert"] for rule in alert_rules()]


def promtool() -> str:
    binary = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if binary is None:
        pytest.fail(
            "promtool is not installed: apt-get install prometheus (scripts/test.sh does), "
            "or set PROMTOOL to its path"
        )
    return binary


def run_promtool(*args: str) -> None:
    result = subprocess.run(
        [promtool(), *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}{result.stderr}"


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading: lowercase, punctuation dropped, - for space."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_headings() -> list[str]:
    text = RUNBOOKS.read_text(encoding="utf-8")
    return re.findall(r"^#{1,6} +(.+?) *#*$", text, flags=re.MULTILINE)


def test_there_are_rules_and_rule_tests() -> None:
    assert rule_files(), "no rule files in alerts/"
    assert rule_test_files(), "no promtool tests in alerts/tests/"


def test_promtool_check_rules() -> None:
    run_promtool("check", "rules", *(str(p.relative_to(ROOT)) for p in rule_files()))


def test_promtool_test_rules() -> None:
    run_promtool("test", "rules", *(str(p.relative_to(ROOT)) for p in rule_test_files()))


def test_rule_tests_load_every_rule_file() -> None:
    loaded: set[Path] = set()
    for path in rule_test_files():
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        loaded |= {(path.parent / name).resolve() for name in spec["rule_files"]}
    assert loaded == {p.resolve() for p in rule_files()}


def test_every_alert_is_tested_firing_and_silent() -> None:
    cases: dict[str, set[bool]] = {}
    for path in rule_test_files():
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for case in test.get("alert_rule_test", []):
                cases.setdefault(case["alertname"], set()).add(bool(case.get("exp_alerts")))
    untested = {name: cases.get(name, set()) for name in alert_ids()}
    missing = sorted(name for name, seen in untested.items() if seen != {True, False})
    assert not missing, f"need a firing and a not-firing promtool case for: {missing}"
    unknown = sorted(set(cases) - set(alert_ids()))
    assert not unknown, f"tests name alerts that do not exist: {unknown}"


def test_alert_names_are_unique_and_prefixed() -> None:
    names = alert_ids()
    assert len(names) == len(set(names))
    bad = [name for name in names if not re.fullmatch(r"AgentService[A-Z][A-Za-z0-9]+", name)]
    assert not bad


@pytest.mark.parametrize("rule", alert_rules(), ids=alert_ids())
def test_alert_has_duration_severity_and_annotations(rule: dict[str, Any]) -> None:
    assert DURATION.match(str(rule.get("for", ""))), "every alert needs a for: duration"
    assert rule.get("labels", {}).get("severity") in SEVERITIES
    annotations = rule.get("annotations", {})
    for key in ("summary", "description", "runbook_url"):
        assert str(annotations.get(key, "")).strip(), f"missing annotation {key}"
    assert annotations["runbook_url"].startswith(RUNBOOK_PREFIX)


@pytest.mark.parametrize("rule", alert_rules(), ids=alert_ids())
def test_runbook_section_exists(rule: dict[str, Any]) -> None:
    anchor = rule["annotations"]["runbook_url"].removeprefix(RUNBOOK_PREFIX)
    anchors = {github_anchor(heading) for heading in runbook_headings()}
    assert anchor in anchors, f"docs/runbooks.md has no section #{anchor}"
    assert anchor == github_anchor(rule["alert"]), "the runbook section is named after the alert"


def test_every_runbook_alert_section_has_an_alert() -> None:
    sections = {h for h in runbook_headings() if h.startswith("AgentService")}
    assert sections == set(alert_ids())


@pytest.mark.parametrize("rule", alert_rules(), ids=alert_ids())
def test_alert_uses_only_design_metrics_and_labels(rule: dict[str, Any]) -> None:
    """The contract's metrics as built, `up`, the named third-party exporter metrics (the
    bundled Redis' exporter, the history Postgres' exporter) and the extension metrics allowed
    one by one, with their labels; never a metric of neither list."""
    known = (
        CONTRACT_METRICS
        | STANDARD_METRICS
        | THIRD_PARTY_EXPORTER_METRICS
        | ALERTING_EXTENSION_METRICS
    )
    parsed = parse_promql(rule["expr"])
    in_scope = set(TARGET_LABELS) | set(parsed.created_labels)
    for selector in parsed.selectors:
        name = base_metric_name(selector.name)
        assert name in known, f"{selector.name} is not in the design metrics table"
        labels = set(known[name][1]) | TARGET_LABELS
        if selector.name.endswith("_bucket"):
            labels.add("le")
        assert set(selector.labels) <= labels, f"{selector.name} has no label {selector.labels}"
        in_scope |= labels
    for clause in parsed.clauses:
        assert set(clause.labels) <= in_scope, f"{clause.keyword} {clause.labels}: unknown label"


@pytest.mark.parametrize("rule", alert_rules(), ids=alert_ids())
def test_aggregations_and_joins_keep_namespace(rule: dict[str, Any]) -> None:
    parsed = parse_promql(rule["expr"])
    for aggregation in parsed.aggregations:
        clause = aggregation.clause
        assert clause is not None, f"{aggregation.operator} without by (namespace, ...)"
        if clause.keyword == "by":
            assert "namespace" in clause.labels, f"{aggregation.operator} by {clause.labels}"
        else:
            assert "namespace" not in clause.labels
    for clause in parsed.clauses:
        if clause.keyword == "on":
            assert "namespace" in clause.labels, f"on {clause.labels}"
        if clause.keyword in ("ignoring", "without"):
            assert "namespace" not in clause.labels


@pytest.mark.parametrize("rule", alert_rules(), ids=alert_ids())
def test_targets_are_selected_by_label_never_by_job_name(rule: dict[str, Any]) -> None:
    """`up` and exporter series are selected by app_kubernetes_io_part_of, the label the chart's
    ServiceMonitors set from its Services: a job-name regex misses every target once
    fullnameOverride renames the Services."""
    parsed = parse_promql(rule["expr"])
    for selector in parsed.selectors:
        assert "job" not in selector.labels, f"{selector.name} matched by job"
        if selector.name == "up" or selector.name in THIRD_PARTY_EXPORTER_METRICS:
            assert "app_kubernetes_io_part_of" in selector.labels, selector.name
    assert 'job=~".*agent-service' not in rule["expr"]


def test_third_party_metrics_are_allowed_in_alerts_only() -> None:
    """Exporter metrics are an explicit allowlist kept apart from the design table."""
    assert not set(THIRD_PARTY_EXPORTER_METRICS) & set(CONTRACT_METRICS)
    assert all(not name.startswith("agent_") for name in THIRD_PARTY_EXPORTER_METRICS)
    used = {
        base_metric_name(selector.name)
        for rule in alert_rules()
        for selector in parse_promql(rule["expr"]).selectors
    }
    assert set(THIRD_PARTY_EXPORTER_METRICS) <= used, "an allowed exporter metric no alert uses"


def test_github_anchor() -> None:
    assert github_anchor("AgentServiceHTTP5xxRatioHigh") == "agentservicehttp5xxratiohigh"
    assert github_anchor("How to tune: `for` and thresholds") == "how-to-tune-for-and-thresholds"
