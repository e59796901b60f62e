"""Noticing approvals nobody decided in time, on the worker's event loop.

``worker.main`` starts one ``ApprovalSweeper`` per worker process next to the webhook
dispatcher. Every ``interval`` it counts the pending approvals (``agent_approvals_pending``) and
leases those past their expiry (``store.leases``: a sweeper that dies holds nothing, its
approvals come due again after the lease), then decides each one ``timeout``: the task is queued
again and its resumed run tells the model the call was not approved in time, or fails with
``approval_timeout``, as its agent's ``approvals.onTimeout`` said when the run paused.
"""

from __future__ import annotations

import logging

from agent_service.domain.errors import DependencyUnavailableError
from agent_service.observability.metrics import Metrics
from agent_service.queue.producer import TaskQueue
from agent_service.store.approvals import ApprovalStore
from agent_service.store.tasks import TaskStore
from agent_service.worker.periodic import Periodic

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 1.0
LEASE_SECONDS = 30.0
"""How long a sweeper holds an expired approval it is deciding (far above one decision)."""
BATCH = 32


class ApprovalSweeper:
    """Decides expired approvals ``timeout`` until ``stop``. Lives on the worker's loop."""

    def __init__(
        self,
        approvals: ApprovalStore,
        tasks: TaskStore,
        queue: TaskQueue,
        metrics: Metrics,
        interval_seconds: float = INTERVAL_SECONDS,
    ) -> None:
        self._approvals = approvals
        self._tasks = tasks
        self._queue = queue
        self._metrics = metrics
        self._redis_down = False
        self._periodic = Periodic("approval-sweeper", self._tick, interval_seconds)

    async def start(self) -> None:
        """Start sweeping (call on the worker's event loop)."""
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def _tick(self) -> None:
        try:
            await self.sweep()
            self._redis_down = False
        except DependencyUnavailableError as exc:
            if not self._redis_down:
                log.warning("approvals unreachable, retrying: %s", exc)
            self._redis_down = True
        except Exception:  # a bug must not stop the sweeps; the lease retries it
            log.exception("approval sweep failed")

    async def sweep(self) -> int:
        """One sweep: the pending count, then every expired approval decided. Returns how many
        were decided ``timeout``."""
        self._metrics.approvals_waiting(await self._approvals.pending_count())
        decided = 0
        for approval_id in await self._approvals.claim_expired(LEASE_SECONDS, BATCH):
            decided += await self._expire(approval_id)
        return decided

    async def _expire(self, approval_id: str) -> int:
        found = await self._approvals.get_with_timeout(approval_id)
        record = await self._tasks.get(found[0].task_id) if found is not None else None
        if found is None or record is None:  # expired from Redis with its task
            await self._approvals.drop_expiring(approval_id)
            return 0
        approval, timeout = found
        outcome = await self._approvals.decide(
            approval,
            "timeout",
            queue=record.queue,
            message=self._queue.message(record),
            timeout_seconds=timeout,
        )
        if outcome.outcome != "applied":
            return 0
        self._metrics.approval_decided(approval.agent, approval.tool, "timeout")
        log.info(
            "approval %s of %s expired after %g s: the call is %s",
            approval_id,
            approval.tool,
            timeout,
            "rejected" if approval.on_timeout == "reject" else "failing the task",
            extra={"task_id": approval.task_id},
        )
        return 1
