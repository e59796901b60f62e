"""``agent-service worker``: a Celery worker whose runs share one asyncio event loop.

Pool: Celery ``threads`` with ``concurrency`` slots. Each slot thread only waits on a future;
the runs themselves are coroutines on ``LoopThread``. See docs/architecture.md for the choice.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

from celery import signals

from agent_service.config import ConfigError, Settings, load_agent_config
from agent_service.observability.logging import configure_logging
from agent_service.queue.celery_app import create_celery_app, visibility_timeout
from agent_service.services import Services
from agent_service.worker.probes import install_probes
from agent_service.worker.runtime import LoopThread
from agent_service.worker.tasks import register_tasks

log = logging.getLogger(__name__)


def _quiet_task_lines(**_: object) -> None:
    # Celery writes two INFO lines per task ("received", "succeeded"); execute_task writes one
    # line per run with the task id, status, attempt and duration instead (half the log CPU).
    for name in ("celery.app.trace", "celery.worker.strategy"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_worker(settings: Settings) -> int:
    configure_logging(settings.log, component="worker")
    try:
        config = load_agent_config(settings)
    except ConfigError as exc:
        log.error("invalid agent config: %s", exc)
        return 2
    run_timeout = config.limits.run_timeout_seconds
    if visibility_timeout(settings, run_timeout) <= run_timeout:
        log.warning(
            "visibility timeout %.0fs is not above the run timeout %.0fs: a slow run "
            "may be delivered twice",
            visibility_timeout(settings, run_timeout),
            run_timeout,
        )
    app = create_celery_app(settings, run_timeout)
    loop = LoopThread()
    loop.start()
    services = loop.run(Services.open(settings, config))
    register_tasks(app, loop, services)
    install_probes(app, settings.worker.heartbeat_file, settings.worker.ready_file)

    def _close(**_: object) -> None:
        loop.run(services.close(), timeout=10)
        loop.stop()

    signals.worker_shutdown.connect(_close, weak=False)
    signals.after_setup_logger.connect(_quiet_task_lines, weak=False)
    log.info(
        "worker starting: queue=%s slots=%d", settings.worker.queue, settings.worker.concurrency
    )
    argv = [
        "worker",
        "--pool=threads",
        f"--concurrency={settings.worker.concurrency}",
        f"--queues={settings.worker.queue}",
        f"--hostname=agent-worker-{os.getpid()}@{socket.gethostname()}",
        "--without-gossip",
        "--without-mingle",
        f"--loglevel={settings.log.level.upper()}",
    ]
    try:
        app.worker_main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_worker(Settings()))
