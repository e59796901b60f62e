"""``agent-service worker``: a Celery worker whose runs share one asyncio event loop.

Pool: Celery ``threads`` with ``concurrency`` slots. Each slot thread only waits on a future;
the runs themselves are coroutines on ``LoopThread``. See docs/architecture.md for the choice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

from celery import Celery, signals
from opentelemetry.instrumentation.celery import CeleryInstrumentor

from agent_service import __version__
from agent_service.agentconfig.load import ConfigError, load_config_version
from agent_service.agentconfig.model import AgentConfig, ConfigVersion
from agent_service.history.models import HistoryConfigError
from agent_service.history.runtime import check_history_settings
from agent_service.observability.exposition import (
    clean_multiprocess_dir,
    scrape_registry,
    serve_metrics,
)
from agent_service.observability.logging import configure_logging
from agent_service.observability.metrics import Metrics
from agent_service.observability.tracing import (
    WORKER_SERVICE_NAME,
    configure_tracing,
    flush_traces,
)
from agent_service.queue.celery_app import (
    VISIBILITY_MARGIN_SECONDS,
    create_celery_app,
    visibility_timeout,
)
from agent_service.queue.producer import TaskQueue
from agent_service.queue.stats import QueueStatsReader
from agent_service.runtime import Runtime, open_runtime
from agent_service.settings import Settings, metrics_token, multiprocess_metrics_dir
from agent_service.store.webhooks import WebhookOutbox
from agent_service.worker.approval_sweeper import ApprovalSweeper
from agent_service.worker.consumer import install_consumer
from agent_service.worker.deliveries import DeliveryTracking
from agent_service.worker.execution import Execution
from agent_service.worker.history_drainer import HistoryDrainer, drainer_of
from agent_service.worker.knowledge_counter import KnowledgeCounter
from agent_service.worker.liveness import start_duties, worker_name
from agent_service.worker.probes import install_probes
from agent_service.worker.runtime import LoopThread
from agent_service.worker.tasks import register_tasks
from agent_service.worker.webhooks import WebhookDispatcher

log = logging.getLogger(__name__)


def _quiet_task_lines(**_: object) -> None:
    # Celery writes two INFO lines per task ("received", "succeeded"); execute_task writes one
    # line per run with the task id, status, attempt and duration instead (half the log CPU).
    for name in ("celery.app.trace", "celery.worker.strategy"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _start_metrics(settings: Settings) -> Metrics:
    """Metrics of this process, served on the metrics port with the queue depth."""
    multiprocess_dir = multiprocess_metrics_dir()
    clean_multiprocess_dir(multiprocess_dir)
    metrics = Metrics(enabled=settings.metrics.enabled)
    metrics.build_info.labels(__version__).set(1)
    metrics.worker_slots.labels(settings.worker.queue).set(settings.worker.concurrency)
    reader = QueueStatsReader(settings.redis, [settings.worker.queue])
    registry = scrape_registry(metrics, multiprocess_dir, reader.read)
    serve_metrics(registry, settings.metrics.port, settings.metrics.host, metrics_token(settings))
    return metrics


def run_timeout_cap(visibility: float) -> Callable[[AgentConfig], AgentConfig]:
    """For reloads: cap a new config's run timeout below the broker visibility timeout this
    worker started with (Celery cannot change it live), so a slow run is never redelivered
    while it still runs. Restarting the workers lifts the cap."""
    cap = visibility - VISIBILITY_MARGIN_SECONDS

    def adjust(config: AgentConfig) -> AgentConfig:
        limits = config.limits
        if cap <= 0 or limits.run_timeout_seconds <= cap:
            return config
        log.warning(
            "config reload: runTimeoutSeconds %g s is above what this worker's visibility "
            "timeout allows; runs here stop at %g s until the worker restarts",
            limits.run_timeout_seconds,
            cap,
        )
        capped = limits.model_copy(update={"run_timeout_seconds": cap})
        return config.model_copy(update={"limits": capped})

    return adjust


def _load_config(settings: Settings) -> ConfigVersion | None:
    """The agent config in force at start, once it and the history settings are found valid;
    None (logged) otherwise: the worker exits 2."""
    try:
        version = load_config_version(settings)
        check_history_settings(settings.history)
    except ConfigError as exc:
        log.error("invalid agent config: %s", exc)
        return None
    except HistoryConfigError as exc:
        log.error("invalid history settings: %s", exc)
        return None
    return version


@dataclass(frozen=True)
class _Chores:
    """The worker's loops besides its runs: approvals swept, finished runs archived to
    Postgres (history on), knowledge chunks counted (a vector store configured)."""

    sweeper: ApprovalSweeper
    drainer: HistoryDrainer | None
    counter: KnowledgeCounter | None
    archive_grace_seconds: float

    @classmethod
    def of(cls, runtime: Runtime, app: Celery) -> _Chores:
        queue = TaskQueue(runtime.redis, app, runtime.tasks)
        sweeper = ApprovalSweeper(runtime.durable.approvals, runtime.tasks, queue, runtime.metrics)
        counter = None
        if runtime.knowledge_store:
            counter = KnowledgeCounter(lambda: runtime.configs.current.knowledge)
        return cls(
            sweeper=sweeper,
            drainer=drainer_of(runtime),
            counter=counter,
            archive_grace_seconds=runtime.settings.history.statement_timeout_seconds,
        )

    async def start(self) -> None:
        await self.sweeper.start()
        if self.drainer is not None:
            await self.drainer.start()
        if self.counter is not None:
            await self.counter.start()

    def stop(self, loop: LoopThread) -> None:
        loop.run(self.sweeper.stop(), timeout=10)
        if self.counter is not None:
            loop.run(self.counter.stop(), timeout=10)
        if self.drainer is not None:
            # The batch in hand gets one statement timeout to be written; a cut one is
            # archived again (idempotently) by another worker after its lease.
            grace = self.archive_grace_seconds
            try:
                loop.run(self.drainer.stop(grace), timeout=grace + 5)
            except Exception:
                log.exception("the history drainer did not stop cleanly")


def run_worker(settings: Settings) -> int:
    configure_logging(settings.log, component="worker")
    version = _load_config(settings)
    if version is None:
        return 2
    config = version.config
    run_timeout = config.limits.run_timeout_seconds
    _warn_if_visibility_short(settings, run_timeout)
    app = create_celery_app(settings, run_timeout)
    metrics = _start_metrics(settings)
    # Before the loop thread and the pool threads exist: every span goes to this provider.
    tracer_provider = configure_tracing(WORKER_SERVICE_NAME, settings.tracing)
    if tracer_provider is not None:
        # A `run/agent_service.run` span per task, continuing the message's traceparent.
        CeleryInstrumentor().instrument(tracer_provider=tracer_provider)  # type: ignore[no-untyped-call]
    loop = LoopThread()
    loop.start()
    # The runtime is entered on the loop thread and left there at shutdown (``_close``).
    resources = contextlib.AsyncExitStack()
    cap = run_timeout_cap(visibility_timeout(settings, run_timeout))
    runtime = loop.run(
        resources.enter_async_context(open_runtime(settings, version, metrics, adjust=cap))
    )
    webhooks = WebhookDispatcher(
        runtime.tasks,
        WebhookOutbox(runtime.redis, runtime.keys),
        runtime.configs,
        settings,
        metrics,
        approvals=runtime.durable.approvals,
    )
    loop.run(webhooks.start())
    # Survives a Redis outage with runs in hand (worker/consumer.py); records which runs this
    # worker holds, for the fast reclaim its lease allows (worker/liveness.py).
    tracking = DeliveryTracking(runtime.keys, worker_name(), settings.fault.kill_after_pop)
    install_consumer(app, tracking)
    loop.run(start_duties(resources, app, runtime, tracking))
    chores = _Chores.of(runtime, app)
    loop.run(chores.start())
    register_tasks(app, loop, Execution.of(runtime))
    install_probes(app, settings.worker.heartbeat_file, settings.worker.ready_file)

    def _close(**_: object) -> None:
        # Deliveries in flight get one POST timeout to end; cut ones are retaken after their
        # lease by another worker.
        grace = settings.webhooks.timeout_seconds
        try:
            loop.run(webhooks.stop(grace), timeout=grace + 5)
        except Exception:
            log.exception("webhook deliveries did not stop cleanly")
        chores.stop(loop)
        loop.run(resources.aclose(), timeout=10)
        loop.stop()
        flush_traces(tracer_provider)

    signals.worker_shutdown.connect(_close, weak=False)
    signals.after_setup_logger.connect(_quiet_task_lines, weak=False)
    log.info(
        "worker starting: queue=%s slots=%d", settings.worker.queue, settings.worker.concurrency
    )
    try:
        app.worker_main(_celery_argv(settings))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _warn_if_visibility_short(settings: Settings, run_timeout: float) -> None:
    if visibility_timeout(settings, run_timeout) <= run_timeout:
        log.warning(
            "visibility timeout %.0fs is not above the run timeout %.0fs: a slow run "
            "may be delivered twice",
            visibility_timeout(settings, run_timeout),
            run_timeout,
        )


def _celery_argv(settings: Settings) -> list[str]:
    """Celery's worker command line: a thread pool of the configured slots."""
    return [
        "worker",
        "--pool=threads",
        f"--concurrency={settings.worker.concurrency}",
        f"--queues={settings.worker.queue}",
        f"--hostname=agent-worker-{os.getpid()}@{socket.gethostname()}",
        "--without-gossip",
        "--without-mingle",
        f"--loglevel={settings.log.level.upper()}",
    ]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_worker(Settings()))
