"""What the pods' ConfigMap serves now, by origin: the last good spec of every resource.

The controller keeps no state of its own. The ConfigMap it writes holds the config the pods
serve (``config.yaml``) and, in the annotation ``agent-service.dev/resources``, where each part
came from: the AgentConfig (uid, generation, the ``defaultAgent`` it asked for, whether the
``default`` agent was written out for it) and each Agent and MCPServer (uid, generation). So
what is served *is* the last-known-good of each resource: when a resource's new generation is
refused, ``read_served`` finds its previous spec in the ConfigMap and the composition keeps it
(``compose``). The state survives controller restarts and needs no write access to anything
but that ConfigMap; deleting the ConfigMap by hand forgets it (valid resources are rendered
again, a refused one then serves nothing until it is fixed).

A ConfigMap written by a controller from before Agent and MCPServer resources has no such
annotation: all of it is the AgentConfig's (``agent-service.dev/source``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from agent_service.agentconfig.agents import DEFAULT_AGENT
from agent_service.agentconfig.crd import AGENT_KIND, KIND, MCP_SERVER_KIND
from agent_service.agentconfig.load import ConfigError, parse_config_document
from agent_service.agentconfig.model import AgentConfig
from agent_service.agentconfig.render import CONFIG_KEY
from agent_service.controller.ports import ConfigMapState

ANNOTATION_GENERATION = "agent-service.dev/generation"
ANNOTATION_HASH = "agent-service.dev/config-hash"
ANNOTATION_SOURCE = "agent-service.dev/source"
ANNOTATION_RESOURCES = "agent-service.dev/resources"


@dataclass(frozen=True)
class Origin:
    """The resource a part of the config came from."""

    uid: str
    generation: int

    def of(self, uid: str) -> bool:
        """Whether this part is that resource's (an empty uid: written before uids were
        recorded, taken as the same resource)."""
        return not self.uid or self.uid == uid


@dataclass(frozen=True)
class Entry:
    """A resource's part of the config: its ``agents`` or ``mcpServers`` entry (wire form, with
    its name), and where it came from."""

    origin: Origin
    spec: dict[str, Any]

    def body(self) -> dict[str, Any]:
        """The entry as a resource spec (without the name, which is metadata.name)."""
        return {k: v for k, v in self.spec.items() if k != "name"}


@dataclass(frozen=True)
class Base:
    """The AgentConfig's own part of the config: its spec as it asked (``defaultAgent`` too)."""

    name: str
    origin: Origin
    spec: dict[str, Any]


@dataclass(frozen=True)
class Served:
    """The ConfigMap's config by origin (empty when there is none, or it cannot be read)."""

    generation: int | None = None
    hash: str | None = None
    base: Base | None = None
    agents: dict[str, Entry] = field(default_factory=dict)
    servers: dict[str, Entry] = field(default_factory=dict)
    content: tuple[str, int | None] | None = None
    """What ``config.yaml`` holds: its config's hash and the generation it declares (None:
    nothing usable), so an unchanged config need not be written out again to be compared."""

    def base_of(self, name: str, uid: str) -> Base | None:
        """The last good spec of the AgentConfig ``name`` (uid ``uid``), if it is served."""
        base = self.base
        return base if base is not None and base.name == name and base.origin.of(uid) else None

    def entry(self, kind: str, name: str, uid: str) -> Entry | None:
        """The last good spec of that Agent or MCPServer, if it is served."""
        entries = self.agents if kind == AGENT_KIND else self.servers
        found = entries.get(name)
        return found if found is not None and found.origin.of(uid) else None


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


@functools.lru_cache(maxsize=4)
def _parsed(text: str) -> tuple[AgentConfig, int | None] | None:
    """``config.yaml`` parsed (None: unusable). Cached: every reconcile reads the same
    ConfigMap until it changes, and parsing a few hundred agents costs a good part of one."""
    try:
        return parse_config_document(text, "ConfigMap")
    except ConfigError:
        return None


