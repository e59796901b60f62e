"""Cross-field checks of an agent config: every name it uses names something it declares.

Called by ``AgentConfig``'s validator once each field is valid on its own. Each problem comes
with its path on the wire (``agents[1].model``), so ``config validate``, the reloader's log line
and the controller's status say exactly where the config is wrong. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from agent_service.agentconfig.knowledge import search_tool_name
from agent_service.agentconfig.mcp import offers
from agent_service.agentconfig.spec import Loc

if TYPE_CHECKING:
    from agent_service.agentconfig.agents import AgentSpec
    from agent_service.agentconfig.model import AgentConfig

BUILTIN_TOOL_NAMES = frozenset({"calculator", "current_time"})
MCP_SEPARATOR = "__"
"""Between a server's name and its tool's in the name the model calls (``orders__lookup``)."""

Problem = tuple[Loc, str]


def reference_problems(config: AgentConfig) -> list[Problem]:
    """Every dangling or duplicate name in ``config`` (empty when it is consistent)."""
    return [
        *_model_problems(config),
        *_duplicates(("tenants",), [t.name for t in config.tenants], "tenant"),
        *_tool_problems(config),
        *_duplicates(("mcpServers",), [s.name for s in config.mcp_servers], "MCP server"),
        *_knowledge_problems(config),
        *_agent_problems(config),
    ]


def _duplicates(
    loc: Loc, names: Iterable[str], what: str, field: str | None = "name"
) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            at: Loc = (*loc, index) if field is None else (*loc, index, field)
            yield at, f"duplicate {what} name {name!r}"
        seen.add(name)


def _model_problems(config: AgentConfig) -> Iterator[Problem]:
    names = set(config.model_names)
    yield from _duplicates(("models",), config.model_names, "model")
    if config.default_model not in names:
        yield ("defaultModel",), f"{config.default_model!r} is not a configured model"
    for index, spec in enumerate(config.models):
        for position, fallback in enumerate(spec.fallbacks):
            loc: Loc = ("models", index, "fallbacks", position)
            if fallback == spec.name:
                yield loc, f"model {spec.name!r} lists itself as a fallback"
            elif fallback not in names:
                yield loc, f"fallback {fallback!r} is not a configured model"
    if config.router.enabled and config.router.model not in names:
        yield ("router", "model"), f"{config.router.model!r} is not a configured model"
    yield from _model_kind_problems(config)


def _model_kind_problems(config: AgentConfig) -> Iterator[Problem]:
    """Agents call chat models; knowledge bases embed with embedding models, which have no
    fallbacks (two models' vectors do not compare)."""
    embedding = {m.name for m in config.models if m.kind == "embedding"}
    if config.default_model in embedding:
        yield ("defaultModel",), f"{config.default_model!r} is an embedding model"
    if config.router.enabled and config.router.model in embedding:
        yield ("router", "model"), f"{config.router.model!r} is an embedding model"
    for index, spec in enumerate(config.models):
        if spec.kind == "embedding" and spec.fallbacks:
            yield (
                ("models", index, "fallbacks"),
                "an embedding model has no fallbacks: another model's vectors do not compare",
            )
            continue
        for position, fallback in enumerate(spec.fallbacks):
            if fallback in embedding:
                loc: Loc = ("models", index, "fallbacks", position)
                yield loc, f"fallback {fallback!r} is an embedding model"


def _knowledge_problems(config: AgentConfig) -> Iterator[Problem]:
    """Each knowledge base once, embedded by a configured embedding model, its search tool
    name free."""
    yield from _duplicates(
        ("knowledgeBases",), [kb.name for kb in config.knowledge_bases], "knowledge base"
    )
    kinds = {m.name: m.kind for m in config.models}
    embedding = sorted(name for name, kind in kinds.items() if kind == "embedding")
    http = {tool.name for tool in config.tools.http}
    for index, kb in enumerate(config.knowledge_bases):
        loc: Loc = ("knowledgeBases", index)
        kind = kinds.get(kb.embedding_model)
        if kind is None:
            known = ", ".join(embedding) or "none: give a model kind: embedding"
            yield (
                (*loc, "embeddingModel"),
                f"{kb.embedding_model!r} is not a configured model (embedding models: {known})",
            )
        elif kind != "embedding":
            yield (
                (*loc, "embeddingModel"),
                f"{kb.embedding_model!r} is a chat model; a knowledge base needs kind: embedding",
            )
        if search_tool_name(kb.name) in http:
            yield (*loc, "name"), f"{search_tool_name(kb.name)!r} is also an HTTP tool's name"


def _tool_problems(config: AgentConfig) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, tool in enumerate(config.tools.http):
        loc: Loc = ("tools", "http", index, "name")
        if tool.name in BUILTIN_TOOL_NAMES:
            yield loc, f"{tool.name!r} is the name of a built-in tool"
        elif tool.name in seen:
            yield loc, f"duplicate tool name {tool.name!r}"
        seen.add(tool.name)


def _agent_problems(config: AgentConfig) -> Iterator[Problem]:
    yield from _duplicates(("agents",), [a.name for a in config.agents], "agent")
    names = {a.name for a in config.agents}
    if config.default_agent is not None and config.default_agent not in names:
        known = ", ".join(sorted(names)) or "none: the config lists no agents"
        yield ("defaultAgent",), f"{config.default_agent!r} is not an agent (agents: {known})"
    models = set(config.model_names)
    for index, agent in enumerate(config.agents):
        if agent.name in models:
            # /v1/chat/completions takes an agent or a model in `model`: one name, one meaning
            yield ("agents", index, "name"), f"{agent.name!r} is also the name of a model"
        yield from agent_references(config, ("agents", index), agent)


def agent_references(config: AgentConfig, loc: Loc, agent: AgentSpec) -> Iterator[Problem]:
    """What ``agent`` (at ``loc``) names that ``config`` does not declare: its model (a chat
    model), HTTP tools, MCP servers, knowledge bases; and a response format that is no JSON
    schema. The controller checks an Agent resource with it against the config it would join."""
    if agent.model is not None and agent.model not in config.model_names:
        known = ", ".join(config.model_names)
        yield (*loc, "model"), f"{agent.model!r} is not a configured model (models: {known})"
    elif agent.model is not None and config.model(agent.model).kind == "embedding":
        yield (*loc, "model"), f"{agent.model!r} is an embedding model"
    http = {tool.name for tool in config.tools.http}
    for position, name in enumerate(agent.tools.http):
        if name not in http:
            yield (*loc, "tools", "http", position), f"{name!r} is not a tools.http entry"
    servers = {server.name for server in config.mcp_servers}
    for position, ref in enumerate(agent.tools.mcp):
        if ref.server not in servers:
            yield (
                (*loc, "tools", "mcp", position, "server"),
                f"{ref.server!r} is not an mcpServers entry",
            )
    bases = {kb.name for kb in config.knowledge_bases}
    yield from _duplicates((*loc, "knowledge"), agent.knowledge, "knowledge base", None)
    for position, name in enumerate(agent.knowledge):
        if name not in bases:
            known = ", ".join(sorted(bases)) or "none"
            yield (
                (*loc, "knowledge", position),
                f"{name!r} is not a knowledgeBases entry (knowledge bases: {known})",
            )
    if agent.response_format is not None:
        problem = _schema_problem(agent.response_format)
        if problem is not None:
            yield (*loc, "responseFormat"), problem
    yield from _approval_problems((*loc, "approvals", "tools"), agent)


def _approval_problems(loc: Loc, agent: AgentSpec) -> Iterator[Problem]:
    """Each gated tool must be one of the agent's tools, once; each rule a JSON schema."""
    yield from _duplicates(
        loc, [entry.tool for entry in agent.approvals.tools], "gated tool", "tool"
    )
    for position, entry in enumerate(agent.approvals.tools):
        reason = _not_a_tool_of(agent, entry.tool)
        if reason is not None:
            yield (*loc, position, "tool"), reason
        if entry.rule is not None:
            problem = _schema_problem(entry.rule)
            if problem is not None:
                yield (*loc, position, "rule"), problem


def _not_a_tool_of(agent: AgentSpec, name: str) -> str | None:
    """Why ``name`` is not a tool ``agent`` is offered, or None. An MCP tool is known by its
    server (tools are discovered at run time): ``<server>__<tool>`` with a server the agent
    uses and a tool its include/exclude filter lets through."""
    tools = agent.tools
    if name in BUILTIN_TOOL_NAMES:
        enabled = {"calculator": tools.calculator, "current_time": tools.current_time}[name]
        return None if enabled else f"the built-in {name!r} is not one of this agent's tools"
    if name in tools.http:
        return None
    server, separator, tool = name.partition(MCP_SEPARATOR)
    if separator and tool:
        for ref in tools.mcp:
            if ref.server == server:
                if offers(tool, ref.include, ref.exclude):
                    return None
                return f"{tool!r} is filtered out of MCP server {server!r} by this agent"
    known = ", ".join(_tool_names(agent)) or "none"
    return (
        f"{name!r} is not one of this agent's tools (its tools: {known}; an MCP tool is "
        "named <server>__<tool>)"
    )


def _tool_names(agent: AgentSpec) -> list[str]:
    tools = agent.tools
    builtins = [name for name in sorted(BUILTIN_TOOL_NAMES) if getattr(tools, name)]
    return [*builtins, *tools.http, *(f"{ref.server}{MCP_SEPARATOR}*" for ref in tools.mcp)]


def _schema_problem(schema: dict[str, object]) -> str | None:
    """Why ``schema`` is not a usable JSON schema, or None."""
    from jsonschema import SchemaError  # noqa: PLC0415 - only configs with a schema pay for it
    from jsonschema.validators import validator_for  # noqa: PLC0415

    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        return f"not a valid JSON schema: {exc.message}"
    return None
