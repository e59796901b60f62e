"""Fixtures of the chart tests, and the per-profile summary of rendered kinds printed at the end
of the run (shown without -s)."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.chart import manifests

# profile -> kind -> count, filled by test_render.py
RENDERED_KINDS: dict[str, Counter[str]] = {}


@pytest.fixture(scope="session")
def rendered_profiles() -> dict[str, list[manifests.Manifest]]:
    """Every ci/ profile rendered once per session."""
    return {name: manifests.render_profile(name) for name in manifests.profiles()}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not RENDERED_KINDS:
        return
    terminalreporter.write_sep("-", "agent-service chart: rendered kinds per profile")
    for profile, kinds in sorted(RENDERED_KINDS.items()):
        listed = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
        terminalreporter.write_line(f"{profile:>20}: {listed}")
