"""Render the Helm chart offline and validate what it renders.

* rendering: the real Helm engine (Helm v4's Go SDK through ``helm_python``, no binary, no
  cluster); values files are merged like ``helm -f``; the profiles are the chart's
  ``ci/*-values.yaml`` plus the example values under ``k8s/`` (``EXAMPLE_PROFILES``);
* built-in kinds: ``kubernetes_validate`` in strict mode (unknown fields fail) against the
  Kubernetes versions in ``KUBE_VERSIONS``;
* CRD-backed kinds (ServiceMonitor, PrometheusRule, ScaledObject, ...): the openAPIV3Schema of the
  CustomResourceDefinition files in the directory named by ``AGENT_TEST_CRD_SCHEMAS`` (CI points it
  at upstream CRDs; unset, those validations are skipped) and of the chart's own crds/ (the
  AgentConfig: always checked), made strict the way kubeconform's ``-strict`` does: objects with
  declared properties reject unknown fields.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "agent-service"
CHART_CRDS_DIR = CHART_DIR / "charts" / "crds" / "crds"
PROFILES_DIR = CHART_DIR / "ci"
K8S_DIR = REPO / "k8s"
RELEASE = "agent-service"
NAMESPACE = "agent-service"
# The chart's kubeVersion floor and the newest schema kubernetes-validate ships.
KUBE_VERSIONS = ("1.29", kubernetes_validate.latest_version())
CRD_SCHEMAS_ENV = "AGENT_TEST_CRD_SCHEMAS"


# The APIs of the chart's optional objects (Chart.yaml's agent-service/optional-apis).
OPTIONAL_APIS = (
    "monitoring.coreos.com/v1",
    "keda.sh/v1alpha1",
    "gateway.networking.k8s.io/v1",
    "opentelemetry.io/v1beta1",
    "external-secrets.io/v1",
    "postgresql.cnpg.io/v1",
)


@dataclass(frozen=True)
class ExampleProfile:
    """Values for the chart kept outside it, rendered as on a cluster serving ``api_versions``.

    They set ``strictCapabilities`` and no ``apiVersions`` (on a cluster the chart detects the
    APIs), so an offline render passes the APIs the way ``helm template --api-versions`` does.
    scripts/chart-check.sh renders them with the same lists.
    """

    path: Path
    api_versions: tuple[str, ...]


EXAMPLE_PROFILES = {
    "k8s-production": ExampleProfile(
        K8S_DIR / "production-values.yaml",
        ("monitoring.coreos.com/v1", "keda.sh/v1alpha1", "opentelemetry.io/v1beta1"),
    ),
    # What scripts/kind-up.sh installs: kube-prometheus-stack and KEDA, no OpenTelemetry Operator.
    "k8s-kind": ExampleProfile(
        K8S_DIR / "kind-values.yaml", ("monitoring.coreos.com/v1", "keda.sh/v1alpha1")
    ),
}


@dataclass(frozen=True)
class Manifest:
    """One rendered object and the template it came from."""

    template: str
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def api_version(self) -> str:
        return str(self.obj["apiVersion"])

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} ({self.template})"


@functools.cache
def chart() -> helm_python.Chart:
    return helm_python.Chart.load(CHART_DIR)


def profiles() -> list[str]:
    """Names of the value profiles: those in charts/agent-service/ci/ (file stem without
    -values), then the example profiles."""
    chart_profiles = sorted(
        p.name.removesuffix("-values.yaml") for p in PROFILES_DIR.glob("*-values.yaml")
    )
    return chart_profiles + sorted(EXAMPLE_PROFILES)


def profile_path(name: str) -> Path:
    example = EXAMPLE_PROFILES.get(name)
    return example.path if example else PROFILES_DIR / f"{name}-values.yaml"


def profile_values(name: str) -> dict[str, Any]:
    """A profile's values; an example profile's with the APIs of its cluster as apiVersions."""
    loaded = yaml.safe_load(profile_path(name).read_text(encoding="utf-8")) or {}
    example = EXAMPLE_PROFILES.get(name)
    if example:
        loaded["apiVersions"] = sorted({*loaded.get("apiVersions", []), *example.api_versions})
    return dict(loaded)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` merged into a copy of ``base`` (maps merge, everything else replaces)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def render_raw(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Template path -> rendered text (what ``helm template`` prints, NOTES.txt included)."""
    return chart().render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)


def render(values: dict[str, Any] | None = None) -> list[Manifest]:
    """Every object the chart renders for ``values``, in template order."""
    manifests = []
    for template, text in sorted(render_raw(values).items()):
        if not template.endswith((".yaml", ".yml")):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                manifests.append(Manifest(template.removeprefix("agent-service/"), doc))
    return manifests


