"""Serving the metrics: the scrape registry, the queue collector, the metrics port.

Called by the entry points: the API (``/metrics`` route, and the metrics port from the process
that owns it: uvicorn itself, or gunicorn's master) and the worker (metrics port).
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server
from wsgiref.types import StartResponse
from wsgiref.types import WSGIApplication as WSGIApp

from prometheus_client import CollectorRegistry, make_wsgi_app, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from agent_service.domain.tasks import QueueStats
from agent_service.observability.metrics import Metrics

log = logging.getLogger(__name__)

QueueReader = Callable[[], Iterable[QueueStats]]


class QueueCollector(Collector):
    """``agent_queue_depth`` and ``agent_queue_oldest_task_age_seconds``, read at scrape time."""

    def __init__(self, read: QueueReader) -> None:
        self._read = read

    def describe(self) -> Iterator[Metric]:
        # Registering a collector without describe() would call collect(), i.e. read Redis.
        yield GaugeMetricFamily(
            "agent_queue_depth", "Tasks waiting in the broker.", labels=["queue"]
        )
        yield GaugeMetricFamily(
            "agent_queue_oldest_task_age_seconds",
            "Age of the oldest waiting task.",
            labels=["queue"],
        )

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "agent_queue_depth", "Tasks waiting in the broker.", labels=["queue"]
        )
        age = GaugeMetricFamily(
            "agent_queue_oldest_task_age_seconds",
            "Age of the oldest task waiting in the broker (0 when empty).",
            labels=["queue"],
        )
        try:
            stats = list(self._read())
        except Exception:  # a scrape must not fail because Redis is down; the series go absent
            log.warning("cannot read queue depth from Redis", exc_info=True)
            stats = []
        for item in stats:
            depth.add_metric([item.queue], item.depth)
            age.add_metric([item.queue], item.oldest_age_seconds)
        yield depth
        yield age


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_multiprocess_dir(path: Path | None) -> None:
    """Remove the metric files of dead processes (``<kind>_<pid>.db``), at process start.

    Files of live processes stay, so processes sharing a directory (gunicorn workers, the
    local stack) can each call it. Files with this process's own pid are stale too: in a
    restarted container the new process often gets the dead one's pid (1), and the emptyDir
    holding the files outlives the container. Dead-process files would otherwise slow every
    scrape (~0.2 ms each) and keep stale gauges.
    """
    if path is None:
        return
    path.mkdir(parents=True, exist_ok=True)
    me = os.getpid()
    for child in path.glob("*.db"):
        pid_text = child.stem.rsplit("_", 1)[-1]
        if pid_text.isdigit() and (int(pid_text) == me or not _pid_alive(int(pid_text))):
            child.unlink(missing_ok=True)


def scrape_registry(
    metrics: Metrics, multiprocess_dir: Path | None, queue_reader: QueueReader | None
) -> CollectorRegistry:
    """The registry a scrape reads: this process's metrics, or every process's files."""
    if multiprocess_dir is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(multiprocess_dir))  # type: ignore[no-untyped-call]
    else:
        registry = metrics.registry
    if queue_reader is not None:
        registry.register(QueueCollector(queue_reader))
    return registry


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
        return


def bearer_guard(app: WSGIApp, token: str) -> WSGIApp:
    """``app`` behind ``Authorization: Bearer <token>`` (401 otherwise; constant-time check)."""
    expected = f"Bearer {token}".encode()

    def guarded(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        presented = str(environ.get("HTTP_AUTHORIZATION", "")).encode()
        if not hmac.compare_digest(presented, expected):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
            )
            return [b"unauthorized\n"]
        return app(environ, start_response)

    return guarded


def serve_metrics(
    registry: CollectorRegistry,
    port: int,
    host: str = "0.0.0.0",  # noqa: S104
    token: str | None = None,
) -> None:
    """Serve ``/metrics`` on ``port`` from a daemon thread (0: not served), behind a bearer
    ``token`` when one is configured (``AGENT_AUTH_METRICS_TOKEN_FILE``)."""
    if not port:
        return
    if token is None:
        start_http_server(port, addr=host, registry=registry)
    else:
        server = make_server(
            host,
            port,
            bearer_guard(make_wsgi_app(registry), token),
            ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics served on port %d%s", port, " (bearer token required)" if token else "")
