"""Every value profile in charts/agent-service/ci/ renders with the real Helm engine, and every
rendered object is valid: built-in kinds against the Kubernetes schemas (strict), custom
resources against their CRDs (the chart's own crds/, and AGENT_TEST_CRD_SCHEMAS for the rest)."""

from __future__ import annotations

import copy
import hashlib
from collections import Counter

import pytest
import yaml

from tests.chart import manifests
from tests.chart.conftest import RENDERED_KINDS
from tests.chart.manifests import Manifest, SchemaUnavailable

PROFILES = manifests.profiles()

# Kinds with no schema available offline, and what stands in for one. Anything else without a
# schema fails the test.
NO_SCHEMA = {
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): (
        "the Gateway API CRDs are not among the CRD schemas; structure checked by hand"
    ),
    # scripts/fetch-test-schemas.sh fetches its CRD; a schema directory without it (an older
    # copy) falls back to the checks of test_externalsecret_structure.
    ("external-secrets.io/v1", "ExternalSecret"): "structure checked by hand",
    # CloudNativePG's CRDs are not among the pinned schemas (scripts/fetch-test-schemas.sh).
    ("postgresql.cnpg.io/v1", "Cluster"): "structure checked by hand (test_history.py)",
}


def test_at_least_four_profiles() -> None:
    assert {"default", "production", "hpa", "minimal"} <= set(PROFILES), PROFILES


@pytest.mark.parametrize("profile", PROFILES)
def test_profile_renders(profile: str, rendered_profiles: dict[str, list[Manifest]]) -> None:
    rendered = rendered_profiles[profile]
    RENDERED_KINDS[profile] = Counter(m.kind for m in rendered)
    assert manifests.find(rendered, "Deployment"), "no Deployment rendered"
    names = [(m.kind, m.name) for m in rendered]
    duplicates = [item for item, count in Counter(names).items() if count > 1]
    assert not duplicates, f"objects rendered twice: {duplicates}"
    for m in rendered:
        assert len(m.name) <= 63, f"{m}: name longer than 63 characters"
        assert m.obj["metadata"].get("namespace") == manifests.NAMESPACE, f"{m}: namespace"


@pytest.mark.parametrize("profile", PROFILES)
def test_builtin_objects_are_valid(
    profile: str, rendered_profiles: dict[str, list[Manifest]]
) -> None:
    checked = 0
    for m in rendered_profiles[profile]:
        if not manifests.is_builtin(m.api_version):
            continue
        for version in manifests.KUBE_VERSIONS:
            manifests.validate_builtin(m.obj, version)
        checked += 1
    assert checked


@pytest.mark.parametrize("profile", PROFILES)
def test_custom_resources_match_their_crds(
    profile: str, rendered_profiles: dict[str, list[Manifest]]
) -> None:
    custom = [m for m in rendered_profiles[profile] if not manifests.is_builtin(m.api_version)]
    if not custom:
        return
    directory = manifests.crd_schema_dir()
    assert directory is None or directory.is_dir(), (
        f"{manifests.CRD_SCHEMAS_ENV}={directory} is not a directory"
    )
    unchecked = []
    for m in custom:
        if directory is None and not manifests.has_chart_crd(m.obj):
            unchecked.append(m)
            continue
        try:
            manifests.validate_crd(m.obj, directory)
        except SchemaUnavailable:
            if (m.api_version, m.kind) not in NO_SCHEMA:
                raise
    if unchecked:
        pytest.skip(
            f"{manifests.CRD_SCHEMAS_ENV} is not set (a directory of CustomResourceDefinition "
            f"files: prometheus-operator, KEDA); {len(unchecked)} custom resources not validated"
        )


