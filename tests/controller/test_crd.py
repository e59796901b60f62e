"""The CRDs of AgentConfig, Agent and MCPServer: generated from the pydantic models,
structural, committed unchanged; the example resources fit them and the controller accepts
them."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from prometheus_client import CollectorRegistry

from agent_service.agentconfig import crd
from agent_service.agentconfig.model import default_agent_config
from agent_service.agentconfig.render import render_config
from agent_service.controller.ports import ObjectRef, Policy
from agent_service.controller.renderer import Renderer
from agent_service.mcptools.demo import MCP_PATH
from agent_service.observability.metrics import Metrics
from agent_service.settings import ControllerSettings
from tests.chart.manifests import KUBE_VERSIONS, _json_schema, _strict, validate_builtin
from tests.controller.fakes import FakeCluster
from tests.procs import base_env, cli

ROOT = Path(__file__).resolve().parents[2]
CRD_DIRS = [ROOT / "charts/agent-service/charts/crds/crds", ROOT / "k8s/crds"]
EXAMPLES = ROOT / "k8s/examples"
KINDS = [k.kind for k in crd.KINDS]


def _example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
    return loaded


def _cr_schema(kind: str) -> dict[str, Any]:
    schema = crd.build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return _json_schema(_strict(schema))  # type: ignore[no-any-return]


def _schema_errors(obj: dict[str, Any]) -> list[str]:
    body = {k: v for k, v in obj.items() if k != "metadata"}
    validator = jsonschema.Draft7Validator(_cr_schema(obj["kind"]))
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)
    ]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("directory", CRD_DIRS, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_crd_equals_the_generated_one(kind: str, directory: Path) -> None:
    path = directory / crd.BY_KIND[kind].file_name
    assert path.read_text(encoding="utf-8") == crd.render_crd_yaml(kind), (
        f"{path} is stale: regenerate it with `make crds` (scripts/gen-crds.sh)"
    )


@pytest.mark.parametrize("directory", CRD_DIRS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_other_crd_files(directory: Path) -> None:
    assert sorted(p.name for p in directory.iterdir()) == sorted(k.file_name for k in crd.KINDS)


def _crd_command(*args: str) -> str:
    return subprocess.run(
        cli("crd", *args), env=base_env(), capture_output=True, text=True, check=True, timeout=60
    ).stdout


def test_the_crd_command_prints_every_crd() -> None:
    out = _crd_command()
    assert out == crd.render_crds_yaml()
    documents = list(yaml.safe_load_all(out))
    assert [d["spec"]["names"]["kind"] for d in documents] == KINDS
    assert documents == [
        yaml.safe_load((CRD_DIRS[1] / k.file_name).read_text()) for k in crd.KINDS
    ], "the committed files are its output, one kind each"
    assert _crd_command("--kind", "MCPServer") == crd.render_crd_yaml("MCPServer")


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("kind", KINDS)
def test_crd_is_a_valid_apiextensions_object(kind: str, version: str) -> None:
    validate_builtin(crd.build_crd(kind), version)


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


@pytest.mark.parametrize("kind", KINDS)
def test_schema_is_structural(kind: str) -> None:
    schema = crd.build_crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert _walk(schema, "") == []


def _spec(kind: str) -> dict[str, Any]:
    version = crd.build_crd(kind)["spec"]["versions"][0]
    spec: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec


def test_schema_carries_the_models_bounds_and_defaults() -> None:
    spec = _spec("AgentConfig")
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


def test_agent_and_mcp_server_specs_are_the_config_entries_without_their_name() -> None:
    """An Agent's spec is an ``agents`` entry, an MCPServer's an ``mcpServers`` entry, field for
    field, but for the name, which is metadata.name."""
    config = _spec("AgentConfig")["properties"]
    entry = config["agents"]["items"]
    agent = _spec("Agent")
    assert "name" in entry["properties"] and "name" not in agent["properties"]
    assert agent["properties"] == {k: v for k, v in entry["properties"].items() if k != "name"}
    assert "required" not in agent
    server_entry = config["mcpServers"]["items"]
    server = _spec("MCPServer")
    assert server["properties"] == {
        k: v for k, v in server_entry["properties"].items() if k != "name"
    }
    assert server["required"] == ["url"]
    headers = server["properties"]["headers"]["additionalProperties"]["properties"]
    assert set(headers) == {"env", "file", "secretKeyRef", "prefix"}, "secrets, never values"


COLUMNS = {
    "AgentConfig": ["Ready", "Reason", "Generation", "Default Model", "Hash", "Age"],
    "Agent": ["Model", "Tools", "Ready", "Reason", "Served", "Description", "Age"],
    "MCPServer": ["URL", "Tools", "Ready", "Reason", "Served", "Age"],
}


@pytest.mark.parametrize("kind", KINDS)
def test_printer_columns_and_status_subresource(kind: str) -> None:
    built = crd.build_crd(kind)
    version = built["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == COLUMNS[kind]
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert columns["Reason"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].reason'
    assert columns["Age"]["jsonPath"] == ".metadata.creationTimestamp"
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    for column in columns.values():  # every column shows a field the schema has
        path = column["jsonPath"]
        if path.startswith(".status.") and "conditions" not in path:
            assert path.removeprefix(".status.") in status, path
    assert built["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert built["spec"]["names"]["categories"] == ["agent-service"]


def test_status_fields_of_agents_and_mcp_servers() -> None:
    agent = crd.build_crd("Agent")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    fields = set(agent["properties"]["status"]["properties"])
    assert {"observedGeneration", "conditions", "servedGeneration", "model", "tools"} <= fields
    server = crd.build_crd("MCPServer")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    fields = set(server["properties"]["status"]["properties"])
    assert {"observedGeneration", "conditions", "servedGeneration", "toolCount", "tools"} <= fields


@pytest.mark.parametrize("name", ["agentconfig.yaml", "agent.yaml", "mcpserver.yaml"])
def test_examples_match_the_schemas(name: str) -> None:
    assert _schema_errors(_example(name)) == []


def test_the_rendered_config_matches_the_agentconfig_schema() -> None:
    rendered = yaml.safe_load(
        render_config(ObjectRef("demo", "ns", 3), default_agent_config("http://sim:8100/v1"))[
            "config.yaml"
        ]
    )
    assert _schema_errors(rendered) == []


@pytest.mark.parametrize(
    ("example", "edit", "where"),
    [
        ("agentconfig.yaml", lambda s: s["models"][0].update(timeoutSeconds=0),
         "spec/models/0/timeoutSeconds"),
        ("agentconfig.yaml", lambda s: s["models"][0].update(name="Not A Name"),
         "spec/models/0/name"),
        ("agentconfig.yaml", lambda s: s["limits"].update(maxIterations=1000),
         "spec/limits/maxIterations"),
        ("agentconfig.yaml", lambda s: s["models"][0]["apiKey"].update(value="sk-1"),
         "spec/models/0/apiKey"),
        ("agentconfig.yaml", lambda s: s.pop("models"), "spec"),
        ("agent.yaml", lambda s: s.update(name="orders"), "spec"),
        ("agent.yaml", lambda s: s.update(model="Not A Name"), "spec/model"),
        ("agent.yaml", lambda s: s["limits"].update(maxIterations=0), "spec/limits/maxIterations"),
        ("agent.yaml", lambda s: s["tools"]["mcp"][0].update(server="Orders"),
         "spec/tools/mcp/0/server"),
        ("mcpserver.yaml", lambda s: s.pop("url"), "spec"),
        ("mcpserver.yaml", lambda s: s.update(url="ftp://x"), "spec/url"),
        ("mcpserver.yaml", lambda s: s.update(timeoutSeconds=601), "spec/timeoutSeconds"),
        ("mcpserver.yaml", lambda s: s.update(headers={"X": {"value": "secret"}}),
         "spec/headers/X"),
    ],
    ids=["timeout-zero", "bad-name", "too-many-iterations", "inlined-key", "no-models",
         "agent-name-in-spec", "agent-bad-model-name", "agent-zero-iterations",
         "agent-bad-server-name", "server-no-url", "server-ftp", "server-long-timeout",
         "server-inlined-header"],
)  # fmt: skip
def test_schema_rejects_what_the_model_rejects(example: str, edit: Any, where: str) -> None:
    resource = copy.deepcopy(_example(example))
    edit(resource["spec"])
    errors = _schema_errors(resource)
    assert any(e.startswith(where) for e in errors), errors


def test_the_examples_are_served_together() -> None:
    """The example AgentConfig, MCPServer and Agent, as a user applies them: the controller of
    release agent-service (allowing private networks, as the MCPServer needs) serves them."""
    cluster = FakeCluster(secrets={"llm-keys": {"openai"}})
    for name in ("agentconfig.yaml", "mcpserver.yaml", "agent.yaml"):
        resource = _example(name)
        meta = resource["metadata"]
        cluster.apply(resource["kind"], meta["name"], resource["spec"], labels=meta.get("labels"))
    options = ControllerSettings(agentconfig="agent-service")
    policy = Policy(
        configmap="agent-service-config",
        mounted_secrets=frozenset({"llm-keys"}),
        allow_private_networks=True,
        agentconfig=options.agentconfig,
        label=options.selector,
    )
    decision = Renderer(cluster, policy, Metrics(CollectorRegistry())).reconcile_once()
    assert decision.config is not None
    assert set(decision.config.profiles()) == {"default", "orders"}
    for kind in ("Agent", "MCPServer"):
        assert cluster.condition(kind, "orders", "Ready")["reason"] in {"Served"}, kind
    assert cluster.status("Agent", "orders")["model"] == "gpt-4o-mini"


def test_the_example_mcp_server_points_at_the_demo_deployment() -> None:
    documents = list(yaml.safe_load_all((EXAMPLES / "mcp-demo.yaml").read_text()))
    by_kind = {d["kind"]: d for d in documents}
    assert set(by_kind) == {"Deployment", "Service"}
    for document in documents:
        for version in KUBE_VERSIONS:
            validate_builtin(document, version)
    service = by_kind["Service"]
    url = urlsplit(_example("mcpserver.yaml")["spec"]["url"])
    assert url.hostname == service["metadata"]["name"] and url.path == MCP_PATH
    assert url.port == service["spec"]["ports"][0]["port"]
    (container,) = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["agent-service", "mcp-demo"]
    assert "--host" in container["command"] and "0.0.0.0" in container["command"]
    assert str(service["spec"]["ports"][0]["port"]) in container["command"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["capabilities"]["drop"] == [
        "ALL"
    ]


def test_the_label_the_controller_selects_by_default() -> None:
    assert ControllerSettings(agentconfig="x").selector == (crd.CONFIG_LABEL, "x")
    assert ControllerSettings(label="team=a").selector == ("team", "a")
    for name in ("agent.yaml", "mcpserver.yaml"):
        assert _example(name)["metadata"]["labels"] == {crd.CONFIG_LABEL: "agent-service"}
