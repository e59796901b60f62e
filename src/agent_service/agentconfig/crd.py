"""The CustomResourceDefinitions of the config resources, generated from the pydantic models.

Three kinds in one API group: ``AgentConfig`` (the service-wide config: models, tenants, keys,
default limits, cache, router; its own ``agents`` and ``mcpServers`` too), ``Agent`` (one named
agent: an ``agents`` entry whose name is the resource's) and ``MCPServer`` (one MCP tool server:
an ``mcpServers`` entry, likewise). ``agent-service crd`` prints all three; the copies committed
in the chart (its ``crds`` subchart, installed only with ``crds.install``) and in ``k8s/crds/``
must equal it, one file per kind (a test checks). Each carries ``helm.sh/resource-policy:
keep``: whatever installs it, deleting a release must never delete a CRD, which would delete
every resource of that kind in the cluster with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import BaseModel

from agent_service.agentconfig.agents import AgentSpec
from agent_service.agentconfig.mcp import McpServerSpec
from agent_service.agentconfig.model import AgentConfig
from agent_service.agentconfig.schema import model_schema, without_field
from agent_service.agentconfig.status import AgentConfigStatus, AgentStatus, McpServerStatus

GROUP = "agent-service.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "AgentConfig"
PLURAL = "agentconfigs"
AGENT_KIND = "Agent"
MCP_SERVER_KIND = "MCPServer"

CONFIG_LABEL = "agent-service.dev/config"
"""The label that puts an Agent or MCPServer into a release's config: its value is the name of
that release's AgentConfig (the chart's ``<fullname>``)."""

_READY = '.status.conditions[?(@.type=="Ready")]'


def _column(name: str, json_path: str, type_: str = "string", priority: int = 0) -> dict[str, Any]:
    column: dict[str, Any] = {"name": name, "type": type_, "jsonPath": json_path}
    if priority:
        column["priority"] = priority
    return column


_STATE_COLUMNS = [_column("Ready", f"{_READY}.status"), _column("Reason", f"{_READY}.reason")]
_AGE = _column("Age", ".metadata.creationTimestamp", "date")


@dataclass(frozen=True)
class ResourceKind:
    """One kind of config resource: its names, what it declares and how ``kubectl get`` shows
    it (printer columns; ``priority`` 1 only with ``-o wide``)."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    spec_description: str
    spec: Callable[[], dict[str, Any]]
    status: type[BaseModel]
    columns: tuple[dict[str, Any], ...]

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def file_name(self) -> str:
        """Its file in ``k8s/crds/`` and the chart's ``crds/``."""
        return f"{self.singular}.yaml"


AGENT_CONFIG = ResourceKind(
    kind=KIND,
    plural=PLURAL,
    short_names=("agentcfg",),
    description="AgentConfig declares the agent configuration of an agent-service release; the "
    "controller validates it and renders it, with the release's Agent and MCPServer resources, "
    "into the ConfigMap the api and worker pods reload without restart.",
    spec_description="The agent's configuration: models (provider, prices, fallbacks), tools, "
    "system prompt, limits, rate limits and budgets. Secrets are referenced, never inlined.",
    spec=lambda: model_schema(AgentConfig),
    status=AgentConfigStatus,
    columns=(
        *_STATE_COLUMNS,
        _column("Generation", ".metadata.generation", "integer"),
        _column("Default Model", ".spec.defaultModel", priority=1),
        _column("Hash", ".status.configHash", priority=1),
        _AGE,
    ),
)
AGENT = ResourceKind(
    kind=AGENT_KIND,
    plural="agents",
    short_names=(),
    description="Agent declares one named agent of an agent-service release (label "
    f"{CONFIG_LABEL}: <the release's AgentConfig>): its prompt, model, tools, limits and "
    "tenants. The controller validates it against the AgentConfig's models and tools and the "
    "MCPServers, and serves it without restart; an invalid Agent is refused on its own.",
    spec_description="The agent (an agents entry of the config; its name is metadata.name). "
    "Unset systemPrompt, model and limits inherit the AgentConfig's.",
    spec=lambda: without_field(model_schema(AgentSpec), "name"),
    status=AgentStatus,
    columns=(
        _column("Model", ".status.model"),
        _column("Tools", ".status.tools"),
        *_STATE_COLUMNS,
        _column("Served", ".status.servedGeneration", "integer", priority=1),
        _column("Description", ".spec.description", priority=1),
        _AGE,
    ),
)
MCP_SERVER = ResourceKind(
    kind=MCP_SERVER_KIND,
    plural="mcpservers",
    short_names=(),
    description="MCPServer declares one MCP tool server (Streamable HTTP) for the agents of an "
    f"agent-service release (label {CONFIG_LABEL}: <the release's AgentConfig>). The "
    "controller validates it, lists its tools, and hands it to the pods without restart.",
    spec_description="The server (an mcpServers entry of the config; its name is "
    "metadata.name, the prefix of its tools: <name>__<tool>).",
    spec=lambda: without_field(model_schema(McpServerSpec), "name"),
    status=McpServerStatus,
    columns=(
        _column("URL", ".spec.url"),
        _column("Tools", ".status.toolCount", "integer"),
        *_STATE_COLUMNS,
        _column("Served", ".status.servedGeneration", "integer", priority=1),
        _AGE,
    ),
)
KINDS = (AGENT_CONFIG, AGENT, MCP_SERVER)
BY_KIND = {k.kind: k for k in KINDS}


def build_crd(kind: str = KIND) -> dict[str, Any]:
    """The CustomResourceDefinition object of ``kind``."""
    resource = BY_KIND[kind]
    spec = resource.spec()
    spec["description"] = resource.spec_description
    names: dict[str, Any] = {
        "kind": resource.kind,
        "listKind": f"{resource.kind}List",
        "plural": resource.plural,
        "singular": resource.singular,
    }
    if resource.short_names:
        names["shortNames"] = list(resource.short_names)
    names["categories"] = ["agent-service"]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{resource.plural}.{GROUP}",
            "labels": {
                "app.kubernetes.io/name": "agent-service",
                "app.kubernetes.io/part-of": "agent-service",
            },
            "annotations": {"helm.sh/resource-policy": "keep"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": names,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(resource.columns),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": resource.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": model_schema(resource.status),
                            },
                        }
                    },
                }
            ],
        },
    }


def build_crds() -> list[dict[str, Any]]:
    """Every CRD: AgentConfig, Agent, MCPServer."""
    return [build_crd(k.kind) for k in KINDS]


HEADER = (
    "# Generated by `agent-service crd` from the pydantic models in\n"
    "# src/agent_service/agentconfig/: do not edit by hand.\n"
)


class _PlainDumper(yaml.SafeDumper):
    """No anchors and aliases: a schema reused in two places is written out twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_crd_yaml(kind: str = KIND) -> str:
    """One CRD as the YAML document committed in the chart and in ``k8s/crds/``."""
    text = yaml.dump(
        build_crd(kind), Dumper=_PlainDumper, sort_keys=False, width=100, allow_unicode=True
    )
    return HEADER + text


def render_crds_yaml() -> str:
    """Every CRD, one YAML document each (what ``agent-service crd`` prints)."""
    return "---\n".join(render_crd_yaml(k.kind) for k in KINDS)
