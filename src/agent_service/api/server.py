"""``agent-service api``: uvicorn alone for one process, gunicorn + uvicorn workers for more."""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

from agent_service.api.app import create_app
from agent_service.config import ConfigError, Settings, load_agent_config
from agent_service.observability.logging import configure_logging

log = logging.getLogger(__name__)


def serve_api(settings: Settings) -> int:
    configure_logging(settings.log, component="api")
    try:
        config = load_agent_config(settings)
    except ConfigError as exc:
        log.error("invalid agent config: %s", exc)
        return 2
    api = settings.api
    if api.workers == 1:
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, config),
                host=api.host,
                port=api.port,
                log_config=None,
                access_log=False,
                proxy_headers=True,
                timeout_graceful_shutdown=30,
                server_header=False,
            )
        )
        server.run()
        return 0
    return _serve_gunicorn(settings)


def _serve_gunicorn(settings: Settings) -> int:
    from gunicorn.app.base import BaseApplication  # noqa: PLC0415  # only for workers > 1

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            api = settings.api
            options: dict[str, Any] = {
                "bind": f"{api.host}:{api.port}",
                "workers": api.workers,
                "worker_class": "uvicorn_worker.UvicornWorker",
                "graceful_timeout": 30,
                "timeout": 120,
                "keepalive": 5,
                "accesslog": None,
                "logconfig_dict": {"version": 1, "disable_existing_loggers": False},
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            # Runs in each worker after fork: every worker builds its own clients.
            configure_logging(settings.log, component="api")
            return create_app(settings)

    _Gunicorn().run()
    return 0
