"""A session's runs as the API sees them: ending a task no worker holds, and sync runs arriving
for a busy session.

``end_task`` is what cancelling means for a task that waits in the queue or for an approval
(its slot given to the next run, its approval withdrawn); the cancel route and the
``interrupt`` policy call it. ``admit_sync`` applies the agent's ``multitask`` to a sync run
(``/v1/chat`` and ``/v1/chat/completions``) whose session has a task going: ``reject`` and
``enqueue`` answer 409 (a sync run cannot wait in a queue: submit it as a task), ``interrupt``
cancels the task and runs now.
"""

from __future__ import annotations

from agent_service.agent.loop import Agent
from agent_service.api.errors import ApiError
from agent_service.domain.errors import ErrorType
from agent_service.domain.tasks import TaskRecord, TaskStatus
from agent_service.observability.metrics import Metrics
from agent_service.runtime.process import DurableStores
from agent_service.store.tasks import TaskStore


async def end_task(
    tasks: TaskStore, durable: DurableStores, record: TaskRecord, metrics: Metrics
) -> str | None:
    """Cancel ``record``'s task: ``cancelled`` (it was queued or paused: it ended now, its
    approval withdrawn and its session slot handed on), ``cancelling`` (a worker runs it and
    stops it at its next step), the terminal status it already had, or None if it is gone."""
    outcome = await tasks.cancel(record.task_id)
    if outcome != TaskStatus.CANCELLED.value:
        return outcome
    metrics.tasks_finished.labels(record.queue, TaskStatus.CANCELLED.value).inc()
    if record.approval_id is not None:
        await durable.approvals.withdraw(record.approval_id, record.tenant)
    session_id = record.request.session_id
    if session_id is not None:  # no worker will: a paused task has no message anywhere
        await durable.slots.release(record.tenant, session_id, record.task_id)
    return outcome


async def admit_sync(
    agent: Agent,
    *,
    tenant: str,
    session_id: str | None,
    tasks: TaskStore,
    durable: DurableStores,
    metrics: Metrics,
) -> None:
    """Let a sync run on ``session_id`` start, per ``agent``'s ``multitask``; 409 if not."""
    if session_id is None:
        return
    holder = await durable.slots.holder(tenant, session_id)
    if holder is None or holder[1] is None or TaskStatus(holder[1]).terminal:
        return
    task_id, status = holder
    policy = agent.profile.multitask
    if policy == "interrupt":
        record = await tasks.get(task_id)
        if record is not None:
            await end_task(tasks, durable, record, metrics)
        return
    advice = (
        "; submit it as a task (POST /v1/tasks) to have it run after that one"
        if policy == "enqueue"
        else ""
    )
    raise ApiError(
        409,
        ErrorType.CONFLICT,
        f"session {session_id!r} has a run in progress (task {task_id}, {status}){advice}",
        headers={"Location": f"/v1/tasks/{task_id}"},
    )
