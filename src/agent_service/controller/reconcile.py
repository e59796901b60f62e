"""The controller's decisions, as a pure function of what the cluster holds.

``reconcile`` takes the release's AgentConfig, the Agents and MCPServers carrying its label,
and the ConfigMap the pods read (``World``), and decides the ConfigMap to write and the status
of every resource (``Decision``):

1. The AgentConfig's spec is checked (``checks.check_spec``). When it fails, its last good spec
   (found in the ConfigMap, ``served``) stands in for it, if that still passes every check; the
   AgentConfig's status says its new generation is not applied.
2. The Agents and MCPServers are composed with it (``compose``), each accepted or refused on
   its own, a refused one keeping its last good generation when it has one.
3. The composed config is rendered into the ConfigMap, but only when it changed, with the
   config generation the pods report: the AgentConfig's ``metadata.generation`` while it alone
   makes the config, a count that only grows otherwise (never below the AgentConfig's).

With no AgentConfig, or none ever accepted, nothing is written: the pods keep what they have.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent_service.agentconfig.agents import DEFAULT_AGENT
from agent_service.agentconfig.mcp import McpServerSpec
from agent_service.agentconfig.model import AgentConfig
from agent_service.agentconfig.render import CONFIG_KEY, render_config
from agent_service.controller.checks import check_spec, wanted_default
from agent_service.controller.compose import Candidate, Composition, compose
from agent_service.controller.ports import (
    Cluster,
    ConfigMapState,
    Policy,
    Probes,
    Problem,
    Resource,
)
from agent_service.controller.served import (
    ANNOTATION_GENERATION,
    ANNOTATION_HASH,
    ANNOTATION_RESOURCES,
    ANNOTATION_SOURCE,
    Origin,
    Served,
    annotations_for,
    read_served,
)
from agent_service.controller.statuses import (
    Rendering,
    agentconfig_status,
    resource_status,
    waiting_status,
)

__all__ = [  # the ConfigMap's annotations are read here too (tests, docs)
    "ANNOTATION_GENERATION",
    "ANNOTATION_HASH",
    "ANNOTATION_RESOURCES",
    "ANNOTATION_SOURCE",
    "Decision",
    "StatusUpdate",
    "World",
    "changed",
    "reconcile",
    "transition",
]


@dataclass(frozen=True)
class World:
    """What the cluster holds for one release."""

    agentconfig: Resource | None
    agents: Sequence[Resource] = ()
    servers: Sequence[Resource] = ()
    configmap: ConfigMapState | None = None


@dataclass(frozen=True)
class StatusUpdate:
    """A resource's new status, against the one it has."""

    resource: Resource
    status: dict[str, Any]

    @property
    def patch(self) -> dict[str, Any]:
        return changed(self.resource.status, self.status)

    @property
    def news(self) -> bool:
        return transition(self.resource.status, self.status)

    @property
    def ready(self) -> Mapping[str, Any]:
        """Its new Ready condition."""
        return _condition(self.status, "Ready") or {}

    @property
    def rejected(self) -> bool:
        """Its Accepted condition is False (Unknown: it could not be checked)."""
        return (_condition(self.status, "Accepted") or {}).get("status") == "False"


@dataclass
class Decision:
    """What one reconcile decided."""

    write: ConfigMapState | None
    """The ConfigMap to write (None: it stays as it is)."""
    config: AgentConfig | None
    """The config the ConfigMap holds after the write (None: none usable)."""
    generation: int | None = None
    hash: str | None = None
    statuses: list[StatusUpdate] = field(default_factory=list)
    probe: list[McpServerSpec] = field(default_factory=list)
    """The MCPServers served: the prober keeps their probes fresh."""
    new_config: bool = False
    """The write carries another config than the ConfigMap had (not only annotations, or a
    hand edit put back)."""


def reconcile(
    world: World, *, cluster: Cluster, policy: Policy, probes: Probes | None, now: str
) -> Decision:
    """Check, compose and render the release's config resources."""
    served = read_served(world.configmap)
    resource = world.agentconfig
    if resource is None:
        why = (
            f"AgentConfig {policy.agentconfig} does not exist: Agents and MCPServers are "
            "rendered with it once it does"
        )
        return _waiting(world, served, "NoAgentConfig", why, now)
    current, problems = check_spec(resource.spec, cluster, policy)
    composition = None
    for candidate in _candidates(resource, current, served, cluster, policy):
        found = compose(
            candidate, world.agents, world.servers, served=served, cluster=cluster, policy=policy
        )
        if found.config is None:
            problems.append(Problem("spec", "RenderFailed", str(found.error)))
        elif candidate.current and found.default_problem is not None:
            problems.append(found.default_problem)
        else:
            composition = found
            break
    if composition is None:
        kept = _describe_kept(world.configmap)
        status = agentconfig_status(
            resource, problems=problems, ready=None, kept=kept, served={}, now=now
        )
        why = (
            f"AgentConfig {resource.name} is not accepted ({problems[0].reason}): nothing is "
            "rendered until it is"
        )
        decision = _waiting(world, served, "AgentConfigNotReady", why, now)
        decision.statuses.insert(0, StatusUpdate(resource, status))
        return decision
    return _rendered(
        world,
        resource,
        composition,
        served=served,
        problems=problems,
        policy=policy,
        probes=probes,
        now=now,
    )


