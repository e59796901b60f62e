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
