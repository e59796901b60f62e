"""FastAPI dependencies: narrow parts of the process runtime from the lifespan state (the config
snapshot, the task store, metrics, run guards, settings, the run history), the caller (API
key), run admission (rate limits and budgets), request checks. A route names only what it uses.

Dependencies are ``async def`` although none awaits: FastAPI runs a plain ``def`` dependency in
its thread pool, a thread handoff per dependency per request (measured: a quarter of the CPU
of ``POST /v1/tasks``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, Request

from agent_service.api.admission import RunGate
from agent_service.api.auth import KeyRing, presented_key
from agent_service.api.drain import Drain
from agent_service.api.errors import ApiError
from agent_service.api.sync_runs import SyncRunArchiver
from agent_service.domain.callers import ANONYMOUS, Caller
from agent_service.domain.errors import ErrorType
from agent_service.history.runtime import History
from agent_service.observability.metrics import Metrics
from agent_service.queue.producer import TaskQueue
from agent_service.runtime import Runtime, Snapshot
from agent_service.runtime.process import DurableStores
from agent_service.settings import Settings
from agent_service.store.client import Redis
from agent_service.store.history_outbox import HistoryOutbox
from agent_service.store.responses import ResponseStore
from agent_service.store.tasks import TaskStore

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="agent-service"'}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.state.runtime
    return runtime


async def get_settings(request: Request) -> Settings:
    return _runtime(request).settings


async def get_snapshot(request: Request) -> Snapshot:
    """The config snapshot in force when the request arrived: a run keeps it to its end."""
    return _runtime(request).configs.current


async def get_tasks(request: Request) -> TaskStore:
    return _runtime(request).tasks


async def get_durable(request: Request) -> DurableStores:
    """Step journals, approvals and session slots (durable runs)."""
    return _runtime(request).durable


async def get_redis(request: Request) -> Redis:
    return _runtime(request).redis


async def get_metrics(request: Request) -> Metrics:
    return _runtime(request).metrics


async def get_gate(request: Request) -> RunGate:
    gate: RunGate = request.state.run_gate
    return gate


async def get_responses(request: Request) -> ResponseStore:
    """Stored Responses and chat continuations (the OpenAI-compatible routes)."""
    store: ResponseStore = request.state.response_store
    return store


async def get_queue(request: Request) -> TaskQueue:
    queue: TaskQueue = request.state.task_queue
    return queue


async def get_drain(request: Request) -> Drain:
    drain: Drain = request.state.drain
    return drain


async def get_sync_runs(request: Request) -> SyncRunArchiver:
    archiver: SyncRunArchiver = request.state.sync_runs
    return archiver


async def get_optional_history(request: Request) -> History | None:
    """The run history, or None when it is off (the task routes fall back to it if on)."""
    return _runtime(request).history


@dataclass(frozen=True)
class HistoryAccess:
    """What the history routes use: the Postgres side and the Redis outbox in front of it."""

    history: History
    outbox: HistoryOutbox


HISTORY_DISABLED_MESSAGE = (
    "run history is off on this service: set AGENT_HISTORY_URL (a Postgres URL) to keep "
    "finished runs, list them, report usage and take feedback"
)


async def get_history(request: Request) -> HistoryAccess:
    """The run history; 404 ``history_disabled`` without ``AGENT_HISTORY_URL``."""
    runtime = _runtime(request)
    if runtime.history is None or runtime.history_outbox is None:
        raise ApiError(404, ErrorType.HISTORY_DISABLED, HISTORY_DISABLED_MESSAGE)
    return HistoryAccess(runtime.history, runtime.history_outbox)


async def require_json(request: Request) -> None:
    """415 unless the body is declared as JSON."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        raise ApiError(
            415,
            ErrorType.UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with content-type: application/json",
        )


async def get_caller(request: Request) -> Caller:
    """The caller of a /v1 request: its API key's tenant (401 without a valid key), or the
    anonymous ``default`` tenant when authentication is off."""
    if not _runtime(request).settings.auth.enabled:
        caller = ANONYMOUS
    else:
        keyring: KeyRing = request.state.keyring
        key = presented_key(request.headers.get("authorization"), request.headers.get("x-api-key"))
        if key is None:
            raise ApiError(
                401,
                ErrorType.UNAUTHORIZED,
                "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                headers=_CHALLENGE,
            )
        found = keyring.lookup(key)
        if found is None:
            raise ApiError(401, ErrorType.UNAUTHORIZED, "invalid API key", headers=_CHALLENGE)
        caller = found
    request.state.caller = caller
    structlog.contextvars.bind_contextvars(tenant=caller.tenant, key_id=caller.key_id)
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SnapshotDep = Annotated[Snapshot, Depends(get_snapshot)]
TasksDep = Annotated[TaskStore, Depends(get_tasks)]
DurableDep = Annotated[DurableStores, Depends(get_durable)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
RedisDep = Annotated[Redis, Depends(get_redis)]
GateDep = Annotated[RunGate, Depends(get_gate)]
QueueDep = Annotated[TaskQueue, Depends(get_queue)]
DrainDep = Annotated[Drain, Depends(get_drain)]
ResponsesDep = Annotated[ResponseStore, Depends(get_responses)]
SyncRunsDep = Annotated[SyncRunArchiver, Depends(get_sync_runs)]
HistoryDep = Annotated[HistoryAccess, Depends(get_history)]
OptionalHistoryDep = Annotated[History | None, Depends(get_optional_history)]
JsonBody = Depends(require_json)
