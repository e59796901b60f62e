"""The PromQL behind the Grafana dashboards in ``dashboards/``, ready to send to Prometheus.

Used by the dashboard unit tests (syntax, metric names) and by the end-to-end test that runs
every panel query against a real Prometheus. Grafana variables are replaced by the values a
test run needs: every namespace, queue and model (``.*`` also matches series without the label,
as in a local run without Kubernetes) and fixed intervals. A variable missing from
``SUBSTITUTIONS`` raises, so a new dashboard variable cannot slip past the tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboards"

SUBSTITUTIONS: dict[str, str] = {
    "namespace": ".*",
    "queue": ".*",
    "model": ".*",
    "agent": ".*",
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
}

# $name, ${name} and ${name:format}
_VARIABLE = re.compile(r"\$(?:\{(?P<braced>\w+)(?::\w+)?\}|(?P<plain>\w+))")


def substitute(expr: str) -> str:
    """``expr`` with every Grafana variable replaced by its test value."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("plain")
        if name not in SUBSTITUTIONS:
            raise ValueError(f"unknown dashboard variable ${name} in {expr!r}")
        return SUBSTITUTIONS[name]

    return _VARIABLE.sub(replace, expr)


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def iter_dashboard_queries(path: Path | str) -> Iterator[tuple[str, str, str]]:
    """(dashboard title, panel title, expr with variables substituted) for every target."""
    dashboard = json.loads(Path(path).read_text(encoding="utf-8"))
    for panel in iter_panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if expr:
                yield dashboard["title"], panel["title"], substitute(expr)


def dashboard_files() -> list[Path]:
    """The dashboards the chart ships, in a stable order."""
    return sorted(DASHBOARD_DIR.glob("*.json"))