def _candidates(
    resource: Resource,
    current: AgentConfig | None,
    served: Served,
    cluster: Cluster,
    policy: Policy,
) -> Iterator[Candidate]:
    """The AgentConfig's current spec, then (only if that one is not used) its last good one,
    if it still passes the checks."""
    if current is not None:
        origin = Origin(resource.uid, resource.generation)
        default = wanted_default(resource.spec)
        yield Candidate(resource.name, origin, current, default, current=True)
    # Also when it is the current generation: refused now for a defaultAgent that went away,
    # it is served without one.
    last = served.base_of(resource.name, resource.uid)
    if last is not None:
        config, _ = check_spec(last.spec, cluster, policy)
        if config is not None:
            yield Candidate(resource.name, last.origin, config, wanted_default(last.spec), False)


def _generation(served: Served, origin: Origin, digest: str) -> int:
    """The config generation: the AgentConfig's own generation when nothing was served before,
    else never lower than before, one more when the config changed."""
    if served.generation is None:
        return origin.generation
    if served.hash == digest:
        return max(served.generation, origin.generation)
    return max(served.generation + 1, origin.generation)


@dataclass(frozen=True)
class _Named:
    name: str
    namespace: str
    generation: int


def _rendered(
    world: World,
    resource: Resource,
    composition: Composition,
    *,
    served: Served,
    problems: list[Problem],
    policy: Policy,
    probes: Probes | None,
    now: str,
) -> Decision:
    config = composition.config
    assert config is not None
    digest = config.fingerprint()
    generation = _generation(served, composition.rendered.origin, digest)
    wanted = annotations_for(composition.rendered, generation, digest)
    current = world.configmap
    write = None
    if current is not None and served.content == (digest, generation):
        # config.yaml holds this very config and generation: no need to render it to compare.
        if _differ(current.annotations, wanted):
            write = ConfigMapState(dict(current.data), wanted)
    else:
        named = _Named(resource.name, resource.namespace, generation)
        write = ConfigMapState(render_config(named, config), wanted)
    rendering = Rendering(policy.configmap, generation, digest, config.default_model)
    agents = [a.name for a in config.agents] or [DEFAULT_AGENT]
    summary = f"{_count(len(agents), 'agent')}, {_count(len(config.mcp_servers), 'MCP server')}"
    fields = {
        "configMap": policy.configmap,
        "appliedGeneration": composition.rendered.origin.generation,
        "configGeneration": generation,
        "configHash": digest,
        "agents": agents,
        "mcpServers": [s.name for s in config.mcp_servers],
    }
    ready = (
        f"generation {resource.generation} is in ConfigMap {policy.configmap} (config "
        f"generation {generation}, hash {digest}, {summary}); api and worker pods apply it "
        "without restart"
    )
    kept = (
        f"The pods keep its generation {composition.rendered.origin.generation} "
        f"(config generation {generation}, hash {digest})."
    )
    if composition.default_problem is not None:  # the last good one names no served agent
        kept += f" Its defaultAgent is not served ({composition.default_problem.message}): "
        kept += "requests naming no agent get the first agent."
    statuses = [
        StatusUpdate(
            resource,
            agentconfig_status(
                resource,
                problems=problems,
                ready=ready if not problems else None,
                kept=kept,
                served=fields,
                now=now,
            ),
        )
    ]
    verdicts = [*composition.servers, *composition.agents]
    statuses += [
        StatusUpdate(v.resource, resource_status(v, rendering, probes, now)) for v in verdicts
    ]
    probe = [
        McpServerSpec.model_validate(v.served.spec)
        for v in composition.servers
        if v.served is not None
    ]
    new_config = write is not None and served.hash != digest
    return Decision(write, config, generation, digest, statuses, probe, new_config)


def _waiting(world: World, served: Served, reason: str, message: str, now: str) -> Decision:
    """Nothing can be rendered: every Agent and MCPServer waits (the pods keep what they have)."""
    statuses = []
    for resource in [*world.servers, *world.agents]:
        entry = served.entry(resource.kind, resource.name, resource.uid)
        status = waiting_status(resource, reason, message, entry, now)
        statuses.append(StatusUpdate(resource, status))
    return Decision(None, None, served.generation, served.hash, statuses)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _differ(current: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return any(current.get(k) != v for k, v in wanted.items())


def _describe_kept(current: ConfigMapState | None) -> str:
    if current is None or CONFIG_KEY not in current.data:
        return "No config has been applied yet: the pods wait for a valid one."
    generation = current.annotations.get(ANNOTATION_GENERATION, "?")
    digest = current.annotations.get(ANNOTATION_HASH, "?")
    return f"The pods keep generation {generation} (hash {digest})."


def _condition(status: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    return next(
        (
            c
            for c in status.get("conditions") or []
            if isinstance(c, Mapping) and c.get("type") == kind
        ),
        None,
    )


def changed(previous: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
    """The keys of ``status`` whose value differs from ``previous`` (what to patch; a None
    value removes a field that is set)."""
    return {k: v for k, v in status.items() if previous.get(k) != v}


def transition(previous: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether ``status`` is news: its Ready condition's status, reason, generation or message
    changed (or it has none yet)."""
    old, new = _condition(previous, "Ready"), _condition(status, "Ready")
    if old is None or new is None:
        return True
    keys = ("status", "reason", "observedGeneration", "message")
    return any(old.get(k) != new.get(k) for k in keys)
