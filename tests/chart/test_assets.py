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


def _dashboard_configmaps(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """file name -> the ConfigMap holding it."""
    configmaps = manifests.find(manifests.render(values), "ConfigMap")
    found = {}
    for m in configmaps:
        if m.obj["metadata"]["labels"].get("app.kubernetes.io/component") == "dashboards":
            (key,) = m.obj["data"]
            found[key] = m.obj
    return found


def test_dashboards_render_one_configmap_each_verbatim_but_uid_and_title() -> None:
    """Each file reaches Grafana as it is, but for its uid and title: the release's own, so
    that two releases never overwrite each other's dashboards."""
    sources = _files(DASHBOARDS, "*.json")
    values = {"dashboards": {"enabled": True, "folder": "Agents"}}
    by_key = _dashboard_configmaps(values)
    assert set(by_key) == set(sources)
    for name, data in sources.items():
        obj = by_key[name]
        assert obj["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert obj["metadata"]["annotations"]["grafana_folder"] == "Agents"
        # Kubernetes refuses ConfigMaps over 1 MiB.
        assert len(json.dumps(obj).encode()) < 1024 * 1024, name
        source = json.loads(data)
        rendered = json.loads(obj["data"][name])
        assert rendered["uid"].startswith(source["uid"] + "-") and len(rendered["uid"]) <= 40
        assert rendered["title"] == f"{source['title']} (agent-service/agent-service)"
        assert {**rendered, "uid": source["uid"], "title": source["title"]} == source, name
        # Byte for byte but for those two lines ({{label}} legends untouched by Helm).
        changed = [
            line
            for line in obj["data"][name].splitlines()
            if line not in data.decode("utf-8").splitlines()
        ]
        assert [line.split(":")[0].strip() for line in changed] == ['"title"', '"uid"'], name


def test_dashboard_uids_are_unique_per_release() -> None:
    """Another fullname or namespace, other uids and titles (Grafana's limit: 40 characters)."""
    base = {"dashboards": {"enabled": True}}
    releases = [
        base,
        base | {"fullnameOverride": "agents-b"},
        base | {"namespaceOverride": "elsewhere"},
    ]
    seen: dict[str, set[str]] = {}
    for values in releases:
        for name, obj in _dashboard_configmaps(values).items():
            dashboard = json.loads(obj["data"][name])
            seen.setdefault("uid", set()).add(dashboard["uid"])
            seen.setdefault("title", set()).add(dashboard["title"])
    count = len(releases) * len(_files(DASHBOARDS, "*.json"))
    assert len(seen["uid"]) == len(seen["title"]) == count
    assert all(len(uid) <= 40 for uid in seen["uid"])
    # And a render is stable: the same release gets the same uids every time.
    assert _dashboard_configmaps(base) == _dashboard_configmaps(base)


def test_dashboard_label_is_configurable() -> None:
    if not list(DASHBOARDS.glob("*.json")):
        pytest.skip("no dashboards yet")
    values = {"dashboards": {"enabled": True, "label": "dashboards", "labelValue": "agents"}}
    for m in manifests.find(manifests.render(values), "ConfigMap"):
        if m.obj["metadata"]["labels"].get("app.kubernetes.io/component") == "dashboards":
            assert m.obj["metadata"]["labels"]["dashboards"] == "agents"
            assert "grafana_dashboard" not in m.obj["metadata"]["labels"]
            assert "annotations" not in m.obj["metadata"]
