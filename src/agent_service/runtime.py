"""The process runtime: what an API or a worker process builds once and closes at the end.

``open_runtime`` is the one start-up routine of both (the API's lifespan enters it, the worker
enters it on its event-loop thread): it opens Redis and the stores, builds the snapshot of the
agent config in force, starts the config reloader, and on exit closes all of it in reverse
order. ``Runtime`` is frozen; the one thing that changes while it is open is the config
snapshot, which ``ConfigHolder`` swaps on a hot reload. Routes and the worker take the fields
they need (``api.deps``, ``worker.execution``), never the whole runtime.

A ``Snapshot`` is everything built from one config version: its named agents, their LLM client
and the HTTP sessions of their tools. A run reads the snapshot once when it starts and finishes
with it; a retired snapshot's sessions are closed once no run can still be using them (after
the run timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import aiohttp

from agent_service.agent.loop import Agent
from agent_service.agent.ports import RunObserver, Tool
from agent_service.agent.tools.registry import build_toolset
from agent_service.agentconfig.model import AgentConfig, ConfigVersion
from agent_service.agentconfig.reload import Adjust, ConfigReloader
from agent_service.egress.session import create_guarded_session
from agent_service.httptools.client import build_http_tools
from agent_service.llm import LiteLLMClient, close_llm_clients
from agent_service.observability.metrics import Metrics
from agent_service.observability.observer import MetricsObserver
from agent_service.settings import Settings
from agent_service.store.cache import RedisResponseCache
from agent_service.store.client import Redis, create_redis
from agent_service.store.keys import Keys
from agent_service.store.limits import Limiter, RunGuards
from agent_service.store.sessions import RedisSessionMemory
from agent_service.store.tasks import TaskStore

log = logging.getLogger(__name__)

RETIRE_MARGIN_SECONDS = 30.0
"""Added to the run timeout before a retired snapshot's sessions are closed."""


@dataclass(frozen=True)
class Snapshot:
    """What one config version runs with. Read once by a run when it starts."""

    version: ConfigVersion
    agents: Mapping[str, Agent]
    """The named agents, by name (``default`` alone for a config without ``agents:``)."""
    default_agent: str
    sessions: tuple[aiohttp.ClientSession, ...] = ()
    """HTTP sessions of the snapshot's tools (closed when the snapshot is retired)."""

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


class ConfigHolder:
    """The config snapshot in force. ``apply`` (on the event loop) swaps in a new one; runs in
    flight keep theirs, whose sessions close after the run timeout."""

    def __init__(
        self,
        build: SnapshotBuilder,
        first: ConfigVersion,
        on_applied: Callable[[Snapshot], None],
    ) -> None:
        self._build = build
        self._on_applied = on_applied
        self._current = build(first)
        self._retiring: set[asyncio.Task[None]] = set()
        on_applied(self._current)

    @property
    def current(self) -> Snapshot:
        return self._current

    def apply(self, version: ConfigVersion) -> None:
        """Serve new runs with ``version`` (called by the reloader on the event loop)."""
        previous, self._current = self._current, self._build(version)
        self._on_applied(self._current)
        if previous.sessions:
            grace = previous.config.limits.run_timeout_seconds + RETIRE_MARGIN_SECONDS
            task = asyncio.get_running_loop().create_task(_close_later(previous.sessions, grace))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def close(self) -> None:
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        await _close_sessions(self._current.sessions)


@dataclass(frozen=True)
class Runtime:
    """The long-lived objects of one process, built by ``open_runtime``."""

    settings: Settings
    metrics: Metrics
    redis: Redis
    keys: Keys
    tasks: TaskStore
    limiter: Limiter
    guards: RunGuards
    configs: ConfigHolder

    @property
    def snapshot(self) -> Snapshot:
        """The config snapshot in force now."""
        return self.configs.current


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    version: ConfigVersion,
    metrics: Metrics,
    *,
    adjust: Adjust | None = None,
) -> AsyncIterator[Runtime]:
    """Open the runtime of this process inside its event loop; close it all on exit.

    ``version`` is the config in force at start; the file it came from (if any) is watched and
    each valid new version applied (``adjust`` may rewrite it first: the worker caps the run
    timeout at what its broker visibility timeout allows).
    """
    redis = create_redis(settings.redis)
    keys = Keys(settings.redis.key_prefix)
    memory = RedisSessionMemory(redis, keys, settings.tasks.ttl_seconds)
    cache = RedisResponseCache(redis, keys)
    limiter = Limiter(redis, keys)

    def build(config_version: ConfigVersion) -> Snapshot:
        return build_snapshot(config_version, settings, metrics, memory, cache)

    def announce(snapshot: Snapshot) -> None:
        config = snapshot.config
        metrics.prime(
            settings.worker.queue,
            [(m.name, m.provider) for m in config.models],
            snapshot.tool_names(),
            [(m.name, fallback) for m in config.models for fallback in m.fallbacks],
            agents=list(snapshot.agents),
        )
        metrics.set_config(snapshot.version.generation, snapshot.version.hash)

    configs = ConfigHolder(build, version, announce)
    runtime = Runtime(
        settings=settings,
        metrics=metrics,
        redis=redis,
        keys=keys,
        tasks=TaskStore(redis, keys, settings.tasks.ttl_seconds, settings.tasks.events_max),
        limiter=limiter,
        guards=RunGuards(limiter, redis, keys),
        configs=configs,
    )
    reloading = _start_reloader(settings, configs, metrics, adjust)
    try:
        yield runtime
    finally:
        if reloading is not None:
            reloading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reloading
        await configs.close()
        await close_llm_clients()
        await redis.aclose()


def build_snapshot(
    version: ConfigVersion,
    settings: Settings,
    metrics: Metrics,
    memory: RedisSessionMemory,
    cache: RedisResponseCache,
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
    llm = LiteLLMClient.for_config(config, secrets_dir=settings.config.secrets_dir)
    toolsets = {
        name: build_toolset(profile.tools, http) for name, profile in config.profiles().items()
    }
    known = frozenset(name for toolset in toolsets.values() for name in toolset)
    observer: RunObserver = MetricsObserver(metrics, known.__contains__)
    agents = {
        name: Agent(
            profile,
            config,
            llm,
            toolsets[name],
            memory=memory,
            observer=observer,
            capture_content=settings.tracing.capture_content,
            generation=version.generation,
            cache=cache,
        )
        for name, profile in config.profiles().items()
    }
    return Snapshot(
        version=version,
        agents=agents,
        default_agent=config.default_agent_name,
        sessions=tuple(sessions),
    )


def _start_reloader(
    settings: Settings, configs: ConfigHolder, metrics: Metrics, adjust: Adjust | None
) -> asyncio.Task[None] | None:
    """Watch the config file (if any) on this loop; None when reload is off."""
    path, interval = settings.config.file, settings.config.reload_interval_seconds
    if path is None or interval <= 0:
        return None
    reloader = ConfigReloader(
        path,
        current=configs.current.version,
        apply=configs.apply,
        count=metrics.config_reload,
        interval=interval,
        adjust=adjust,
    )
    return asyncio.get_running_loop().create_task(reloader.run(), name="config-reloader")


async def _close_sessions(sessions: tuple[aiohttp.ClientSession, ...]) -> None:
    for session in sessions:
        await session.close()


async def _close_later(sessions: tuple[aiohttp.ClientSession, ...], delay: float) -> None:
    try:
        await asyncio.sleep(delay)
    finally:  # also when cancelled at shutdown
        await _close_sessions(sessions)
