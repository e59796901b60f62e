"""Config snapshots: everything built from one config version, and how it is built.

A ``Snapshot`` holds the named agents of one config version, their LLM client and the HTTP
sessions of their tools. ``build_snapshot`` is called by ``ConfigHolder`` at start and on each
hot reload. MCP servers are the process's, not a snapshot's (``runtime.process``): agents read
the ``McpToolset``'s current tools when a run starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp

from agent_service.agent.loop import Agent
from agent_service.agent.ports import RunObserver, Tool, Toolbox
from agent_service.agent.tools.registry import build_toolset
from agent_service.agentconfig.agents import McpToolsRef
from agent_service.agentconfig.knowledge import search_tool_name
from agent_service.agentconfig.model import AgentConfig, ConfigVersion
from agent_service.egress.session import create_guarded_session
from agent_service.httptools.client import build_http_tools
from agent_service.knowledge.base import KnowledgeBase
from agent_service.llm import LiteLLMClient
from agent_service.mcptools import McpToolset
from agent_service.observability.metrics import Metrics
from agent_service.observability.observer import MetricsObserver
from agent_service.runtime.knowledge import KnowledgeHub, search_tools
from agent_service.settings import Settings
from agent_service.store.cache import RedisResponseCache
from agent_service.store.sessions import RedisSessionMemory


@dataclass(frozen=True)
class Snapshot:
    """What one config version runs with. Read once by a run when it starts."""

    version: ConfigVersion
    agents: Mapping[str, Agent]
    """The named agents, by name (``default`` alone for a config without ``agents:``)."""
    default_agent: str
    sessions: tuple[aiohttp.ClientSession, ...] = ()
    """HTTP sessions of the snapshot's tools (closed when the snapshot is retired)."""
    knowledge: Mapping[str, KnowledgeBase] = field(default_factory=dict)
    """The config's knowledge bases by name (the API's document routes, ingestion tasks)."""

    @property
    def config(self) -> AgentConfig:
        return self.version.config

    @property
    def agent(self) -> Agent:
        """The default agent."""
        return self.agents[self.default_agent]

    def agent_for(self, name: str | None, tenant: str) -> Agent | None:
        """Agent ``name`` (None: the default) if ``tenant`` may use it, else None (unknown and
        forbidden agents look alike to a caller)."""
        agent = self.agents.get(name or self.default_agent)
        if agent is None or not agent.profile.allows(tenant):
            return None
        return agent

    def tool_names(self) -> list[str]:
        """Every tool name any agent is offered now (for metrics' known label values)."""
        return sorted({name for agent in self.agents.values() for name in agent.tool_names})


SnapshotBuilder = Callable[[ConfigVersion], Snapshot]


def build_snapshot(
    version: ConfigVersion,
    *,
    settings: Settings,
    metrics: Metrics,
    memory: RedisSessionMemory,
    cache: RedisResponseCache,
    mcp: McpToolset,
    knowledge: KnowledgeHub,
) -> Snapshot:
    """The agents of ``version`` with their LLM client and tools, and the sessions they hold."""
    config = version.config
    http: dict[str, Tool] = {}
    sessions: list[aiohttp.ClientSession] = []
    if config.tools.http:
        allow_private = config.tools.allow_private_networks
        session = create_guarded_session(allow_private)
        sessions.append(session)
        built = build_http_tools(
            config.tools.http, allow_private_networks=allow_private, session=session
        )
        http = {tool.spec.name: tool for tool in built}
    llm = LiteLLMClient.for_config(
        config, secrets_dir=settings.config.secrets_dir, transport=settings.llm.transport
    )
    profiles = config.profiles()
    bases = knowledge.bases(config)
    searches = search_tools(bases)
    static = {
        name: {
            **build_toolset(profile.tools, http),
            **{search_tool_name(kb): searches[search_tool_name(kb)] for kb in profile.knowledge},
        }
        for name, profile in profiles.items()
    }
    known = frozenset(name for toolset in static.values() for name in toolset)

    def known_tool(name: str) -> bool:
        return name in known or any(tool.spec.name == name for tool in mcp.tools())

    observer: RunObserver = MetricsObserver(metrics, known_tool)
    agents = {
        name: Agent(
            profile,
            config,
            llm,
            _toolbox(static[name], profile.tools.mcp, mcp),
            memory=memory,
            observer=observer,
            capture_content=settings.tracing.capture_content,
            generation=version.generation,
            cache=cache,
        )
        for name, profile in profiles.items()
    }
    return Snapshot(
        version=version,
        agents=agents,
        default_agent=config.default_agent_name,
        sessions=tuple(sessions),
        knowledge=bases,
    )


def _toolbox(
    static: Mapping[str, Tool], refs: Sequence[McpToolsRef], mcp: McpToolset
) -> Toolbox | Mapping[str, Tool]:
    """An agent's tools: its static ones, plus the current tools of the MCP servers it names
    (read at each run's start: discovery adds and removes them)."""
    if not refs:
        return static

    def current() -> Mapping[str, Tool]:
        tools = dict(static)
        for ref in refs:
            try:
                found = mcp.tools_for(ref.server, ref.include, ref.exclude)
            except KeyError:  # a server this snapshot named left the config since
                continue
            tools.update((tool.spec.name, tool) for tool in found)
        return tools

    return current


async def close_sessions(sessions: tuple[aiohttp.ClientSession, ...]) -> None:
    for session in sessions:
        await session.close()


async def close_later(sessions: tuple[aiohttp.ClientSession, ...], delay: float) -> None:
    try:
        await asyncio.sleep(delay)
    finally:  # also when cancelled at shutdown
        await close_sessions(sessions)
