"""The composition root shared by the API and the worker: Redis, stores, LLM client, tools.

``Services.open`` runs inside the process's event loop (API lifespan; the worker's loop
thread) and builds every client once; ``Services.agent`` is the agent for the config in force.
``apply_config`` swaps in an agent for a new config (hot reload): a run reads ``agent`` once
when it starts, so runs in flight finish with the config they started with.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import aiohttp

from agent_service.agent.loop import Agent
from agent_service.agent.ports import RunObserver, Tool
from agent_service.agent.tools.registry import build_toolset
from agent_service.config import Settings
from agent_service.domain.agent_config import AgentConfig, ConfigVersion
from agent_service.domain.callers import Caller
from agent_service.httptools.client import build_http_tools, create_tool_session
from agent_service.llm import LiteLLMClient
from agent_service.observability.metrics import Metrics
from agent_service.observability.observer import MetricsObserver
from agent_service.store.cache import RedisResponseCache
from agent_service.store.client import Redis, create_redis
from agent_service.store.keys import Keys
from agent_service.store.limits import Limiter, RedisRunGuard
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
    limiter: Limiter
    cache: RedisResponseCache
    version: ConfigVersion
    agent: Agent
    metrics: Metrics
    tool_sessions: list[aiohttp.ClientSession] = field(default_factory=list)
    _retired: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def config(self) -> AgentConfig:
        """The agent config in force (that of ``agent``)."""
        return self.agent.config

    @classmethod
    async def open(
        cls,
        settings: Settings,
        config: AgentConfig | ConfigVersion,
        metrics: Metrics | None = None,
    ) -> Services:
        client = create_redis(settings.redis)
        keys = Keys(settings.redis.key_prefix)
        store = TaskStore(client, keys, settings.tasks.ttl_seconds, settings.tasks.events_max)
        memory = RedisSessionMemory(client, keys, settings.tasks.ttl_seconds)
        llm = LiteLLMClient(secrets_dir=settings.config.secrets_dir)
        version = config if isinstance(config, ConfigVersion) else ConfigVersion.of(config, 1)
        services = cls(
            settings=settings,
            redis=client,
            keys=keys,
            store=store,
            memory=memory,
            llm=llm,
            limiter=Limiter(client, keys),
            cache=RedisResponseCache(client, keys),
            version=version,
            agent=None,  # type: ignore[arg-type]  # set just below
            metrics=metrics or Metrics(enabled=settings.metrics.enabled),
        )
        services.agent, sessions = services.build_agent(version)
        services.tool_sessions = sessions
        services._prime_metrics(version.config)
        services.metrics.set_config(version.generation, version.hash)
        return services

    def build_agent(self, version: ConfigVersion) -> tuple[Agent, list[aiohttp.ClientSession]]:
        """An agent for ``version`` and the HTTP sessions its tools hold (guarded against
        SSRF); the caller owns the sessions."""
        config = version.config
        http_tools: list[Tool] = []
        sessions: list[aiohttp.ClientSession] = []
        if config.tools.http:
            session = create_tool_session(config.tools.allow_private_networks)
            sessions.append(session)
            http_tools = build_http_tools(
                config.tools.http,
                allow_private_networks=config.tools.allow_private_networks,
                session=session,
            )
        tools = build_toolset(config.tools, http_tools)
        observer: RunObserver = MetricsObserver(self.metrics, frozenset(tools))
        agent = Agent(
            config,
            self.llm,
            tools,
            self.memory,
            observer,
            capture_content=self.settings.tracing.capture_content,
            generation=version.generation,
            cache=self.cache,
        )
        return agent, sessions

    def guard(self, caller: Caller, task_id: str | None = None) -> RedisRunGuard | None:
        """The between-steps guard of a run for ``caller`` (a task's also watches its cancel
        flag); None when there is nothing to check."""
        limits = self.config.limits_for(caller.tenant)
        cancel_key = self.keys.cancel(task_id) if task_id is not None else None
        guard = RedisRunGuard(self.limiter, self.redis, caller, limits, cancel_key)
        return guard if guard.needed else None

    def apply_config(self, version: ConfigVersion) -> None:
        """Serve new runs with ``version``; runs in flight keep the agent they started with.

        Called on the event loop by the config reloader. The previous agent's HTTP-tool
        sessions are closed once its runs can no longer be running (after the run timeout).
        """
        agent, sessions = self.build_agent(version)
        previous, self.tool_sessions = self.tool_sessions, sessions
        self.agent, self.version = agent, version
        self._prime_metrics(version.config)
        self.metrics.set_config(version.generation, version.hash)
        if previous:
            grace = self.agent.config.limits.run_timeout_seconds + 30
            task = asyncio.get_running_loop().create_task(_close_later(previous, grace))
            self._retired.add(task)
            task.add_done_callback(self._retired.discard)

    def _prime_metrics(self, config: AgentConfig) -> None:
        self.metrics.prime(
            self.settings.worker.queue,
            [(m.name, m.provider) for m in config.models],
            self.agent.tool_names,
            [(m.name, fallback) for m in config.models for fallback in m.fallbacks],
        )

    async def close(self) -> None:
        for task in list(self._retired):
            task.cancel()
        for session in self.tool_sessions:
            await session.close()
        await self.llm.aclose()
        await self.redis.aclose()


async def _close_later(sessions: list[aiohttp.ClientSession], delay: float) -> None:
    try:
        await asyncio.sleep(delay)
    finally:  # also when cancelled at shutdown
        for session in sessions:
            await session.close()
