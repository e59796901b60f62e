"""The worker's background duties toward the others, on its event loop.

Every second ``Liveness`` (started and stopped by ``worker.main``):

* renews this worker's lease every third of ``AGENT_WORKER_LEASE_SECONDS``
  (``queue.reclaim.WorkerLeases``). A worker that learns it was declared dead (it stalled
  longer than its lease and its runs went to other workers) exits at once: its runs are
  already running elsewhere, and going on would run them twice;
* every ``AGENT_WORKER_RECLAIM_INTERVAL_SECONDS``, once its own lease has been renewed without
  a gap for a whole lease period, puts back the messages of workers whose lease ended
  (``WorkerLeases.sweep``) and queues again the tasks whose message was lost
  (``queue.lost.LostMessageSweeper``);
* pauses taking messages off the queue while Redis uses ``AGENT_REDIS_CONSUME_MEMORY_PERCENT``
  of its ``maxmemory`` or more (``DeliveryTracking.paused``), so the runs in hand finish.

Redis errors never stop the loop: a failed renewal is a gap (no sweeping until a lease period
after it), a failed sweep is tried again at the next interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from celery import Celery
from celery.worker import state as celery_state

from agent_service.queue.lost import LostMessageSweeper
from agent_service.queue.reclaim import WorkerLeases
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


class Liveness:
    """See the module doc. ``on_lease_lost`` is called when this worker learns it was swept."""

    def __init__(
        self,
        leases: WorkerLeases,
        lost: LostMessageSweeper,
        memory: MemoryWatch,
        tracking: DeliveryTracking,
        *,
        lease_seconds: float,
        reclaim_interval: float,
        consume_memory_percent: float,
        on_lease_lost: Callable[[], None],
    ) -> None:
        self._leases = leases
        self._lost = lost
        self._memory = memory
        self._tracking = tracking
        self._clock = LeaseClock(lease_seconds)
        self._reclaim_interval = reclaim_interval
        self._consume_percent = consume_memory_percent
        self._on_lease_lost = on_lease_lost
        self._next_sweep = 0.0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Register this worker (its first lease) and start the loop."""
        await self._renew(time.monotonic())
        self._task = asyncio.get_running_loop().create_task(self._run(), name="worker-liveness")

    async def stop(self) -> None:
        """Stop the loop and end this worker's lease (shutdown: what it still holds is swept
        by the next live worker at once)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self._leases.release()
        except Exception as exc:  # Redis gone: the lease simply runs out
            log.warning("could not end this worker's lease: %s", exc)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.monotonic()
            if self._clock.renewal_due(now):
                await self._renew(now)
            await self._watch_memory()
            if self._clock.may_sweep(now) and now >= self._next_sweep:
                self._next_sweep = now + self._reclaim_interval
                await self._sweep()

    async def _renew(self, now: float) -> None:
        try:
            alive = await self._leases.renew()
        except Exception as exc:
            if self._clock.renewed_since is not None:
                log.warning("cannot renew this worker's lease: %s", exc)
            self._clock.failed(now)
            return
        if not alive:
            log.critical(
                "this worker (%s) stalled longer than its lease and was declared dead: its "
                "runs were handed to other workers; exiting so they do not run twice",
                self._leases.worker,
            )
            self._on_lease_lost()
            return
        self._clock.renewed(now)

    async def _watch_memory(self) -> None:
        usage = await self._memory.usage()
        paused = usage is not None and usage.at_or_above(self._consume_percent)
        if paused != self._tracking.paused:
            share = f"{usage.percent:.0f} %" if usage and usage.percent is not None else "?"
            if paused:
                log.warning("Redis is at %s of maxmemory: taking no new task until it drops", share)
            else:
                log.info("Redis is at %s of maxmemory: taking tasks again", share)
            self._tracking.paused = paused

    async def _sweep(self) -> None:
        try:
            for reclaimed in await self._leases.sweep():
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
    liveness = Liveness(
        WorkerLeases(runtime.redis, runtime.keys, tracking.worker, worker.lease_seconds),
        LostMessageSweeper(runtime.redis, runtime.keys, app, worker.lost_after_seconds),
        MemoryWatch(runtime.redis),
        tracking,
        lease_seconds=worker.lease_seconds,
        reclaim_interval=worker.reclaim_interval_seconds,
        consume_memory_percent=settings.redis.consume_memory_percent,
        on_lease_lost=_exit_at_once,
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
