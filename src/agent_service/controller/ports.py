"""What the controller's pure core works on: the ``Cluster`` port and the data it passes.

``kube.KubeCluster`` implements ``Cluster`` on the Kubernetes API; tests use fakes
(``tests/controller/fakes.py``). The decisions themselves (``checks``, ``compose``,
``reconcile``) never talk to Kubernetes but through this port.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from agent_service.agentconfig.crd import CONFIG_LABEL, KIND
from agent_service.agentconfig.mcp import McpServerSpec

EventType = Literal["Normal", "Warning"]


class ApiUnavailableError(Exception):
    """The Kubernetes API failed in a way worth retrying (raised by ``Cluster`` methods)."""


@dataclass(frozen=True)
class ConfigMapState:
    data: dict[str, str]
    annotations: dict[str, str]


@dataclass(frozen=True)
class ObjectRef:
    """A config resource: what Events and status patches are about."""

    name: str
    namespace: str
    generation: int
    uid: str = ""
    kind: str = KIND


@dataclass(frozen=True)
class Resource:
    """One config resource as read from the cluster: AgentConfig, Agent or MCPServer."""

    kind: str
    name: str
    namespace: str
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any] = field(default_factory=dict)
    uid: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.name, self.namespace, self.generation, self.uid, self.kind)

    @classmethod
    def from_body(cls, kind: str, body: Mapping[str, Any]) -> Resource:
        """From a resource's JSON as the API serves it."""
        meta = body.get("metadata") or {}
        return cls(
            kind=kind,
            name=str(meta.get("name") or ""),
            namespace=str(meta.get("namespace") or ""),
            generation=int(meta.get("generation") or 1),
            spec=body.get("spec") or {},
            status=body.get("status") or {},
            uid=str(meta.get("uid") or ""),
            labels=dict(meta.get("labels") or {}),
        )


class Cluster(Protocol):
    """What the controller needs from Kubernetes (``kube.KubeCluster``; fakes in tests)."""

    def secret_keys(self, name: str) -> set[str] | None:
        """The keys of Secret ``name``, or None if there is no such Secret."""

    def read_configmap(self, name: str) -> ConfigMapState | None: ...

    def write_configmap(self, name: str, data: dict[str, str], annotations: dict[str, str]) -> None:
        """Create or replace the data (and these annotations) of ConfigMap ``name``."""

    def event(self, obj: ObjectRef, type_: EventType, reason: str, message: str) -> None: ...

    def read_resource(self, kind: str, name: str) -> Resource | None:
        """The ``kind`` resource ``name`` (the AgentConfig), or None if there is none."""

    def list_resources(self, kind: str, label: tuple[str, str]) -> list[Resource]:
        """The ``kind`` resources (Agents, MCPServers) carrying the ``label`` (key, value);
        none when the kind's CRD is not installed."""

    def patch_status(self, obj: ObjectRef, status: dict[str, Any]) -> None:
        """Merge ``status`` into the resource's status (a None value removes a field)."""


@dataclass(frozen=True)
class Policy:
    """What the controller renders and what the cluster operator allows, from its settings."""

    configmap: str
    mounted_secrets: frozenset[str] | None = None
    """Secrets mounted into api/worker pods (None: not checked)."""
    allowed_tool_hosts: tuple[str, ...] = ()
    """Host patterns HTTP tools and MCP servers may be at (``*.svc.cluster.local``); empty: any
    public host."""
    allow_private_networks: bool = False
    """Whether a spec may let HTTP tools or an MCP server reach private networks."""
    agentconfig: str = "agent-service"
    """The AgentConfig rendered (the release's)."""
    label: tuple[str, str] = (CONFIG_LABEL, "agent-service")
    """The label (key, value) selecting the Agents and MCPServers rendered with it."""


@dataclass(frozen=True)
class Problem:
    """Why a resource (or part of it) cannot be served: where, a CamelCase reason, what."""

    path: str
    reason: str
    message: str


def describe(problems: list[Problem]) -> str:
    """Problems as one status message: ``spec.model: 'x' is not ...; spec.tools...``."""
    return "; ".join(f"{p.path}: {p.message}" for p in problems)


@dataclass(frozen=True)
class ProbeResult:
    """What the controller learnt by connecting to an MCP server (``probe.McpProber``)."""

    reachable: bool | None
    """True: it listed its tools; False: it did not answer (``message`` says why); None: not
    probed (``message`` says why)."""
    tools: tuple[str, ...] = ()
    """The tools it offers (after include and exclude), as it names them."""
    message: str = ""


Probes = Callable[[McpServerSpec], ProbeResult | None]
"""The latest probe of a server spec (None: none yet)."""