def test_httproute_structure(rendered_profiles: dict[str, list[Manifest]]) -> None:
    """HTTPRoute has no schema offline: check the fields the chart writes."""
    routes = [m for r in rendered_profiles.values() for m in manifests.find(r, "HTTPRoute")]
    assert routes, "no profile renders an HTTPRoute"
    for m in routes:
        spec = m.obj["spec"]
        assert set(spec) <= {"parentRefs", "hostnames", "rules"}
        assert spec["parentRefs"] and all("name" in ref for ref in spec["parentRefs"])
        for rule in spec["rules"]:
            assert set(rule) <= {"matches", "backendRefs", "timeouts", "filters"}
            assert rule["backendRefs"] == [{"name": "agent-service-api", "port": 8000}]


def test_crd_validation_rejects_a_bad_object() -> None:
    """The CRD validator is strict: an unknown field and a wrong type are both reported."""
    directory = manifests.crd_schema_dir()
    if directory is None:
        pytest.skip(f"{manifests.CRD_SCHEMAS_ENV} is not set")
    bad = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "x", "namespace": "y"},
        "spec": {
            "scaleTargetRef": {"name": "x"},
            "minReplicaCount": "one",
            "triggers": [{"type": "redis", "metadata": {"listName": "q"}, "unknownField": 1}],
        },
    }
    with pytest.raises(AssertionError, match=r"minReplicaCount|unknownField"):
        manifests.validate_crd(bad, directory)


def test_agentconfig_validation_rejects_a_bad_object() -> None:
    """The chart's own CRD is found without AGENT_TEST_CRD_SCHEMAS, strictly, with OpenAPI v3.0's
    boolean exclusiveMinimum read as JSON Schema's (timeoutSeconds > 0: 0.5 passes, 0 fails;
    taken literally, `exclusiveMinimum: true` would be a bound of 1)."""
    good = {
        "apiVersion": "agent-service.dev/v1alpha1",
        "kind": "AgentConfig",
        "metadata": {"name": "x", "namespace": "y"},
        "spec": {
            "defaultModel": "m",
            "models": [{"name": "m", "model": "openai/m", "timeoutSeconds": 0.5}],
        },
    }
    manifests.validate_crd(good)
    for edit, where in [
        ({"timeoutSeconds": 0}, "timeoutSeconds"),
        ({"unknownField": 1}, "unknown"),
    ]:
        bad = copy.deepcopy(good)
        bad["spec"]["models"][0].update(edit)
        with pytest.raises(AssertionError, match=where):
            manifests.validate_crd(bad)


def test_externalsecret_structure(rendered_profiles: dict[str, list[Manifest]]) -> None:
    """ExternalSecret without its CRD at hand: the fields the chart writes, and the helm test
    key's template (the operator's Go template, evaluated here by substitution) yields a keys
    file the api accepts, holding the key by its hash."""
    found = manifests.find(rendered_profiles["external-secrets"], "ExternalSecret")
    assert {m.name for m in found} == {
        "agent-service-redis",
        "agent-service-metrics-token",
        "agent-service-test-key",
    }
    for m in found:
        spec = m.obj["spec"]
        assert set(spec) == {"refreshInterval", "secretStoreRef", "target", "data"}, m
        assert spec["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "vault"}
        assert spec["target"]["name"] == m.name and spec["target"]["creationPolicy"] == "Owner"
        (item,) = spec["data"]
        assert set(item) == {"secretKey", "remoteRef"} and item["remoteRef"]["key"], m
    test_key = manifests.one(
        rendered_profiles["external-secrets"], "ExternalSecret", "agent-service-test-key"
    )["spec"]["target"]["template"]
    assert test_key["engineVersion"] == "v2"
    key = "ak_from-the-secret-store"
    digest = hashlib.sha256(key.encode()).hexdigest()
    data = {
        name: text.replace("{{ .key | sha256sum }}", digest).replace("{{ .key }}", key)
        for name, text in test_key["data"].items()
    }
    assert data["key"] == key
    assert yaml.safe_load(data["keys.yaml"]) == {
        "keys": [{"tenant": "helm-test", "name": "helm-test", "sha256": digest}]
    }