def read_served(current: ConfigMapState | None) -> Served:
    """What ``current`` serves, by origin."""
    if current is None or CONFIG_KEY not in current.data:
        return Served()
    annotations = current.annotations
    generation = _int(annotations.get(ANNOTATION_GENERATION))
    digest = annotations.get(ANNOTATION_HASH)
    parsed = _parsed(current.data[CONFIG_KEY])
    if parsed is None:
        return Served(generation, digest)  # edited by hand into something unusable
    config, declared = parsed
    spec = config.model_dump(mode="json", by_alias=True)
    generation = declared or generation
    try:
        origins = json.loads(annotations.get(ANNOTATION_RESOURCES, ""))
    except json.JSONDecodeError:
        origins = None
    if not isinstance(origins, dict):
        served = _legacy(spec, annotations, generation, digest)
    else:
        served = _by_origin(spec, origins, generation, digest)
    return replace(served, content=(config.fingerprint(), declared))


def _legacy(
    spec: dict[str, Any], annotations: Mapping[str, str], generation: int | None, digest: str | None
) -> Served:
    kind, _, name = annotations.get(ANNOTATION_SOURCE, "").partition("/")
    if kind != KIND or not name:
        return Served(generation, digest)
    base = Base(name, Origin("", generation or 1), spec)
    return Served(generation, digest, base)


def _origin(value: object) -> Origin | None:
    if not isinstance(value, dict):
        return None
    generation = _int(value.get("generation"))
    return Origin(str(value.get("uid") or ""), generation) if generation else None


def _entries(items: list[dict[str, Any]], origins: object) -> dict[str, Entry]:
    if not isinstance(origins, dict):
        return {}
    found: dict[str, Entry] = {}
    for item in items:
        origin = _origin(origins.get(item["name"]))
        if origin is not None:
            found[item["name"]] = Entry(origin, item)
    return found


def _by_origin(
    spec: dict[str, Any], origins: dict[str, Any], generation: int | None, digest: str | None
) -> Served:
    agents = _entries(spec["agents"], origins.get(AGENT_KIND))
    servers = _entries(spec["mcpServers"], origins.get(MCP_SERVER_KIND))
    owner = origins.get(KIND)
    origin = _origin(owner)
    if origin is None or not isinstance(owner, dict):
        return Served(generation, digest, None, agents, servers)
    implicit = owner.get("implicitDefault") is True
    own_agents = [
        a
        for a in spec["agents"]
        if a["name"] not in agents and not (implicit and a["name"] == DEFAULT_AGENT)
    ]
    own_servers = [s for s in spec["mcpServers"] if s["name"] not in servers]
    wanted = owner.get("defaultAgent")
    own = {
        **spec,
        "agents": own_agents,
        "mcpServers": own_servers,
        "defaultAgent": wanted if isinstance(wanted, str) else None,
    }
    base = Base(str(owner.get("name") or ""), origin, own)
    return Served(generation, digest, base, agents, servers)


@dataclass(frozen=True)
class Rendered:
    """Where the parts of a new config come from (what ``annotations`` records)."""

    agentconfig: str
    origin: Origin
    default_agent: str | None
    implicit_default: bool
    agents: dict[str, Origin]
    servers: dict[str, Origin]


def annotations_for(rendered: Rendered, generation: int, digest: str) -> dict[str, str]:
    """The ConfigMap's annotations for a config rendered from ``rendered``."""

    def origins(items: Mapping[str, Origin]) -> dict[str, Any]:
        return {name: {"uid": o.uid, "generation": o.generation} for name, o in items.items()}

    record = {
        KIND: {
            "name": rendered.agentconfig,
            "uid": rendered.origin.uid,
            "generation": rendered.origin.generation,
            "defaultAgent": rendered.default_agent,
            "implicitDefault": rendered.implicit_default,
        },
        AGENT_KIND: origins(rendered.agents),
        MCP_SERVER_KIND: origins(rendered.servers),
    }
    return {
        ANNOTATION_GENERATION: str(generation),
        ANNOTATION_HASH: digest,
        ANNOTATION_SOURCE: f"{KIND}/{rendered.agentconfig}",
        ANNOTATION_RESOURCES: json.dumps(record, sort_keys=True, separators=(",", ":")),
    }
