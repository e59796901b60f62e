"""`helm lint --strict` (the real Helm engine) is clean for every value profile."""

from __future__ import annotations

import helm_python
import pytest

from tests.chart import manifests

WARNING = 2  # helm lint severities: 1 info, 2 warning, 3 error


@pytest.mark.parametrize("profile", manifests.profiles())
def test_helm_lint_strict(profile: str) -> None:
    report = helm_python.lint(
        manifests.CHART_DIR,
        manifests.profile_values(profile),
        strict=True,
        namespace=manifests.NAMESPACE,
        quiet=True,
        # The chart's kubeVersion floor: lint flags APIs deprecated or removed there.
        kube_version=f"v{manifests.KUBE_VERSIONS[0]}.0",
    )
    problems = [m for m in report["messages"] if m["severity"] >= WARNING]
    assert not problems and not report["errors"], problems or report["errors"]
    assert report["total_charts_linted"] == 1
