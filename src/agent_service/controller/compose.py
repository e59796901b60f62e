"""One config from an AgentConfig and the Agents and MCPServers that join it.

Called by ``reconcile`` with a checked AgentConfig (the current spec, or its last good one).
Each MCPServer, then each Agent, is judged on its own: its current generation when it passes
every check, else its last good generation (``served``) if that still passes them, else
nothing. So an invalid resource never keeps the others from being served, and the config
written is valid by construction: each Agent is checked against the models and HTTP tools of
the AgentConfig and the MCP servers actually served, as the config model would check it.

The rules of the merge:

* MCP servers: the AgentConfig's ``mcpServers``, then the MCPServers by name. A resource named
  like an entry of the AgentConfig is refused (``NameConflict``): the AgentConfig wins.
* Agents: the AgentConfig's ``agents``, then the Agents by name. An AgentConfig that lists no
  agents serves its ``default`` agent (``AgentConfig.implicit_agent_spec``); with resources
  joining it, that agent is written out (its tools: the AgentConfig's own, never a resource's),
  so it keeps serving unchanged and requests naming no agent still reach it. ``default`` is
  then taken, as is every model name (``/v1/chat/completions`` takes either in ``model``).
* ``defaultAgent`` may name any served agent; otherwise ``default_problem`` says why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pydantic import BaseModel, ValidationError

from agent_service.agentconfig.agents import DEFAULT_AGENT
from agent_service.agentconfig.load import validation_errors
from agent_service.agentconfig.mcp import McpServerSpec
from agent_service.agentconfig.model import AgentConfig
from agent_service.agentconfig.references import agent_references
from agent_service.agentconfig.spec import Loc, format_path
from agent_service.controller.checks import check_agent, check_mcp_server
from agent_service.controller.ports import Cluster, Policy, Problem, Resource, describe
from agent_service.controller.served import Entry, Origin, Rendered, Served


@dataclass(frozen=True)
class Verdict:
    """What became of one Agent or MCPServer."""

    resource: Resource
    problems: list[Problem]
    """Why its current generation is refused (empty: accepted and served)."""
    served: Entry | None = None
    """Its part of the config: the current generation, or the last good one, or none."""
    kept_problems: list[Problem] = field(default_factory=list)
    """Why its last good generation is not served either (when it had one)."""

    @property
    def accepted(self) -> bool:
        return not self.problems

    @property
    def reason(self) -> str:
        return self.problems[0].reason if self.problems else "Served"


@dataclass(frozen=True)
class Composition:
    """The composed config (None when it could not be built: ``error``), and each resource's
    verdict."""

    config: AgentConfig | None
    rendered: Rendered
    servers: list[Verdict]
    agents: list[Verdict]
    default_problem: Problem | None = None
    error: str | None = None


@dataclass(frozen=True)
class Candidate:
    """An AgentConfig's part of the config, checked: its current spec or its last good one."""

    name: str
    origin: Origin
    config: AgentConfig  # without defaultAgent
    default_agent: str | None
    current: bool


Check = Callable[[Mapping[str, Any]], tuple[BaseModel | None, list[Problem]]]
"""Checks a resource's spec (its current one or its last good one): the entry, or problems."""


def _dump(spec: BaseModel) -> dict[str, Any]:
    return spec.model_dump(mode="json", by_alias=True)


def _judged(resource: Resource, check: Check, served: Served) -> Verdict:
    """``check(body) -> (spec | None, problems)`` on the current spec, then on the last good."""
    spec, problems = check(resource.spec)
    if spec is not None:
        return Verdict(resource, [], Entry(Origin(resource.uid, resource.generation), _dump(spec)))
    last = served.entry(resource.kind, resource.name, resource.uid)
    if last is None or last.origin.generation == resource.generation:
        return Verdict(resource, problems)
    kept, kept_problems = check(last.body())
    if kept is None:
        return Verdict(resource, problems, None, kept_problems)
    return Verdict(resource, problems, Entry(last.origin, _dump(kept)))


