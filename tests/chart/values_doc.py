"""The chart's parameter documentation: `## @param` comments of values.yaml -> README table.

Used by tests/chart/test_values_doc.py (every value documented, README table current) and by
scripts/sync-chart-assets.sh, which regenerates the table:

    uv run python -m tests.chart.values_doc --write    # rewrite the README table
    uv run python -m tests.chart.values_doc --check    # exit 1 when it is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "agent-service"
VALUES = CHART / "values.yaml"
README = CHART / "README.md"
START = "<!-- parameters:start -->"
END = "<!-- parameters:end -->"

_PARAM = re.compile(r"^\s*## @param (\S+)\s+(.*)$")
_SECTION = re.compile(r"^\s*## @section (.*)$")


@dataclass(frozen=True)
class Param:
    section: str
    path: str
    description: str


def parse_params(text: str) -> list[Param]:
    """The `## @param path description` comments, in file order, with their section."""
    section = ""
    params: list[Param] = []
    for line in text.splitlines():
        if m := _SECTION.match(line):
            section = m.group(1).strip()
        elif m := _PARAM.match(line):
            params.append(Param(section, m.group(1), m.group(2).strip()))
    return params


def lookup(values: dict[str, Any], path: str) -> Any:
    """The value at a dotted path; KeyError when absent."""
    node: Any = values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def leaf_paths(values: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of every leaf: scalars, lists and empty maps."""
    paths: list[str] = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            paths.extend(leaf_paths(value, f"{path}."))
        else:
            paths.append(path)
    return paths


def undocumented(values: dict[str, Any], params: list[Param]) -> list[str]:
    """Leaves with no `@param` on themselves or on an ancestor."""
    documented = {p.path for p in params}
    missing = []
    for path in leaf_paths(values):
        parts = path.split(".")
        if not any(".".join(parts[:i]) in documented for i in range(1, len(parts) + 1)):
            missing.append(path)
    return missing


def _default(value: Any) -> str:
    text = json.dumps(value, separators=(", ", ": "))
    if len(text) > 60:
        text = text[:57] + "..."
    return "`" + text.replace("|", "\\|") + "`"


def table(values: dict[str, Any], params: list[Param]) -> str:
    """Markdown tables, one per section."""
    out: list[str] = []
    section = None
    for p in params:
        if p.section != section:
            section = p.section
            out += ["", f"### {section}", "", "| Name | Description | Default |", "|---|---|---|"]
        description = p.description.replace("|", "\\|")
        out.append(f"| `{p.path}` | {description} | {_default(lookup(values, p.path))} |")
    return "\n".join(out).strip() + "\n"


def render_readme(readme: str, values_text: str) -> str:
    """README text with the table between the markers replaced."""
    values = yaml.safe_load(values_text)
    block = f"{START}\n{table(values, parse_params(values_text))}{END}"
    if START not in readme or END not in readme:
        raise ValueError(f"{README} lacks the {START} / {END} markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return head + block + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the README table")
    mode.add_argument("--check", action="store_true", help="exit 1 when the table is stale")
    args = parser.parse_args(argv)
    current = README.read_text(encoding="utf-8")
    wanted = render_readme(current, VALUES.read_text(encoding="utf-8"))
    if args.check:
        if current != wanted:
            print(f"{README}: parameter table is stale; run scripts/sync-chart-assets.sh")
            return 1
        return 0
    if current != wanted:
        README.write_text(wanted, encoding="utf-8")
        print(f"rewrote the parameter table of {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
