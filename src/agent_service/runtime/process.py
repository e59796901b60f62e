"""``open_runtime``: the one start-up routine of an API or a worker process.

The API's lifespan enters it (``async with``); the worker enters it on its event-loop thread and
leaves it at shutdown. It opens Redis and the stores, the run history (when
``AGENT_HISTORY_URL`` is set: its Postgres engine, which connects lazily, and the Redis outbox
finished runs wait on), the MCP toolset, the snapshot of the config in force and its reloader,
and on exit closes all of it in reverse order. ``Runtime`` is
frozen; routes and the worker take the fields they need (``api.deps``, ``worker.execution``),
never the whole runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from agent_service.agentconfig.model import ConfigVersion
from agent_service.agentconfig.reload import Adjust, ConfigReloader
from agent_service.agentconfig.secrets import resolve_secret
from agent_service.history.runtime import History, open_history
from agent_service.llm import close_llm_clients
from agent_service.mcptools import McpToolset
from agent_service.observability.metrics import Metrics
from agent_service.runtime.configs import ConfigHolder
from agent_service.runtime.knowledge import KnowledgeHub
from agent_service.runtime.snapshot import Snapshot, build_snapshot
from agent_service.settings import Settings
from agent_service.store.approvals import ApprovalStore
from agent_service.store.cache import RedisResponseCache
from agent_service.store.client import Redis, create_redis
from agent_service.store.history_outbox import HistoryOutbox
from agent_service.store.journal import JournalStore
from agent_service.store.keys import Keys
from agent_service.store.limits import Limiter, RunGuards
from agent_service.store.session_slots import SessionSlots
from agent_service.store.sessions import RedisSessionMemory
from agent_service.store.tasks import TaskStore


@dataclass(frozen=True)
class DurableStores:
    """What durable runs keep next to their task records: step journals, approvals, and the
    session slots of ``multitask`` (docs/durability.md)."""

    journals: JournalStore
    approvals: ApprovalStore
    slots: SessionSlots

    @classmethod
    def open(cls, redis: Redis, keys: Keys, tasks: TaskStore) -> DurableStores:
        journals = JournalStore(redis, keys, tasks.ttl_seconds, tasks.events_max)
        return cls(
            journals=journals,
            approvals=ApprovalStore(redis, keys, tasks, journals),
            slots=SessionSlots(redis, keys, tasks.ttl_seconds),
        )


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
    durable: DurableStores
    history: History | None = None
    """Run history in Postgres; None when history is off (no ``AGENT_HISTORY_URL``)."""
    history_outbox: HistoryOutbox | None = None
    """Finished runs waiting to be archived; None when history is off."""
    knowledge_store: bool = False
    """Whether a vector store is configured (``AGENT_KNOWLEDGE_CHROMA_URL`` or ``_PATH``)."""

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
    timeout at what its broker visibility timeout allows). ``HistoryConfigError`` when
    ``AGENT_HISTORY_URL`` is set but unusable (checked before anything opens).
    """
    async with (
        open_history(settings.history) as history,
        _open_runtime(settings, version, metrics, adjust, history) as runtime,
    ):
        yield runtime


@contextlib.asynccontextmanager
async def _open_runtime(
    settings: Settings,
    version: ConfigVersion,
    metrics: Metrics,
    adjust: Adjust | None,
    history: History | None,
) -> AsyncIterator[Runtime]:
    redis = create_redis(settings.redis)
    keys = Keys(settings.redis.key_prefix)
    memory = RedisSessionMemory(redis, keys, settings.tasks.ttl_seconds)
    cache = RedisResponseCache(redis, keys)
    limiter = Limiter(redis, keys)
    mcp = McpToolset(
        resolve_secret=lambda ref: resolve_secret(ref, settings.config.secrets_dir),
        metrics=metrics,
        refresh_interval_seconds=settings.mcp.refresh_interval_seconds,
        reconnect_initial_seconds=settings.mcp.reconnect_initial_seconds,
        reconnect_max_seconds=settings.mcp.reconnect_max_seconds,
    )

    knowledge = KnowledgeHub(
        settings.knowledge,
        metrics,
        secrets_dir=settings.config.secrets_dir,
        transport=settings.llm.transport,
    )

    def build(config_version: ConfigVersion) -> Snapshot:
        return build_snapshot(
            config_version, settings=settings, metrics=metrics, memory=memory, cache=cache, mcp=mcp,
            knowledge=knowledge,
        )  # fmt: skip

    def announce(snapshot: Snapshot) -> None:
        config = snapshot.config
        metrics.prime(
            settings.worker.queue,
            [(m.name, m.provider) for m in config.models],
            snapshot.tool_names(),
            [(m.name, fallback) for m in config.models for fallback in m.fallbacks],
            agents=list(snapshot.agents),
            gated_tools=[
                (name, tool)
                for name, agent in snapshot.agents.items()
                for tool in agent.approvals.tools
            ],
            feedback=history is not None,
        )
        metrics.set_config(snapshot.version.generation, snapshot.version.hash)

    configs = await ConfigHolder.open(build, version, announce, mcp)
    outbox = None
    if history is not None:
        outbox = HistoryOutbox(redis, keys, payload_ttl_seconds=settings.tasks.ttl_seconds)
    tasks = TaskStore(
        redis, keys, settings.tasks.ttl_seconds, settings.tasks.events_max, history=outbox
    )
    runtime = Runtime(
        settings=settings,
        metrics=metrics,
        redis=redis,
        keys=keys,
        tasks=tasks,
        limiter=limiter,
        guards=RunGuards(limiter, redis, keys),
        configs=configs,
        durable=DurableStores.open(redis, keys, tasks),
        history=history,
        history_outbox=outbox,
        knowledge_store=knowledge.mode != "none",
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
        await mcp.close()
        await knowledge.aclose()
        await close_llm_clients()
        await redis.aclose()


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
