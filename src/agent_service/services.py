"""The composition root shared by the API and the worker: Redis, stores, LLM client, tools.

``Services.open`` runs inside the process's event loop (API lifespan; the worker's loop
thread) and builds every client once; ``Services.agent`` is the agent for the config in force.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp

from agent_service.agent.loop import Agent
from agent_service.agent.ports import RunObserver, Tool
from agent_service.agent.tools.registry import build_toolset
from agent_service.config import Settings
from agent_service.domain.agent_config import AgentConfig
from agent_service.httptools.client import build_http_tools, create_tool_session
from agent_service.llm import LiteLLMClient
from agent_service.observability.metrics import Metrics
from agent_service.observability.observer import MetricsObserver
from agent_service.store.client import Redis, create_redis
from agent_service.store.keys import Keys
from agent_service.store.sessions import RedisSessionMemory
from agent_service.store.tasks import TaskStore


@dataclass
class Services:
    settings: Settings
    redis: Redis
    keys: Keys
    store: TaskStore
    memory: RedisSessionMemory
    llm: LiteLLMClient
    config: AgentConfig
    agent: Agent
    metrics: Metrics
    tool_sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    @classmethod
    async def open(
        cls, settings: Settings, config: AgentConfig, metrics: Metrics | None = None
    ) -> Services:
        client = create_redis(settings.redis)
        keys = Keys(settings.redis.key_prefix)
        store = TaskStore(client, keys, settings.tasks.ttl_seconds, settings.tasks.events_max)
        memory = RedisSessionMemory(client, keys, settings.tasks.ttl_seconds)
        llm = LiteLLMClient()
        services = cls(
            settings=settings,
            redis=client,
            keys=keys,
            store=store,
            memory=memory,
            llm=llm,
            config=config,
            agent=None,  # type: ignore[arg-type]  # set just below
            metrics=metrics or Metrics(),
        )
        services.agent = services.build_agent(config)
        services.metrics.prime(
            settings.worker.queue,
            [(m.name, m.provider) for m in config.models],
            services.agent.tool_names,
            [(m.name, fallback) for m in config.models for fallback in m.fallbacks],
        )
        return services

    def build_agent(self, config: AgentConfig) -> Agent:
        """An agent for ``config`` (HTTP tools get a session guarded against SSRF)."""
        http_tools: list[Tool] = []
        if config.tools.http:
            session = create_tool_session(config.tools.allow_private_networks)
            self.tool_sessions.append(session)
            http_tools = build_http_tools(
                config.tools.http,
                allow_private_networks=config.tools.allow_private_networks,
                session=session,
            )
        tools = build_toolset(config.tools, http_tools)
        observer: RunObserver = MetricsObserver(self.metrics, frozenset(tools))
        return Agent(
            config,
            self.llm,
            tools,
            self.memory,
            observer,
            capture_content=self.settings.tracing.capture_content,
        )

    async def close(self) -> None:
        for session in self.tool_sessions:
            await session.close()
        await self.llm.aclose()
        await self.redis.aclose()
