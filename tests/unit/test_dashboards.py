"""The Grafana dashboards in ``dashboards/`` follow the chart conventions and the metrics contract.

The chart embeds these files unchanged in ConfigMaps, so what is checked here is what users get:
Grafana's schema basics, a ``datasource`` variable instead of a hard-coded data source, valid
PromQL (``promtool check rules`` on one recording rule per panel query), and only metric names
and labels from the metrics table of the design contract.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.contract.dashboard_queries import (
    SUBSTITUTIONS,
    dashboard_files,
    iter_dashboard_queries,
    iter_panels,
)
from tests.contract.design_metrics import CONTRACT_METRICS, STANDARD_METRICS

EXPECTED_UIDS = {
    "service-overview.json": "agent-service-overview",
    "queue-workers.json": "agent-service-queue-workers",
    "llm.json": "agent-service-llm",
    "tools.json": "agent-service-tools",
}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
DATASOURCE_UIDS = {"${datasource}", "$datasource"}
UNITS = {"reqps", "ops", "s", "short", "currencyUSD", "percentunit"}
PANEL_TYPES = {"timeseries", "stat"}

# The metrics of the design contract as built: name -> (type, labels), plus ``up``.
DESIGN_METRICS: dict[str, tuple[str, frozenset[str]]] = {
    name: (kind, frozenset(labels))
    for name, (kind, labels) in (CONTRACT_METRICS | STANDARD_METRICS).items()
}
# Labels Prometheus adds when it scrapes a pod; `namespace` is the one the dashboards filter on.
TARGET_LABELS = frozenset({"namespace", "job", "instance", "pod"})
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENTIFIER = re.compile(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(\s*\()?")
_SELECTOR = re.compile(r"(?<![\w:])([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)\s*\"")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"bool", "offset", "inf", "nan", "atan2"}
)


def metric_names_in_promql(expr: str) -> set[str]:
    """The series names an expression selects (histogram samples keep their suffix)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = _GROUPING.sub("", text)
    return {
        name
        for name, call in _IDENTIFIER.findall(text)
        if not call and name.lower() not in _KEYWORDS
    }


def design_metric(series: str) -> str | None:
    """The design-table metric a series name belongs to (``x_bucket`` -> histogram ``x``)."""
    if series in DESIGN_METRICS:
        return series
    for suffix in _HISTOGRAM_SUFFIXES:
        base = series.removesuffix(suffix)
        if base != series and DESIGN_METRICS.get(base, ("", None))[0] == "histogram":
            return base
    return None


def grouping_labels(expr: str) -> set[str]:
    return {
        label.strip()
        for labels in _GROUPING.findall(_STRING.sub('""', expr))
        for label in labels.split(",")
        if label.strip()
    }


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair anywhere in a JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def raw_targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in iter_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], target


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


FILES = dashboard_files()
IDS = [path.name for path in FILES]


