"""The FastAPI app factory: the composition root of an API process.

``create_app(settings)`` builds nothing at import; its lifespan opens Redis, the LLM client and
the task queue, and puts them in the lifespan state that ``api.deps`` reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from agent_service import __version__
from agent_service.api.errors import install_error_handlers
from agent_service.api.middleware import RequestContextMiddleware
from agent_service.api.routes import chat, health, tasks
from agent_service.config import Settings, load_agent_config
from agent_service.domain.agent_config import AgentConfig
from agent_service.queue.celery_app import create_celery_app
from agent_service.queue.producer import TaskQueue
from agent_service.services import Services


def create_app(settings: Settings, config: AgentConfig | None = None) -> FastAPI:
    """The API application. ``config`` defaults to the one ``settings`` points at."""
    agent_config = config or load_agent_config(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        services = await Services.open(settings, agent_config)
        celery_app = create_celery_app(settings, agent_config.limits.run_timeout_seconds)
        queue = TaskQueue(services.redis, celery_app, services.store)
        try:
            yield {"services": services, "task_queue": queue}
        finally:
            await services.close()

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
    if settings.api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "X-Trace-Id", "Location"],
        )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.api.max_body_bytes)
    return app