def _judge_all(
    resources: Sequence[Resource],
    taken: Mapping[str, str],
    check_of: Callable[[Resource], Check],
    served: Served,
) -> list[Verdict]:
    """Each resource, by name: refused when ``taken`` has its name (why), else judged."""
    verdicts = []
    for resource in sorted(resources, key=lambda r: r.name):
        if resource.name in taken:
            conflict = Problem("metadata.name", "NameConflict", taken[resource.name])
            verdicts.append(Verdict(resource, [conflict]))
        else:
            verdicts.append(_judged(resource, check_of(resource), served))
    return verdicts


def _server_verdicts(
    candidate: Candidate,
    resources: Sequence[Resource],
    served: Served,
    cluster: Cluster,
    policy: Policy,
) -> list[Verdict]:
    taken = {
        server.name: f"AgentConfig {candidate.name} has an mcpServers entry {server.name!r}: "
        "rename this MCPServer"
        for server in candidate.config.mcp_servers
    }

    def check_of(resource: Resource) -> Check:
        return partial(_check_server, resource.name, cluster=cluster, policy=policy)

    return _judge_all(resources, taken, check_of, served)


def _check_server(
    name: str, body: Mapping[str, Any], *, cluster: Cluster, policy: Policy
) -> tuple[BaseModel | None, list[Problem]]:
    return check_mcp_server(name, body, cluster, policy)


def _reference_reason(loc: Loc) -> str:
    if loc[-1] == "model":
        return "UnknownModel"
    if loc[-1] == "server":
        return "UnknownMCPServer"
    if "http" in loc:
        return "UnknownTool"
    return "InvalidSpec"


def _check_agent(
    name: str,
    body: Mapping[str, Any],
    *,
    context: AgentConfig,
    refused_servers: Mapping[str, str],
) -> tuple[BaseModel | None, list[Problem]]:
    """An Agent's own fields, then what it names in ``context`` (the AgentConfig with the MCP
    servers actually served); a server refused as an MCPServer says why."""
    spec, problems = check_agent(name, body)
    if spec is None:
        return None, problems
    for loc, message in agent_references(context, ("spec",), spec):
        reason = _reference_reason(loc)
        server = spec.tools.mcp[int(loc[-2])].server if reason == "UnknownMCPServer" else ""
        text = message
        if reason == "UnknownMCPServer":
            why = refused_servers.get(server)
            text += f" (MCPServer {server!r} is not served: {why})" if why else " nor an MCPServer"
        problems.append(Problem(format_path(loc), reason, text))
    return (None if problems else spec), problems


def _agent_verdicts(
    candidate: Candidate,
    resources: Sequence[Resource],
    context: AgentConfig,
    refused_servers: Mapping[str, str],
    served: Served,
) -> list[Verdict]:
    config = candidate.config
    why = {agent.name: "the AgentConfig lists an agent of that name" for agent in config.agents}
    if not config.agents:
        why[DEFAULT_AGENT] = "it is the AgentConfig's own agent (it lists no agents)"
    for model in config.model_names:
        why.setdefault(model, "it is the name of a model of the AgentConfig")
    taken = {
        name: f"{name!r} cannot name an Agent: {reason} (AgentConfig {candidate.name})"
        for name, reason in why.items()
    }

    def check_of(resource: Resource) -> Check:
        return partial(
            _check_agent, resource.name, context=context, refused_servers=refused_servers
        )

    return _judge_all(resources, taken, check_of, served)


def _names(items: Iterable[Any]) -> list[str]:
    return [str(item["name"] if isinstance(item, dict) else item.name) for item in items]