def render_profile(name: str, extra: dict[str, Any] | None = None) -> list[Manifest]:
    return render(deep_merge(profile_values(name), extra or {}))


def find(manifests: list[Manifest], kind: str, name: str | None = None) -> list[Manifest]:
    return [m for m in manifests if m.kind == kind and (name is None or m.name == name)]


def one(manifests: list[Manifest], kind: str, name: str) -> dict[str, Any]:
    found = find(manifests, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {[str(m) for m in found]}"
    return found[0].obj


def container_env(container: dict[str, Any]) -> dict[str, Any]:
    """A container's env as name -> literal value (or its ``valueFrom``)."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[Manifest, dict[str, Any]]]:
    """(manifest, pod spec) of every workload (CronJobs' Job template too) and bare Pod."""
    for m in manifests:
        if m.kind in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield m, m.obj["spec"]["template"]["spec"]
        elif m.kind == "CronJob":
            yield m, m.obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif m.kind == "Pod":
            yield m, m.obj["spec"]


# --- built-in kinds -------------------------------------------------------------------------


class SchemaUnavailable(Exception):
    """No schema is known for this kind (neither built in nor among the CRD files)."""


def validate_builtin(obj: dict[str, Any], version: str) -> None:
    """Strict validation against the Kubernetes OpenAPI schema of ``version``."""
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise SchemaUnavailable(exc.message) from exc
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise AssertionError(
            f"{obj['kind']}/{obj['metadata']['name']} invalid for Kubernetes {version} "
            f"at {where or '(root)'}: {exc.message}"
        ) from None


# --- CRD-backed kinds -----------------------------------------------------------------------


class _CrdLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader (libyaml's when available: the CRDs are large) that reads a bare ``=`` (YAML
    1.1's value tag) as a string, as the AlertmanagerConfig CRD needs."""


_CrdLoader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: node.value)


def crd_schema_dir() -> Path | None:
    value = os.environ.get(CRD_SCHEMAS_ENV)
    return Path(value) if value else None


def _strict(schema: Any) -> Any:
    """A copy of an OpenAPI v3 schema where objects with declared properties reject others."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    if schema.get("nullable") and isinstance(schema.get("type"), str):
        out["type"] = [schema["type"], "null"]
    return out


def _json_schema(node: Any) -> Any:
    """OpenAPI v3.0's boolean exclusiveMinimum/Maximum as JSON Schema's numeric form (what a
    Draft 7 validator understands; the AgentConfig CRD uses the boolean form)."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items()}
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if out.get(exclusive) is True:
            out[exclusive] = out.pop(bound)
        elif out.get(exclusive) is False:
            del out[exclusive]
    return out


@functools.cache
def crd_schemas(directory: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict JSON schema, from every CRD file in ``directory``."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(directory.glob("*.y*ml")):
        for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_CrdLoader):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            group = doc["spec"]["group"]
            kind = doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                schema = version.get("schema", {}).get("openAPIV3Schema")
                if schema and version.get("served", True):
                    schemas[(f"{group}/{version['name']}", kind)] = _json_schema(_strict(schema))
    return schemas


def has_chart_crd(obj: dict[str, Any]) -> bool:
    """Whether the chart's own crds/ defines this object's kind (no external schemas needed)."""
    return (obj["apiVersion"], obj["kind"]) in crd_schemas(CHART_CRDS_DIR)


def validate_crd(obj: dict[str, Any], directory: Path | None = None) -> None:
    """Validate a custom resource against its CRD schema (metadata as an ObjectMeta): the
    chart's own CRDs, then those in ``directory``."""
    key = (obj["apiVersion"], obj["kind"])
    schema = crd_schemas(CHART_CRDS_DIR).get(key)
    if schema is None and directory is not None:
        schema = crd_schemas(directory).get(key)
    if schema is None:
        raise SchemaUnavailable(f"no CRD for {key[0]} {key[1]} in {CHART_CRDS_DIR} or {directory}")
    body = {k: v for k, v in obj.items() if k != "metadata"}
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path)
    )
    if errors:
        lines = [
            f"  at {'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in errors[:10]
        ]
        raise AssertionError(
            f"{obj['kind']}/{obj['metadata']['name']} does not match its CRD:\n" + "\n".join(lines)
        )
    # The CRD schema types metadata as a bare object: check it as a core ObjectMeta.
    validate_builtin(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]}, KUBE_VERSIONS[-1]
    )


def is_builtin(api_version: str) -> bool:
    """Core groups (no dot) and *.k8s.io groups, except the Gateway API (a CRD)."""
    group = api_version.rpartition("/")[0]
    if group.startswith("gateway."):
        return False
    return "." not in group or group.endswith(".k8s.io")
