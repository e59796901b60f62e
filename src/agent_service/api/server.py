"""``agent-service api``: uvicorn alone for one process, gunicorn + uvicorn workers for more.

On SIGTERM the server stops accepting connections and drains (``api.drain``): requests in
flight get ``AGENT_API_GRACEFUL_TIMEOUT_SECONDS`` (default: the config's run timeout + 15 s),
and runs still going near its end are answered (503, or an SSE ``error`` event), never cut.

Metrics: one process serves its own registry on the metrics port; with gunicorn, workers write
multiprocess files (``PROMETHEUS_MULTIPROC_DIR``, made private if unset) and the master serves
their sum on the metrics port and forgets each dead worker's gauges.
"""

from __future__ import annotations

import logging
import math
import socket
from typing import Any

import uvicorn

from agent_service.agentconfig.load import ConfigError, load_config_version
from agent_service.api.app import create_app
from agent_service.api.drain import Drain, graceful_timeout
from agent_service.history.models import HistoryConfigError
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
        grace = graceful_timeout(settings, config.config.limits.run_timeout_seconds)
        return _serve_gunicorn(settings, grace)
    multiprocess_dir = multiprocess_metrics_dir()
    clean_multiprocess_dir(multiprocess_dir)
    metrics = Metrics(enabled=settings.metrics.enabled)
    reader = QueueStatsReader(settings.redis, [settings.worker.queue])
    registry = scrape_registry(metrics, multiprocess_dir, reader.read)
    serve_metrics(registry, settings.metrics.port, settings.metrics.host, metrics_token(settings))
    tracer_provider = configure_tracing(API_SERVICE_NAME, settings.tracing)
    app = create_app(
        settings, config, metrics=metrics, scrape=registry, tracer_provider=tracer_provider
    )
    drain: Drain = app.state.drain
    server = DrainingServer(
        uvicorn.Config(
            app,
            host=api.host,
            port=api.port,
            log_config=None,
            access_log=False,
            proxy_headers=True,
            timeout_graceful_shutdown=math.ceil(drain.grace),
            server_header=False,
        ),
        drain,
    )
    server.run()
    return 0


class DrainingServer(uvicorn.Server):
    """uvicorn's server, which starts the app's drain (``api.drain``) as its shutdown begins:
    runs still going when the grace is nearly over are answered instead of cut."""

    def __init__(self, config: uvicorn.Config, drain: Drain) -> None:
        super().__init__(config)
        self.drain = drain

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        log.info("shutting down: requests in flight have %.0f s to end", self.drain.grace)
        self.drain.begin()
        await super().shutdown(sockets)


def _serve_gunicorn(settings: Settings, grace: float) -> int:
    from gunicorn.app.base import BaseApplication  # noqa: PLC0415  # only for workers > 1
    from prometheus_client import multiprocess  # noqa: PLC0415
    from prometheus_client import values as prometheus_values  # noqa: PLC0415

    multiprocess_dir = ensure_multiprocess_metrics_dir()
    clean_multiprocess_dir(multiprocess_dir)
    # prometheus-client picks file-backed values at import, which happened before the directory
    # was set: pick again, so the workers forked below write their metrics to files.
    prometheus_values.ValueClass = prometheus_values.get_value_class()  # type: ignore[no-untyped-call]

    def when_ready(_: Any) -> None:
        reader = QueueStatsReader(settings.redis, [settings.worker.queue])
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
                "worker_class": "agent_service.api.gunicorn_worker.DrainingUvicornWorker",
                # The workers end their own drain first (api.drain); this is the backstop.
                "graceful_timeout": math.ceil(grace) + 5,
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