def compose(
    candidate: Candidate,
    agents: Sequence[Resource],
    servers: Sequence[Resource],
    *,
    served: Served,
    cluster: Cluster,
    policy: Policy,
) -> Composition:
    """The config of ``candidate`` with the Agents and MCPServers that can join it."""
    config = candidate.config
    server_verdicts = _server_verdicts(candidate, servers, served, cluster, policy)
    server_verdicts = _within(server_verdicts, "mcp_servers", len(config.mcp_servers))
    joined_servers = [v.served.spec for v in server_verdicts if v.served is not None]
    refused = {v.resource.name: describe(v.problems) for v in server_verdicts if v.served is None}
    context = config.model_copy(
        update={
            "mcp_servers": [
                *config.mcp_servers,
                *(McpServerSpec.model_validate(s) for s in joined_servers),
            ]
        }
    )
    agent_verdicts = _agent_verdicts(candidate, agents, context, refused, served)
    # With resources joining, an AgentConfig listing no agents has its own written out.
    agent_verdicts = _within(agent_verdicts, "agents", max(len(config.agents), 1))
    joined_agents = [v.served.spec for v in agent_verdicts if v.served is not None]
    own_agents = [a.model_dump(mode="json", by_alias=True) for a in config.agents]
    implicit = not own_agents and bool(joined_agents or joined_servers)
    if implicit:
        own_agents = [config.implicit_agent_spec().model_dump(mode="json", by_alias=True)]
    all_agents = [*own_agents, *joined_agents]
    default, default_problem = _default(candidate, _names(all_agents))
    spec = {
        **config.model_dump(mode="json", by_alias=True),
        "mcpServers": [*(s.model_dump(mode="json", by_alias=True) for s in config.mcp_servers),
                       *joined_servers],
        "agents": all_agents,
        "defaultAgent": default,
    }  # fmt: skip
    rendered = Rendered(
        agentconfig=candidate.name,
        origin=candidate.origin,
        default_agent=candidate.default_agent,
        implicit_default=implicit,
        agents=_origins(agent_verdicts),
        servers=_origins(server_verdicts),
    )
    try:
        composed = AgentConfig.model_validate(spec)
    except ValidationError as exc:  # not expected: every part was checked against the others
        error = "; ".join(f"{path}: {why}" for path, why in validation_errors(exc))
        return Composition(None, rendered, server_verdicts, agent_verdicts, default_problem, error)
    return Composition(composed, rendered, server_verdicts, agent_verdicts, default_problem)


def _within(verdicts: list[Verdict], field: str, own: int) -> list[Verdict]:
    """The verdicts with those served beyond the config model's bound on ``field`` (``own``
    entries being the AgentConfig's) refused, in name order: one resource too many must not
    make the whole config invalid."""
    info = AgentConfig.model_fields[field]
    bound: int = next(m.max_length for m in info.metadata if hasattr(m, "max_length"))
    limit = Problem(
        "metadata.name",
        "LimitExceeded",
        f"the config holds at most {bound} {info.alias} entries ({own} of them the "
        "AgentConfig's); "
        "the resources beyond, in name order, are not served",
    )
    out = []
    room = bound - own
    for verdict in verdicts:
        if verdict.served is not None:
            room -= 1
        if verdict.served is None or room >= 0:
            out.append(verdict)
        elif verdict.accepted:
            out.append(Verdict(verdict.resource, [limit]))
        else:
            out.append(Verdict(verdict.resource, verdict.problems, None, [limit]))
    return out


def _origins(verdicts: Sequence[Verdict]) -> dict[str, Origin]:
    return {v.resource.name: v.served.origin for v in verdicts if v.served is not None}


def _default(candidate: Candidate, names: list[str]) -> tuple[str | None, Problem | None]:
    """``defaultAgent`` if it names one of ``agents`` (as the config model wants: a config
    listing no agents has none to name), else why not."""
    wanted = candidate.default_agent
    if wanted is None or wanted in names:
        return wanted, None
    known = ", ".join(names) or "none: the AgentConfig lists none and no Agent joined it"
    problem = Problem(
        "spec.defaultAgent", "UnknownAgent", f"{wanted!r} is not a served agent (agents: {known})"
    )
    return None, problem
