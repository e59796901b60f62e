"""The Redis key schema, in one place (the chart's alerts and KEDA read the queue keys too)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    prefix: str = "agent:"

    def task(self, task_id: str) -> str:
        return f"{self.prefix}task:{task_id}"

    def events(self, task_id: str) -> str:
        return f"{self.prefix}task:{task_id}:events"

    def session(self, session_id: str) -> str:
        """``session_id`` is tenant-scoped by the agent loop (``tenant:session``)."""
        return f"{self.prefix}session:{session_id}"

    def cancel(self, task_id: str) -> str:
        return f"{self.prefix}task:{task_id}:cancel"

    def journal(self, task_id: str) -> str:
        """List of the run's completed steps (``JournalEntry`` JSON), oldest first."""
        return f"{self.prefix}task:{task_id}:journal"

    def decisions(self, task_id: str) -> str:
        """Hash of approval decisions by journal step (``ApprovalDecision`` JSON)."""
        return f"{self.prefix}task:{task_id}:decisions"

    def approval(self, approval_id: str) -> str:
        return f"{self.prefix}approval:{approval_id}"

    def tenant_approvals(self, tenant: str) -> str:
        """Sorted set of a tenant's approval ids, by creation time (trimmed to the task TTL)."""
        return f"{self.prefix}approvals:tenant:{tenant}"

    def tenant_pending_approvals(self, tenant: str) -> str:
        """Sorted set of a tenant's pending approval ids, by creation time."""
        return f"{self.prefix}approvals:tenant:{tenant}:pending"

    @property
    def expiring_approvals(self) -> str:
        """Sorted set of every pending approval id, scored by when it expires (a leased member's
        score is its lease's end): what the workers' sweepers watch."""
        return f"{self.prefix}approvals:expiring"

    def session_slot(self, session_id: str) -> str:
        """The task id of the run a session is busy with (``session_id`` is ``tenant:session``)."""
        return f"{self.prefix}slot:{session_id}"

    def session_waiting(self, session_id: str) -> str:
        """List of tasks waiting for a busy session (``<task_id> <queue> <message>``)."""
        return f"{self.prefix}slotq:{session_id}"

    def idempotency(self, tenant: str, key: str) -> str:
        return f"{self.prefix}idem:{tenant}:{key}"

    def requests_window(self, key_id: str, minute: int) -> str:
        return f"{self.prefix}rl:req:{key_id}:{minute}"

    def tokens_window(self, key_id: str, minute: int) -> str:
        return f"{self.prefix}rl:tok:{key_id}:{minute}"

    def daily_tokens(self, tenant: str, day: str) -> str:
        return f"{self.prefix}budget:tok:{tenant}:{day}"

    def daily_cost(self, tenant: str, day: str) -> str:
        """Micro-dollars (an integer, so INCRBY stays exact)."""
        return f"{self.prefix}budget:usd:{tenant}:{day}"

    def cache(self, digest: str) -> str:
        return f"{self.prefix}cache:{digest}"

    def response(self, tenant: str, response_id: str) -> str:
        """A Responses API response of ``tenant`` (``store.responses``)."""
        return f"{self.prefix}resp:{tenant}:{response_id}"

    def continuation(self, tenant: str, call_id: str) -> str:
        """What a chat completion that returned client tool call ``call_id`` hid from its
        client (server tool steps), for the request that sends the call's result."""
        return f"{self.prefix}cont:{tenant}:{call_id}"

    @property
    def webhook_outbox(self) -> str:
        """Sorted set of task ids whose completion webhook is due (score: due time)."""
        return f"{self.prefix}webhooks:outbox"

    @property
    def webhook_dead(self) -> str:
        """List of task ids whose webhook exhausted its retries (dead letters)."""
        return f"{self.prefix}webhooks:dead"

    @property
    def history_outbox(self) -> str:
        """Sorted set of finished runs waiting to be archived (``task:<id>``, ``sync:<id>``);
        score: when due (a leased member's score is its lease's end)."""
        return f"{self.prefix}history:outbox"

    @property
    def history_enqueued(self) -> str:
        """Sorted set of the same members, scored by when each was put on the outbox (leases
        do not touch it): the archive lag is the age of its first member."""
        return f"{self.prefix}history:enqueued"

    def history_payload(self, run_id: str) -> str:
        """A sync run waiting to be archived, as ``ArchivedRun`` JSON (a task's is its record)."""
        return f"{self.prefix}history:run:{run_id}"

    @property
    def queued_tasks(self) -> str:
        """Sorted set of tasks that may still be ``queued`` (score: when last checked or
        queued): what the lost-message sweeper looks through (``queue.lost``)."""
        return f"{self.prefix}tasks:queued"

    @property
    def worker_leases(self) -> str:
        """Sorted set of live workers (score: when the worker's lease ends, Redis time)."""
        return f"{self.prefix}workers"

    def worker_held(self, worker: str) -> str:
        """Set of the delivery tags a worker holds (kombu's ``unacked`` entries it took)."""
        return f"{self.prefix}worker:{worker}:held"

    def worker_swept(self, worker: str) -> str:
        """Present once a worker was declared dead and its runs handed to others."""
        return f"{self.prefix}worker:{worker}:swept"

    @property
    def delivery_owners(self) -> str:
        """Hash of delivery tag -> the worker holding it (the truth ``worker_held`` indexes)."""
        return f"{self.prefix}deliveries:owner"

    @property
    def lost_sweep_lock(self) -> str:
        """Held by the one worker sweeping for lost messages in an interval."""
        return f"{self.prefix}lost-sweep"
