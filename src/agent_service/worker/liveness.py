"""The worker's duties toward the others: its lease, sweeping for the dead, pausing when full.

``worker.main`` starts them (``start_duties``) and stops them at shutdown:

* ``LeaseKeeper``, a thread of its own, renews this worker's lease every third of
  ``AGENT_WORKER_LEASE_SECONDS`` (``queue.reclaim.LeaseRenewal``): a thread, so runs keeping the
  event loop busy never make a live worker look dead. A worker that learns it was declared
  dead anyway (the whole process stalled longer than its lease, and its runs went to other
  workers) exits at once: going on would run them twice;
* ``Liveness``, on the event loop, every second: pauses taking messages off the queue while
  Redis uses ``AGENT_REDIS_CONSUME_MEMORY_PERCENT`` of its ``maxmemory`` or more
  (``DeliveryTracking.paused``), so the runs in hand finish; and every
  ``AGENT_WORKER_RECLAIM_INTERVAL_SECONDS``, once the lease has been renewed without a gap for
  a whole lease period, puts back the messages of workers whose lease ended
  (``DeadWorkerSweeper``) and queues again the tasks whose message was lost
  (``queue.lost.LostMessageSweeper``);
* with ``AGENT_WORKER_POD_DELETION_COST``, the pod-deletion-cost patcher (``worker.pod_cost``).

Redis errors never stop them: a failed renewal is a gap (no sweeping until a lease period
after it), a failed sweep is tried again at the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from celery import Celery
from celery.worker import state as celery_state

from agent_service.queue.lost import LostMessageSweeper
from agent_service.queue.reclaim import DeadWorkerSweeper, LeaseRenewal
from agent_service.runtime import Runtime
from agent_service.settings import kubernetes_service_address
from agent_service.store.memory import MemoryWatch
from agent_service.worker.deliveries import DeliveryTracking
from agent_service.worker.pod_cost import PodDeletionCost, PodRef

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0


@dataclass
class LeaseClock:
    """When to renew and when sweeping is allowed (pure; ``now`` is monotonic seconds)."""

    lease_seconds: float
    renewed_since: float | None = None
    """Start of the current run of renewals without a gap (None: the last one failed)."""
    next_renewal: float = 0.0

    def renewal_due(self, now: float) -> bool:
        return now >= self.next_renewal

    def renewed(self, now: float) -> None:
        if self.renewed_since is None:
            self.renewed_since = now
        self.next_renewal = now + self.lease_seconds / 3

    def failed(self, now: float) -> None:
        self.renewed_since = None
        self.next_renewal = now + min(1.0, self.lease_seconds / 3)

    def may_sweep(self, now: float) -> bool:
        """Only after a whole lease period of renewals: every live worker has renewed since
        any gap (a Redis outage ends every lease at once) before another is judged dead."""
        return self.renewed_since is not None and now - self.renewed_since >= self.lease_seconds


class LeaseKeeper:
    """Renews the lease on its own thread (see the module doc)."""

    def __init__(
        self, renewal: LeaseRenewal, clock: LeaseClock, on_lease_lost: Callable[[], None]
    ) -> None:
        self._renewal = renewal
        self.clock = clock
        self._on_lease_lost = on_lease_lost
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-lease", daemon=True)

    def start(self) -> None:
        """Register this worker (its first lease), then renew it until ``stop``."""
        self._renew(time.monotonic())
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing and end the lease now (what the worker still holds is swept at once
        by the next live worker)."""
        self._stopped.set()
        self._thread.join(timeout=10)
        try:
            self._renewal.release()
        except Exception as exc:  # Redis gone: the lease simply runs out
            log.warning("could not end this worker's lease: %s", exc)
        self._renewal.close()

    def _run(self) -> None:
        while not self._stopped.wait(max(0.0, self.clock.next_renewal - time.monotonic())):
            self._renew(time.monotonic())

    def _renew(self, now: float) -> None:
        try:
            alive = self._renewal.renew()
        except Exception as exc:
            if self.clock.renewed_since is not None:
                log.warning("cannot renew this worker's lease: %s", exc)
            self.clock.failed(now)
            return
        if not alive:
            log.critical(
                "this worker (%s) stalled longer than its lease and was declared dead: its "
                "runs were handed to other workers; exiting so they do not run twice",
                self._renewal.worker,
            )
            self._on_lease_lost()
            return
        self.clock.renewed(now)


