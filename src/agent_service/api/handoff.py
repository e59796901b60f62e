"""Sync runs that reach a gated tool call: handed over to a queued task parked on an approval.

A sync run (``/v1/chat``, ``/v1/chat/completions``) of an agent with ``approvals`` records its
steps in a ``MemoryJournal``. When the model calls a gated tool the loop raises
``ApprovalPending``; ``SyncHandoff.park`` then creates a task holding the run's request and the
steps made so far (its journal), waiting for the approval, in one transaction. The client gets
the task id (a 409, or the stream's ``approval_required`` event) and the run goes on as that
task once a person decides, on any worker, without repeating a step.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from agent_service.agent.journal import MemoryJournal
from agent_service.agent.loop import Agent
from agent_service.domain.approvals import Approval, ApprovalPending
from agent_service.domain.callers import Caller
from agent_service.domain.runs import RunRequest
from agent_service.domain.tasks import TaskAttempt, TaskRecord, TaskStatus
from agent_service.observability.tracing import current_trace_id
from agent_service.store.approvals import ApprovalStore


@dataclass(frozen=True)
class SyncHandoff:
    """Parks the sync runs of one request's caller, for one config generation."""

    approvals: ApprovalStore
    queue: str
    caller: Caller
    config_generation: int

    @staticmethod
    def journal_for(agent: Agent) -> MemoryJournal | None:
        """A journal for a sync run of ``agent``: only agents with gated tools can need one."""
        return MemoryJournal() if agent.approvals.enabled else None

    async def park(
        self,
        agent: Agent,
        request: RunRequest,
        journal: MemoryJournal | None,
        pending: ApprovalPending,
    ) -> Approval:
        """The task continuing the run, created parked on the approval it needs."""
        now = time.time()
        record = TaskRecord(
            task_id=uuid.uuid4().hex,
            status=TaskStatus.RUNNING,
            queue=self.queue,
            request=request,
            agent=agent.name,
            config_generation=self.config_generation,
            created_at=now,
            started_at=now,
            attempts=1,
            attempt_log=[TaskAttempt(attempt=1, started_at=round(now, 6))],
            trace_id=current_trace_id(),
            tenant=self.caller.tenant,
            key_id=self.caller.key_id,
        )
        approval = self.approvals.new(record, agent.name, pending, now)
        entries = journal.entries if journal is not None else ()
        await self.approvals.park(record, entries, approval, pending.timeout_seconds)
        return approval


def continuation(approval: Approval) -> str:
    """What the client reads: the task that continues the run and how to decide."""
    return (
        f"tool {approval.tool!r} needs a person's approval: the run continues as task "
        f"{approval.task_id}, paused until POST /v1/tasks/{approval.task_id}/approvals/"
        f"{approval.approval_id} approves or rejects the call (or it expires)"
    )
