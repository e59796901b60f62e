"""Rule unit tests through the real promtool, for queries the chart tests build at run time (the
rendered PrometheusRule, the prometheus-adapter rule): write the rules and the test, run
`promtool test rules`, fail with its report."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml


def run_rule_test(
    directory: Path, groups: list[dict[str, Any]], tests: list[dict[str, Any]]
) -> None:
    """Evaluate ``tests`` (promtool's unit-test cases) against ``groups`` of rules."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed (apt-get install prometheus)")
    (directory / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}), encoding="utf-8")
    spec = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    (directory / "rules.test.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    result = subprocess.run(
        [promtool, "test", "rules", "rules.test.yaml"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
