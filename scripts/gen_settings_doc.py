"""Regenerate the settings table of docs/configuration.md from the Settings model.

uv run python scripts/gen_settings_doc.py          # rewrite the table in place
uv run python scripts/gen_settings_doc.py --check  # exit 1 if the doc is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

from agent_service.settings import describe_settings

DOC = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"


def table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for env, default, description in describe_settings():
        shown = f"`{default}`" if default else ""
        rows.append(f"| `{env}` | {shown} | {description} |")
    return "\n".join(rows)


def render(text: str) -> str:
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{table()}\n{END}{tail}"


def main() -> int:
    text = DOC.read_text()
    fresh = render(text)
    if "--check" in sys.argv:
        if fresh != text:
            print(
                "docs/configuration.md is stale: run scripts/gen_settings_doc.py", file=sys.stderr
            )
            return 1
        return 0
    DOC.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
