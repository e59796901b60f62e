"""The documentation stays true to the code: every setting is documented, links resolve."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from agent_service.settings import describe_settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_setting_is_in_the_configuration_doc() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    missing = [env for env, _, _ in describe_settings() if f"`{env}`" not in doc]
    assert not missing, f"document these in docs/configuration.md: {missing}"


def test_settings_table_is_generated_from_the_model() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_settings_doc.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_relative_links_in_markdown_resolve() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


def test_readme_quickstart_has_the_two_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "scripts/up.sh" in readme and "scripts/test.sh" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "exec scripts/test.sh" in ci
