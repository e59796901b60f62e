"""The chart through the real Helm binary: scripts/chart-check.sh (run by
.github/workflows/chart.yml) lints every profile and renders it with ``helm template
--api-versions ...`` into the directory named by AGENT_TEST_HELM_RENDERS. Those renders must hold
the same objects as the Helm SDK's renders of the same profiles with the same APIs given as the
``apiVersions`` value (so ``.Capabilities.APIVersions.Has`` and the value open the same doors in
the chart's capability helper), and every object must be valid.

Without AGENT_TEST_HELM_RENDERS (no helm binary, e.g. the ci workflow) the render checks skip;
the API lists of the script are checked against this suite's in any case."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from tests.chart import manifests
from tests.chart.manifests import Manifest
from tests.chart.test_render import NO_SCHEMA

RENDERS_ENV = "AGENT_TEST_HELM_RENDERS"
SCRIPT = manifests.REPO / "scripts" / "chart-check.sh"


def _bash_array(name: str) -> tuple[str, ...]:
    match = re.search(rf"^{name}=\(([^)]*)\)$", SCRIPT.read_text(), re.M)
    assert match, f"scripts/chart-check.sh defines no {name}=(...)"
    return tuple(match.group(1).split())


def _apis(profile: str) -> tuple[str, ...]:
    example = manifests.EXAMPLE_PROFILES.get(profile)
    return example.api_versions if example else manifests.OPTIONAL_APIS


def test_chart_check_renders_with_the_suites_api_lists() -> None:
    assert _bash_array("all_apis") == manifests.OPTIONAL_APIS
    assert (
        _bash_array("production_apis") == manifests.EXAMPLE_PROFILES["k8s-production"].api_versions
    )
    assert _bash_array("kind_apis") == manifests.EXAMPLE_PROFILES["k8s-kind"].api_versions
    declared = manifests.chart().metadata["annotations"]["agent-service/optional-apis"]
    assert tuple(api.strip() for api in declared.split(",")) == manifests.OPTIONAL_APIS
    script = SCRIPT.read_text()
    for profile, example in manifests.EXAMPLE_PROFILES.items():
        assert f"check {profile} {example.path.relative_to(manifests.REPO)} " in script, profile


def _renders() -> Path:
    value = os.environ.get(RENDERS_ENV)
    if not value:
        pytest.skip(
            f"{RENDERS_ENV} is unset: run `scripts/chart-check.sh DIR` (needs helm) and set "
            f"{RENDERS_ENV}=DIR to check the real Helm binary's renders"
        )
    directory = Path(value)
    assert directory.is_dir(), f"{RENDERS_ENV}={directory} is not a directory"
    return directory


def _cli_render(directory: Path, profile: str) -> list[Manifest]:
    path = directory / f"{profile}.yaml"
    assert path.exists(), f"scripts/chart-check.sh wrote no {path.name} (profile {profile})"
    rendered = []
    # `helm template` separates documents with `---` and names each one's template.
    for text in path.read_text(encoding="utf-8").split("\n---\n"):
        source = re.search(r"^# Source: (\S+)", text, re.M)
        doc = yaml.safe_load(text)
        if doc:
            template = source.group(1).removeprefix("agent-service/") if source else "?"
            rendered.append(Manifest(template, doc))
    return rendered


@pytest.mark.parametrize("profile", manifests.profiles())
def test_helm_binary_renders_what_the_sdk_renders(profile: str) -> None:
    cli = _cli_render(_renders(), profile)
    values = manifests.profile_values(profile)
    values["apiVersions"] = sorted({*values.get("apiVersions", []), *_apis(profile)})
    sdk = manifests.render(values)
    assert sorted((m.kind, m.name) for m in cli) == sorted((m.kind, m.name) for m in sdk)
    assert {m.template for m in cli} == {m.template for m in sdk}


@pytest.mark.parametrize("profile", manifests.profiles())
def test_helm_binary_renders_are_valid(profile: str) -> None:
    cli = _cli_render(_renders(), profile)
    crds = manifests.crd_schema_dir()
    for m in cli:
        assert m.obj["metadata"].get("namespace") == manifests.NAMESPACE, m
        if manifests.is_builtin(m.api_version):
            for version in manifests.KUBE_VERSIONS:
                manifests.validate_builtin(m.obj, version)
        elif crds is not None:
            try:
                manifests.validate_crd(m.obj, crds)
            except manifests.SchemaUnavailable:
                # no CRD at hand (HTTPRoute; ExternalSecret in an older schema directory):
                # test_render.py checks their structure by hand
                assert (m.api_version, m.kind) in NO_SCHEMA, m


def test_helm_binary_honours_api_versions() -> None:
    """`--api-versions opentelemetry.io/v1beta1` (not the apiVersions value) turns the plain
    collector of the otel-collector profile into an OpenTelemetryCollector."""
    directory = _renders()
    assert "apiVersions" not in manifests.profile_values("otel-collector")
    kinds = {(m.kind, m.name) for m in _cli_render(directory, "otel-collector")}
    assert ("OpenTelemetryCollector", "agent-service-otel") in kinds
    assert ("Deployment", "agent-service-otel-collector") not in kinds
