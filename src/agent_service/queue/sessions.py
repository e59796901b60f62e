"""Submitting a run for a session that may be busy: the agent's ``multitask`` setting decides.

``TaskQueue.submit`` calls ``plan`` inside its optimistic transaction (the session's slot and
waiting list are WATCHed, and the record of the run holding the slot), then ``apply`` queues
what the plan says on the same MULTI:

- a free session (or a slot left by a run that ended): the run takes the slot and is queued;
- ``reject``: ``SessionBusyError`` (409), nothing written;
- ``enqueue``: the run waits in the session's list; the worker that ends the current run hands
  it the slot and pushes its message (``store.session_slots.release``);
- ``interrupt``: the current run and every waiting one are cancelled (a running one stops at its
  next step, and the new run waits for it; a queued or paused one ends at once, and the new run
  is queued now).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio.client import Pipeline

from agent_service.agentconfig.approvals import Multitask
from agent_service.domain.tasks import TaskRecord, TaskStatus
from agent_service.store.session_slots import SessionSlots, session_key, waiting_entry
from agent_service.store.tasks import TaskStore

TERMINAL = frozenset(status.value for status in TaskStatus if status.terminal)


class SessionBusyError(Exception):
    """The session has a run going and the agent's ``multitask`` is ``reject``."""

    def __init__(self, task_id: str, status: str) -> None:
        super().__init__(f"the session has a run in progress: task {task_id} ({status})")
        self.task_id = task_id
        self.status = status


@dataclass
class Plan:
    """What a submission does to the session."""

    start: bool = True
    """Queue the run now (it takes the slot); else it waits in the session's list."""
    cancel: list[str] = field(default_factory=list)
    """Tasks cancelled by an interrupt (the current one first)."""
    clear_waiting: bool = False
    withdraw: tuple[str, str] | None = None
    """(approval id, tenant) of the approval an interrupted paused run waited for."""
    stale: str | None = None
    """A slot held by a run that ended while others wait: release it, then plan again."""


def _text(value: object) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


async def plan(
    pipe: Pipeline, slots: SessionSlots, record: TaskRecord, multitask: Multitask
) -> Plan:
    """Read the session under WATCH (``pipe`` is in watch mode) and decide; raises
    ``SessionBusyError`` (after resetting ``pipe``) for ``reject``."""
    keys = slots.keys
    assert record.request.session_id is not None
    session = session_key(record.tenant, record.request.session_id)
    slot, waiting = keys.session_slot(session), keys.session_waiting(session)
    current = _text(await pipe.get(slot))
    if current is None:
        return Plan()
    await pipe.watch(keys.task(current))
    status = _text(await pipe.hget(keys.task(current), "status"))
    if status is None or status in TERMINAL:
        # The run holding the slot ended but its release was lost (its worker died).
        if int(await pipe.llen(waiting)) == 0:
            return Plan()
        return Plan(stale=current)
    if multitask == "reject":
        await pipe.reset()  # type: ignore[no-untyped-call]
        raise SessionBusyError(current, status)
    if multitask == "enqueue":
        return Plan(start=False)
    entries = await pipe.lrange(waiting, 0, -1)
    queued = [str(_text(entry)).split(" ", 1)[0] for entry in entries]
    withdraw = None
    if status == TaskStatus.AWAITING_APPROVAL.value:
        approval = _text(await pipe.hget(keys.task(current), "approval_id"))
        withdraw = (approval, record.tenant) if approval else None
    return Plan(
        start=status != TaskStatus.RUNNING.value,
        cancel=[current, *queued],
        clear_waiting=bool(queued),
        withdraw=withdraw,
    )


async def apply(
    pipe: Pipeline,
    decided: Plan,
    *,
    slots: SessionSlots,
    tasks: TaskStore,
    record: TaskRecord,
    message: bytes,
) -> None:
    """Queue the plan's commands on ``pipe`` (in MULTI), after the record's creation."""
    keys = slots.keys
    assert record.request.session_id is not None
    session = session_key(record.tenant, record.request.session_id)
    for task_id in decided.cancel:
        await tasks.add_cancel(pipe, task_id)
    if decided.clear_waiting:
        pipe.delete(keys.session_waiting(session))
    if decided.start:
        pipe.set(keys.session_slot(session), record.task_id, ex=slots.ttl_seconds)
        pipe.lpush(record.queue, message)
    else:
        entry = waiting_entry(record.task_id, record.queue, message)
        pipe.rpush(keys.session_waiting(session), entry)
        pipe.expire(keys.session_waiting(session), slots.ttl_seconds)
