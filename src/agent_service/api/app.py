"""The FastAPI app factory: the composition root of an API process.

``create_app(settings)`` builds nothing at import; its lifespan opens Redis, the LLM client and
the task queue, and puts them in the lifespan state that ``api.deps`` reads. The app is traced
by OpenTelemetry's FastAPI instrumentation (probes and ``/metrics`` excepted): one server span
per request, continuing an incoming ``traceparent``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from agent_service import __version__
from agent_service.api.errors import install_error_handlers
from agent_service.api.middleware import RequestContextMiddleware, RouteTemplates
from agent_service.api.routes import chat, health, tasks
from agent_service.api.routes import metrics as metrics_route
from agent_service.config import Settings, load_agent_config, multiprocess_metrics_dir
from agent_service.domain.agent_config import AgentConfig
from agent_service.observability.exposition import scrape_registry
from agent_service.observability.metrics import Metrics
from agent_service.observability.tracing import flush_traces
from agent_service.queue.celery_app import create_celery_app
from agent_service.queue.producer import TaskQueue
from agent_service.queue.stats import QueueStatsReader
from agent_service.services import Services

# Probes and scrapes are frequent and say nothing about a run: no spans for them (regexes
# searched in the request URL, which carries no query string).
UNTRACED_URLS = "/healthz$,/readyz$,/metrics$"


def create_app(
    settings: Settings,
    config: AgentConfig | None = None,
    metrics: Metrics | None = None,
    scrape: CollectorRegistry | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """The API application.

    ``config`` defaults to the one ``settings`` points at; ``metrics`` and ``scrape`` (the
    registry ``/metrics`` serves) default to this process's own, with the queue depth;
    ``tracer_provider`` to the global one (``observability.tracing.configure_tracing``).
    """
    agent_config = config or load_agent_config(settings)
    app_metrics = metrics or Metrics()
    app_metrics.build_info.labels(__version__).set(1)
    app_metrics.set_config(1, agent_config.fingerprint())
    reader = QueueStatsReader(settings.redis.url, [settings.worker.queue])
    scrape_from = scrape or scrape_registry(app_metrics, multiprocess_metrics_dir(), reader.read)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        services = await Services.open(settings, agent_config, app_metrics)
        celery_app = create_celery_app(settings, agent_config.limits.run_timeout_seconds)
        queue = TaskQueue(services.redis, celery_app, services.store)
        try:
            yield {"services": services, "task_queue": queue, "scrape_registry": scrape_from}
        finally:
            await services.close()
            reader.close()
            flush_traces(tracer_provider)

    app = FastAPI(
        title="agent-service",
        version=__version__,
        description="Run LLM agents synchronously (`/v1/chat`) or as queued tasks (`/v1/tasks`).",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(chat.router)
    app.include_router(tasks.router)
    app.include_router(metrics_route.router)
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "X-Trace-Id", "Location"],
        )
    routers = (health.router, chat.router, tasks.router, metrics_route.router)
    routes = RouteTemplates([*app.router.routes, *(r for router in routers for r in router.routes)])
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.api.max_body_bytes,
        metrics=app_metrics,
        routes=routes,
    )
    # Wraps the whole middleware stack, so the request middleware and every handler run inside
    # the server span (X-Trace-Id, trace ids on log lines, the task record's trace_id).
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider,
        excluded_urls=UNTRACED_URLS,
        exclude_spans=["receive", "send"],
    )
    return app