class Liveness:
    """The event-loop duties (see the module doc); sweeps when ``clock`` allows."""

    def __init__(
        self,
        clock: LeaseClock,
        dead: DeadWorkerSweeper,
        lost: LostMessageSweeper,
        memory: MemoryWatch,
        tracking: DeliveryTracking,
        *,
        reclaim_interval: float,
        consume_memory_percent: float,
    ) -> None:
        self._clock = clock
        self._dead = dead
        self._lost = lost
        self._memory = memory
        self._tracking = tracking
        self._reclaim_interval = reclaim_interval
        self._consume_percent = consume_memory_percent
        self._next_sweep = 0.0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="worker-liveness")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            await self._watch_memory()
            now = time.monotonic()
            if self._clock.may_sweep(now) and now >= self._next_sweep:
                self._next_sweep = now + self._reclaim_interval
                await self._sweep()

    async def _watch_memory(self) -> None:
        usage = await self._memory.usage()
        paused = usage is not None and usage.at_or_above(self._consume_percent)
        if paused != self._tracking.paused:
            if paused and usage is not None:
                log.warning(
                    "Redis is at %.0f %% of maxmemory: taking no new task until it drops",
                    usage.percent,
                )
            else:
                log.info("Redis has room again: taking tasks")
            self._tracking.paused = paused

    async def _sweep(self) -> None:
        try:
            for reclaimed in await self._dead.sweep():
                log.warning(
                    "worker %s lost its lease: %d of its runs put back on the queue",
                    reclaimed.worker,
                    reclaimed.messages,
                )
            await self._lost.sweep(lock_seconds=max(1, int(self._reclaim_interval)))
        except Exception as exc:
            log.warning("sweep for dead workers and lost messages failed: %s", exc)


EXIT_LEASE_LOST = 3


def _exit_at_once() -> None:
    # Like a SIGKILL: no warm shutdown, nothing acknowledged; other workers own these runs.
    logging.shutdown()
    os._exit(EXIT_LEASE_LOST)


def worker_name() -> str:
    """This process's name in the leases (unique across restarts of a pod)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _runs_in_progress() -> int:
    return len(celery_state.active_requests)


async def start_duties(
    stack: contextlib.AsyncExitStack, app: Celery, runtime: Runtime, tracking: DeliveryTracking
) -> None:
    """Start the liveness loop (and, when enabled, the pod-deletion-cost patcher) on this
    event loop; ``stack`` stops them, before the runtime closes."""
    settings = runtime.settings
    worker = settings.worker
    clock = LeaseClock(worker.lease_seconds)
    renewal = LeaseRenewal.connect(
        settings.redis, runtime.keys, tracking.worker, worker.lease_seconds
    )
    keeper = LeaseKeeper(renewal, clock, on_lease_lost=_exit_at_once)
    keeper.start()
    stack.callback(keeper.stop)
    liveness = Liveness(
        clock,
        DeadWorkerSweeper(runtime.redis, runtime.keys, tracking.worker),
        LostMessageSweeper(runtime.redis, runtime.keys, app, worker.lost_after_seconds),
        MemoryWatch(runtime.redis),
        tracking,
        reclaim_interval=worker.reclaim_interval_seconds,
        consume_memory_percent=settings.redis.consume_memory_percent,
    )
    await liveness.start()
    stack.push_async_callback(liveness.stop)
    if not worker.pod_deletion_cost:
        return
    api_url = worker.kube_api_url or kubernetes_service_address()
    if api_url is None or worker.pod_namespace is None or worker.pod_name is None:
        log.error(
            "AGENT_WORKER_POD_DELETION_COST is on but the Kubernetes API is unknown "
            "(KUBERNETES_SERVICE_HOST, AGENT_WORKER_KUBE_API_URL): the cost is not kept"
        )
        return
    pod = PodRef(api_url, worker.pod_namespace, worker.pod_name, worker.service_account_dir)
    cost = PodDeletionCost(pod, _runs_in_progress, worker.pod_deletion_cost_interval_seconds)
    await cost.start()
    stack.push_async_callback(cost.stop)
