"""``agent-service api``: uvicorn alone for one process, gunicorn + uvicorn workers for more.

Metrics: one process serves its own registry on the metrics port; with gunicorn, workers write
multiprocess files (``PROMETHEUS_MULTIPROC_DIR``, made private if unset) and the master serves
their sum on the metrics port and forgets each dead worker's gauges.
"""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

from agent_service.agentconfig.load import ConfigError, load_config_version
from agent_service.api.app import create_app
from agent_service.history.engine import HistoryConfigError
from agent_service.history.runtime import check_history_settings
from agent_service.observability.exposition import (
    clean_multiprocess_dir,
    scrape_registry,
    serve_metrics,
)
from agent_service.observability.logging import configure_logging
from agent_service.observability.metrics import Metrics
from agent_service.observability.tracing import API_SERVICE_NAME, configure_tracing
from agent_service.queue.stats import QueueStatsReader
from agent_service.settings import (
    Settings,
    ensure_multiprocess_metrics_dir,
    metrics_token,
    multiprocess_metrics_dir,
)

log = logging.getLogger(__name__)


def serve_api(settings: Settings) -> int:
    configure_logging(settings.log, component="api")
    try:
        config = load_config_version(settings)
    except ConfigError as exc:
        log.error("invalid agent config: %s", exc)
        return 2
    try:
        check_history_settings(settings.history)
    except HistoryConfigError as exc:
        log.error("invalid history settings: %s", exc)
        return 2
    api = settings.api
    if api.workers > 1:
        return _serve_gunicorn(settings)
    multiprocess_dir = multiprocess_metrics_dir()
    clean_multiprocess_dir(multiprocess_dir)
    metrics = Metrics(enabled=settings.metrics.enabled)
    reader = QueueStatsReader(settings.redis.url, [settings.worker.queue])
    registry = scrape_registry(metrics, multiprocess_dir, reader.read)
    serve_metrics(registry, settings.metrics.port, settings.metrics.host, metrics_token(settings))
    tracer_provider = configure_tracing(API_SERVICE_NAME, settings.tracing)
    app = create_app(
        settings, config, metrics=metrics, scrape=registry, tracer_provider=tracer_provider
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
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


def _serve_gunicorn(settings: Settings) -> int:
    from gunicorn.app.base import BaseApplication  # noqa: PLC0415  # only for workers > 1
    from prometheus_client import multiprocess  # noqa: PLC0415
    from prometheus_client import values as prometheus_values  # noqa: PLC0415

    multiprocess_dir = ensure_multiprocess_metrics_dir()
    clean_multiprocess_dir(multiprocess_dir)
    # prometheus-client picks file-backed values at import, which happened before the directory
    # was set: pick again, so the workers forked below write their metrics to files.
    prometheus_values.ValueClass = prometheus_values.get_value_class()  # type: ignore[no-untyped-call]

    def when_ready(_: Any) -> None:
        reader = QueueStatsReader(settings.redis.url, [settings.worker.queue])
        registry = scrape_registry(
            Metrics(enabled=settings.metrics.enabled), multiprocess_dir, reader.read
        )
        serve_metrics(
            registry, settings.metrics.port, settings.metrics.host, metrics_token(settings)
        )

    def child_exit(_: Any, worker: Any) -> None:
        multiprocess.mark_process_dead(worker.pid, str(multiprocess_dir))  # type: ignore[no-untyped-call]

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
                "when_ready": when_ready,
                "child_exit": child_exit,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            # Runs in each worker after fork: every worker builds its own clients, and its own
            # tracer provider (the span batch processor's thread does not survive a fork).
            configure_logging(settings.log, component="api")
            tracer_provider = configure_tracing(API_SERVICE_NAME, settings.tracing)
            return create_app(settings, tracer_provider=tracer_provider)

    _Gunicorn().run()
    return 0
