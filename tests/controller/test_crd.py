"""The AgentConfig CRD: generated from the pydantic model, structural, committed unchanged."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from agent_service.agentconfig import crd
from agent_service.agentconfig.model import default_agent_config
from agent_service.agentconfig.render import render_config
from agent_service.controller.reconcile import ObjectRef
from tests.chart.manifests import KUBE_VERSIONS, _json_schema, _strict, validate_builtin
from tests.procs import base_env, cli

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = [
    ROOT / "charts/agent-service/charts/crds/crds/agentconfig.yaml",
    ROOT / "k8s/crds/agentconfig.yaml",
]
EXAMPLE = ROOT / "k8s/examples/agentconfig.yaml"


def _cr_schema() -> dict[str, Any]:
    schema = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return _json_schema(_strict(schema))


def _schema_errors(obj: dict[str, Any]) -> list[str]:
    body = {k: v for k, v in obj.items() if k != "metadata"}
    validator = jsonschema.Draft7Validator(_cr_schema())
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_crd_equals_the_generated_one(path: Path) -> None:
    assert path.read_text(encoding="utf-8") == crd.render_crd_yaml(), (
        f"{path} is stale: regenerate it with `uv run agent-service crd > {path.relative_to(ROOT)}`"
    )


def test_the_crd_command_prints_the_generated_crd() -> None:
    out = subprocess.run(
        cli("crd"), env=base_env(), capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out == crd.render_crd_yaml()


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_crd_is_a_valid_apiextensions_object(version: str) -> None:
    validate_builtin(crd.build_crd(), version)


def _walk(node: dict[str, Any], path: str) -> list[str]:
    """Violations of the structural-schema rules (kubernetes.io, 'Specifying a structural
    schema'): a type everywhere, no unions or refs, additionalProperties never with properties
    and never a boolean, defaults valid for their node."""
    problems = []
    if not (node.get("type") or node.get("x-kubernetes-preserve-unknown-fields")):
        problems.append(f"{path}: no type")
    for banned in ("anyOf", "oneOf", "allOf", "not", "$ref", "$defs", "title", "const"):
        if banned in node:
            problems.append(f"{path}: {banned}")
    extra = node.get("additionalProperties")
    if extra is not None and (isinstance(extra, bool) or "properties" in node):
        problems.append(f"{path}: additionalProperties {extra!r} with properties or as a bool")
    if "default" in node:
        errors = list(jsonschema.Draft7Validator(_json_schema(node)).iter_errors(node["default"]))
        problems += [f"{path}: default {node['default']!r}: {e.message}" for e in errors]
    for name, child in node.get("properties", {}).items():
        problems += _walk(child, f"{path}.{name}")
    if isinstance(extra, dict):
        problems += _walk(extra, f"{path}[*]")
    if "items" in node:
        problems += _walk(node["items"], f"{path}[]")
    return problems


def test_schema_is_structural() -> None:
    schema = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema, "") == []


def test_schema_carries_the_models_bounds_and_defaults() -> None:
    spec = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["required"] == ["defaultModel", "models"]
    model = spec["properties"]["models"]["items"]
    timeout = model["properties"]["timeoutSeconds"]
    assert timeout["exclusiveMinimum"] is True and timeout["minimum"] == 0
    assert timeout["maximum"] == 3600 and timeout["default"] == 60.0
    limits = spec["properties"]["limits"]["properties"]
    assert limits["maxIterations"] == {
        "default": 8,
        "description": "LLM calls per run.",
        "maximum": 100,
        "minimum": 1,
        "type": "integer",
    }
    secret = model["properties"]["apiKey"]["properties"]
    assert set(secret) == {"env", "file", "secretKeyRef"}, "a key value is never a field"
    parameters = spec["properties"]["tools"]["properties"]["http"]["items"]["properties"]
    assert parameters["parameters"]["x-kubernetes-preserve-unknown-fields"] is True
    assert parameters["headers"]["additionalProperties"] == {"type": "string"}
    assert parameters["method"]["enum"] == ["GET", "POST"]


def test_printer_columns_and_status_subresource() -> None:
    version = crd.build_crd()["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Reason"] == '.status.conditions[?(@.type=="Ready")].reason'
    assert columns["Generation"] == ".metadata.generation"
    assert columns["Age"] == ".metadata.creationTimestamp"


def test_example_and_rendered_configs_match_the_schema() -> None:
    example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert _schema_errors(example) == []
    rendered = yaml.safe_load(
        render_config(ObjectRef("demo", "ns", 3), default_agent_config("http://sim:8100/v1"))[
            "config.yaml"
        ]
    )
    assert _schema_errors(rendered) == []


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda s: s["models"][0].update(timeoutSeconds=0), "spec/models/0/timeoutSeconds"),
        (lambda s: s["models"][0].update(name="Not A Name"), "spec/models/0/name"),
        (lambda s: s["limits"].update(maxIterations=1000), "spec/limits/maxIterations"),
        (lambda s: s["models"][0]["apiKey"].update(value="sk-1"), "spec/models/0/apiKey"),
        (lambda s: s.pop("models"), "spec"),
    ],
    ids=["timeout-zero", "bad-name", "too-many-iterations", "inlined-key", "no-models"],
)
def test_schema_rejects_what_the_model_rejects(edit: Any, where: str) -> None:
    example = copy.deepcopy(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8")))
    edit(example["spec"])
    errors = _schema_errors(example)
    assert any(e.startswith(where) for e in errors), errors
