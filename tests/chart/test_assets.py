"""The chart's alert rules and dashboards are exact copies of alerts/ and dashboards/, and what
the chart renders from them equals the sources (no Helm templating applied to Prometheus or
Grafana templates), with per-alert overrides applied only where asked."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import manifests

ALERTS = manifests.REPO / "alerts"
DASHBOARDS = manifests.REPO / "dashboards"
CHART_ALERTS = manifests.CHART_DIR / "files" / "alerts"
CHART_DASHBOARDS = manifests.CHART_DIR / "files" / "dashboards"
SYNC = "run scripts/sync-chart-assets.sh"

MONITORING = {"apiVersions": ["monitoring.coreos.com/v1"]}


def _files(directory: Path, pattern: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob(pattern))}


def _source_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for path in sorted(ALERTS.glob("*.yaml")):
        groups.extend(yaml.safe_load(path.read_text(encoding="utf-8"))["groups"])
    return groups


def _rule(groups: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    for group in groups:
        for rule in group["rules"]:
            if rule.get("alert", rule.get("record")) == name:
                return dict(rule)
    return None


def _rendered_groups(extra: dict[str, Any] | None = None) -> list[dict[str, Any]] | None:
    values = manifests.deep_merge(MONITORING, {"prometheusRule": {"enabled": True}})
    rules = manifests.find(
        manifests.render(manifests.deep_merge(values, extra or {})), "PrometheusRule"
    )
    if not rules:
        return None
    (rule,) = rules
    groups: list[dict[str, Any]] = rule.obj["spec"]["groups"]
    return groups


def _alert_names() -> list[str]:
    return [r["alert"] for g in _source_groups() for r in g["rules"] if "alert" in r]


def test_alert_copies_are_exact() -> None:
    assert _files(CHART_ALERTS, "*.yaml") == _files(ALERTS, "*.yaml"), SYNC


def test_dashboard_copies_are_exact() -> None:
    assert _files(CHART_DASHBOARDS, "*.json") == _files(DASHBOARDS, "*.json"), SYNC


def test_prometheus_rule_equals_the_rule_files() -> None:
    source = _source_groups()
    rendered = _rendered_groups()
    if not source:
        assert rendered is None, "a PrometheusRule without rule files"
        return
    assert rendered == source
    # Prometheus templating reaches Prometheus untouched.
    text = json.dumps(rendered)
    assert ("{{ $labels." in json.dumps(source)) == ("{{ $labels." in text)


def test_prometheus_rule_overrides_and_disabled() -> None:
    names = _alert_names()
    if len(names) < 2:
        pytest.skip(f"needs two alerts in {ALERTS}, found {names}")
    tuned, dropped = names[0], names[1]
    overrides = {
        tuned: {
            "for": "42m",
            "severity": "info",
            "expr": "vector(1) > 0",
            "labels": {"team": "x"},
            "annotations": {"dashboard": "https://grafana.example.com/d/x"},
        }
    }
    rendered = _rendered_groups(
        {
            "prometheusRule": {
                "overrides": overrides,
                "disabled": [dropped],
                "additionalRuleLabels": {"cluster": "prod"},
            }
        }
    )
    assert rendered is not None
    assert _rule(rendered, dropped) is None
    rule = _rule(rendered, tuned)
    original = _rule(_source_groups(), tuned)
    assert rule is not None and original is not None
    assert rule["for"] == "42m"
    assert rule["expr"] == "vector(1) > 0"
    assert rule["labels"] == {**original.get("labels", {}), "severity": "info", "team": "x"} | {
        "cluster": "prod"
    }
    assert rule["annotations"] == {
        **original["annotations"],
        "dashboard": overrides[tuned]["annotations"]["dashboard"],
    }
    # Every other alert: unchanged except for the additional label.
    for name in names[2:]:
        want = copy.deepcopy(_rule(_source_groups(), name))
        assert want is not None
        want["labels"] = {**want.get("labels", {}), "cluster": "prod"}
        assert _rule(rendered, name) == want


def test_dashboards_render_one_configmap_each_verbatim() -> None:
    sources = _files(DASHBOARDS, "*.json")
    values = {"dashboards": {"enabled": True, "folder": "Agents"}}
    configmaps = manifests.find(manifests.render(values), "ConfigMap")
    dashboards = [m for m in configmaps if "grafana_dashboard" in m.obj["metadata"]["labels"]]
    assert len(dashboards) == len(sources)
    by_key = {}
    for m in dashboards:
        (key,) = m.obj["data"]
        by_key[key] = m
        assert m.obj["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert m.obj["metadata"]["annotations"]["grafana_folder"] == "Agents"
        # Kubernetes refuses ConfigMaps over 1 MiB.
        assert len(json.dumps(m.obj).encode()) < 1024 * 1024, m
    assert set(by_key) == set(sources)
    for name, data in sources.items():
        assert by_key[name].obj["data"][name] == data.decode("utf-8"), name
        json.loads(by_key[name].obj["data"][name])


def test_dashboard_label_is_configurable() -> None:
    if not list(DASHBOARDS.glob("*.json")):
        pytest.skip("no dashboards yet")
    values = {"dashboards": {"enabled": True, "label": "dashboards", "labelValue": "agents"}}
    for m in manifests.find(manifests.render(values), "ConfigMap"):
        if m.obj["metadata"]["labels"].get("app.kubernetes.io/component") == "dashboards":
            assert m.obj["metadata"]["labels"]["dashboards"] == "agents"
            assert "grafana_dashboard" not in m.obj["metadata"]["labels"]
            assert "annotations" not in m.obj["metadata"]