def test_the_four_dashboards_exist_with_stable_unique_uids() -> None:
    assert sorted(IDS) == sorted(EXPECTED_UIDS)
    uids = {path.name: load(path)["uid"] for path in FILES}
    assert uids == EXPECTED_UIDS
    assert len(set(uids.values())) == len(uids)
    assert all(len(uid) <= 40 for uid in uids.values())  # Grafana's limit


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_dashboard_header(path: Path) -> None:
    assert path.stat().st_size < 256 * 1024, "keep dashboards small: ConfigMaps cap at 1 MiB"
    dashboard = load(path)
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["title"].startswith("agent-service / ")
    assert "agent-service" in dashboard["tags"]
    assert dashboard["refresh"] == "30s"
    assert dashboard["time"] == {"from": "now-1h", "to": "now"}
    assert "id" not in dashboard or dashboard["id"] is None, "an exported id breaks provisioning"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_template_variables(path: Path) -> None:
    found = variables(load(path))
    source = found["datasource"]
    assert source["type"] == "datasource"
    assert source["query"] == "prometheus"
    assert "namespace" in found
    for name, variable in found.items():
        if name == "datasource":
            continue
        assert variable["type"] == "query", name
        assert variable["datasource"] == DATASOURCE, name
        assert variable["definition"].startswith("label_values("), name
        assert variable["query"]["query"] == variable["definition"], name
        # `.*` also matches series without the label (a local run has no namespace label)
        assert variable["includeAll"] is True, name
        assert variable["allValue"] == ".*", name


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_no_hard_coded_datasource(path: Path) -> None:
    dashboard = load(path)
    for key, value in walk(dashboard):
        if key == "datasource" and isinstance(value, dict):
            assert value["uid"] in DATASOURCE_UIDS, value
            assert value["type"] == "prometheus", value
    for panel in iter_panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_panels(path: Path) -> None:
    dashboard = load(path)
    panels = list(iter_panels(dashboard["panels"]))
    assert len({panel["id"] for panel in panels}) == len(panels), "panel ids must be unique"
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["type"] in PANEL_TYPES, panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"] in UNITS, panel["title"]
        assert panel.get("description"), panel["title"]
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert ref_ids and len(set(ref_ids)) == len(ref_ids), panel["title"]


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_every_query_filters_and_groups_by_namespace(path: Path) -> None:
    for title, target in raw_targets(load(path)):
        expr = target["expr"]
        for metric, matchers in _SELECTOR.findall(expr):
            assert 'namespace=~"$namespace"' in matchers, f"{title}: {metric} lacks the filter"
        for labels in _GROUPING.findall(expr):
            assert "namespace" in labels, f"{title}: group by namespace too: {expr}"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_legends_use_grouped_labels(path: Path) -> None:
    for title, target in raw_targets(load(path)):
        legend = target["legendFormat"]
        assert legend, title
        used = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", legend))
        assert used <= grouping_labels(target["expr"]), f"{title}: {legend!r} vs {target['expr']}"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_every_variable_in_a_query_is_defined(path: Path) -> None:
    dashboard = load(path)
    defined = set(variables(dashboard))
    for title, target in raw_targets(dashboard):
        for name in re.findall(r"\$\{?(\w+)", target["expr"]):
            assert name.startswith("__") or name in defined, f"{title}: ${name}"
            assert name in SUBSTITUTIONS, f"{title}: teach dashboard_queries about ${name}"


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_only_design_metrics_and_labels(path: Path) -> None:
    dashboard = load(path)
    queries = [target["expr"] for _, target in raw_targets(dashboard)]
    queries += [v["definition"] for n, v in variables(dashboard).items() if n != "datasource"]
    for expr in queries:
        series = metric_names_in_promql(re.sub(r"label_values\((.*),\s*\w+\)", r"\1", expr))
        assert series, f"no metric found in {expr}"
        unknown = {name for name in series if design_metric(name) is None}
        assert not unknown, f"not in the design metrics table: {unknown} in {expr}"
        allowed = set(TARGET_LABELS)
        for name in series:
            allowed |= DESIGN_METRICS[design_metric(name) or name][1]
            if name.endswith("_bucket"):
                allowed.add("le")
        for metric, matchers in _SELECTOR.findall(expr):
            extra = set(_MATCHER.findall(matchers)) - allowed
            assert not extra, f"{metric} has no labels {extra}: {expr}"
        labels = grouping_labels(expr)
        labels |= set(re.findall(r"label_values\([^,]*,\s*(\w+)\)", expr))
        assert labels <= allowed, f"unknown labels {labels - allowed} in {expr}"


def test_every_design_metric_has_a_panel() -> None:
    shown = {
        design_metric(name)
        for path in FILES
        for _, _, expr in iter_dashboard_queries(path)
        for name in metric_names_in_promql(expr)
    }
    missing = set(DESIGN_METRICS) - {"up"} - shown
    assert not missing, f"no dashboard shows {sorted(missing)}"


def test_metric_name_extraction() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (namespace, le) (rate(agent_run_steps_bucket{mode="a b",'
        ' namespace=~"$namespace"}[1m]))) / on (namespace) group_left up * 1e-3'
        " or label_replace(vector(0), 'x', 'agent_nope', '', '')"
    )
    assert metric_names_in_promql(expr) == {"agent_run_steps_bucket", "up"}
    assert grouping_labels(expr) == {"namespace", "le"}


def test_queries_are_valid_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (apt-get install prometheus; make test installs it)")
    queries = [query for path in FILES for query in iter_dashboard_queries(path)]
    assert queries
    rules = [
        {"record": f"dashboard:check:{n}", "expr": expr} for n, (*_, expr) in enumerate(queries)
    ]
    rule_file = tmp_path / "dashboards.rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    listing = "\n".join(f"{n}: {d} / {p}: {e}" for n, (d, p, e) in enumerate(queries))
    assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{listing}"
    assert f"{len(rules)} rules found" in result.stdout, result.stdout
