"""The FastAPI app factory: the composition root of an API process.

``create_app(settings)`` builds nothing at import; its lifespan enters the process runtime
(``runtime.open_runtime``: Redis, stores, the config snapshot and its reloader) and the task
queue, and puts them in the lifespan state that ``api.deps`` reads. The app is traced
by OpenTelemetry's ASGI middleware (probes and ``/metrics`` excepted): one server span per
request, named after its route template, continuing an incoming ``traceparent``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from agent_service import __version__
from agent_service.agentconfig.load import load_config_version
from agent_service.agentconfig.model import AgentConfig, ConfigVersion
from agent_service.api.admission import RunGate
from agent_service.api.auth import KeyRing
from agent_service.api.drain import Drain, graceful_timeout
from agent_service.api.errors import install_error_handlers
from agent_service.api.middleware import RequestContextMiddleware, RouteTemplates
from agent_service.api.openapi import describe
from agent_service.api.routes import (
    agents,
    approvals,
    chat,
    health,
    history,
    knowledge,
    models,
    openai,
    responses,
    tasks,
)
from agent_service.api.routes import console as console_route
from agent_service.api.routes import metrics as metrics_route
from agent_service.api.routes.knowledge import DOCUMENTS_ROUTE, document_body_bytes
from agent_service.api.sync_runs import RUN_ID_HEADER, SyncRunArchiver
from agent_service.observability.exposition import scrape_registry
from agent_service.observability.metrics import Metrics
from agent_service.observability.tracing import flush_traces
from agent_service.queue.celery_app import create_celery_app
from agent_service.queue.producer import TaskQueue
from agent_service.queue.stats import QueueStatsReader
from agent_service.runtime import ConfigHolder, open_runtime
from agent_service.settings import Settings, metrics_token, multiprocess_metrics_dir
from agent_service.store.memory import AdmissionByMemory, MemoryWatch
from agent_service.store.replication import ReplicaAck
from agent_service.store.responses import ResponseStore

log = logging.getLogger(__name__)

# Probes and scrapes are frequent and say nothing about a run: no spans for them (regexes
# searched in the request URL, which carries no query string).
UNTRACED_URLS = "/healthz$,/readyz$,/metrics$"


def _warn_about_auth(settings: Settings, keyring: KeyRing) -> None:
    if not settings.auth.enabled:
        log.warning(
            "AUTHENTICATION IS OFF (AGENT_AUTH_ENABLED=false): every caller is served as "
            "tenant 'default'. Never expose this API beyond a trusted network."
        )
    elif keyring.empty:
        log.warning(
            "no API keys are configured (AGENT_AUTH_KEYS_FILE, apiKeys in the agent config): "
            "every /v1 request will be refused with 401"
        )


def create_app(
    settings: Settings,
    config: AgentConfig | ConfigVersion | None = None,
    metrics: Metrics | None = None,
    scrape: CollectorRegistry | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """The API application.

    ``config`` defaults to the one ``settings`` points at; the file (if any) is watched and
    reloaded when it changes (by the runtime);
    ``metrics`` and ``scrape`` (the registry ``/metrics`` serves) default to this process's
    own, with the queue depth; ``tracer_provider`` to the global one
    (``observability.tracing.configure_tracing``).
    """
    if config is None:
        version = load_config_version(settings)
    elif isinstance(config, AgentConfig):
        version = ConfigVersion.of(config, 1)
    else:
        version = config
    app_metrics = metrics or Metrics(enabled=settings.metrics.enabled)
    app_metrics.build_info.labels(__version__).set(1)
    reader = QueueStatsReader(settings.redis, [settings.worker.queue])
    scrape_from = scrape or scrape_registry(app_metrics, multiprocess_metrics_dir(), reader.read)
    token = metrics_token(settings)
    # Begun by the server on SIGTERM (api.server); runs still going at its cutoff end cleanly.
    drain = Drain(graceful_timeout(settings, version.config.limits.run_timeout_seconds))

    running: list[ConfigHolder] = []  # the runtime's configs, for the OpenAPI description

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with open_runtime(settings, version, app_metrics) as runtime:
            running[:] = [runtime.configs]
            celery_app = create_celery_app(settings, version.config.limits.run_timeout_seconds)
            # New tasks are refused (503) before Redis is full: the runs in flight keep room.
            admission = AdmissionByMemory(
                MemoryWatch(runtime.redis), settings.redis.admit_memory_percent
            )
            replicas = ReplicaAck.of(runtime.redis, runtime.keys, settings.redis)
            queue = TaskQueue(
                runtime.redis,
                celery_app,
                runtime.tasks,
                admission=admission,
                replicas=replicas,
                slots=runtime.durable.slots,
            )
            keyring = KeyRing(settings.auth.keys_file, lambda: runtime.snapshot.config.api_keys)
            _warn_about_auth(settings, keyring)
            gate = RunGate(settings.api, runtime.limiter, runtime.guards, app_metrics)
            sync_runs = SyncRunArchiver(runtime.history_outbox, app_metrics)
            state = {
                "runtime": runtime,
                "run_gate": gate,
                "task_queue": queue,
                "response_store": ResponseStore(
                    runtime.redis, runtime.tasks.keys, runtime.tasks.ttl_seconds
                ),
                "scrape_registry": scrape_from,
                "keyring": keyring,
                "metrics_token": token,
                "drain": drain,
                "sync_runs": sync_runs,
            }
            try:
                yield state
            finally:
                await sync_runs.close()
                reader.close()
                flush_traces(tracer_provider)

    app = FastAPI(
        title="agent-service",
        version=__version__,
        description="Run LLM agents synchronously (`/v1/chat`) or as queued tasks (`/v1/tasks`).",
        lifespan=lifespan,
    )
    app.state.drain = drain
    app.openapi = describe(  # type: ignore[method-assign]
        app.openapi, settings, lambda: running[0].current if running else None
    )
    install_error_handlers(app)
    routers = (
        health.router,
        chat.router,
        tasks.router,
        approvals.router,
        history.router,
        models.router,
        agents.router,
        openai.router,
        responses.router,
        metrics_route.router,
        console_route.router,
        knowledge.router,
    )
    for router in routers:
        app.include_router(router)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "X-Trace-Id", RUN_ID_HEADER, "Location", "Retry-After"],
        )
    routes = RouteTemplates([*app.router.routes, *(r for router in routers for r in router.routes)])
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.api.max_body_bytes,
        metrics=app_metrics,
        routes=routes,
        max_in_flight=settings.api.max_in_flight,
        route_body_bytes={DOCUMENTS_ROUTE: document_body_bytes(settings.knowledge)},
    )
    # Added last, so it wraps the request middleware and every handler: they run inside the
    # server span (X-Trace-Id, trace ids on log lines, the task record's trace_id). This is the
    # ASGI middleware FastAPIInstrumentor installs, given our route table for span names: the
    # instrumentor's own lookup walks and matches every route on each request (measured: 14 %
    # of the CPU of POST /v1/tasks).
    app.add_middleware(
        OpenTelemetryMiddleware,
        excluded_urls=UNTRACED_URLS,
        default_span_details=routes.span_details,
        tracer_provider=tracer_provider,
        exclude_spans=["receive", "send"],
    )
    return app
