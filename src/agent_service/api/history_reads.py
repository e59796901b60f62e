"""Reading a run wherever it is: Redis while it is recent, the history archive afterwards.

Used by the task routes (``GET /v1/tasks/{id}``, its events, cancel, an idempotent replay) and
the history routes. A finished run's record stays in Redis for
``AGENT_HISTORY_ARCHIVED_RECORD_TTL_SECONDS`` once archived; after that it is read from
Postgres in the same ``TaskRecord`` shape, and its event stream is replayed from the archived
steps, so a client never sees the difference.

Who sees what: a key sees its tenant's runs; an admin key (``role: admin``) reads every
tenant's (``read_scope``), but acts (cancel, feedback) only on its own tenant's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from agent_service.api.errors import ApiError
from agent_service.domain.callers import Caller
from agent_service.domain.errors import ErrorType
from agent_service.domain.runs import RunEvent
from agent_service.domain.tasks import TaskRecord, TaskStatus
from agent_service.history.runtime import History
from agent_service.history.scope import Scope
from agent_service.store.tasks import TaskStore

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
"""Task ids and sync run ids are ours (uuid4 hex): anything else cannot exist."""


def not_found(run_id: str, what: str = "task") -> ApiError:
    return ApiError(404, ErrorType.NOT_FOUND, f"{what} {run_id!r} not found")


def read_scope(caller: Caller, tenant: str | None = None) -> Scope:
    """Whose runs ``caller`` reads: ``tenant`` if given (403 unless it is the caller's own or
    the caller is an admin), else the caller's tenant, or every tenant for an admin."""
    if tenant is not None:
        if tenant != caller.tenant and not caller.admin:
            raise ApiError(
                403,
                ErrorType.FORBIDDEN,
                f"tenant: this key reads tenant {caller.tenant!r} only (an admin key reads any)",
            )
        return Scope.of_tenant(tenant)
    return Scope.admin() if caller.admin else Scope.of_tenant(caller.tenant)


def own_scope(caller: Caller) -> Scope:
    """The runs ``caller`` may act on (feedback): its tenant's, admin or not."""
    return Scope.of_tenant(caller.tenant)


@dataclass(frozen=True)
class FoundTask:
    record: TaskRecord
    archived: bool
    """True when Redis no longer had it and it came from the history archive."""


async def find_task(
    tasks: TaskStore,
    history: History | None,
    task_id: str,
    caller: Caller,
    *,
    admin_reads: bool = True,
) -> FoundTask:
    """Run ``task_id`` (a task, or an archived sync run) as ``caller`` sees it; 404 when it is
    unknown or another tenant's (an admin's reads excepted, with ``admin_reads``). Redis
    first; the archive when Redis no longer has it (503 if Postgres is down then)."""
    if not RUN_ID.match(task_id):
        raise not_found(task_id)
    scope = read_scope(caller) if admin_reads else own_scope(caller)
    record = await tasks.get(task_id)
    if record is not None:
        if scope.tenant is not None and record.tenant != scope.tenant:
            raise not_found(task_id)
        return FoundTask(record, archived=False)
    if history is not None:
        run = await history.runs.get(scope, task_id)
        if run is not None:
            return FoundTask(run.record, archived=True)
    raise not_found(task_id)


def replayed_events(record: TaskRecord, after: str | None) -> Iterator[tuple[str, RunEvent]]:
    """The event stream of an archived run, rebuilt from its record: its steps, then its
    terminal event. Ids are ``0-1``, ``0-2``, …; ``after`` (a ``Last-Event-ID``) skips the
    events up to it."""
    events: list[RunEvent] = []
    steps = record.result.steps if record.result is not None else []
    events += [RunEvent(type="step", data=step.model_dump(mode="json")) for step in steps]
    if record.status is TaskStatus.SUCCEEDED and record.result is not None:
        result = record.result.model_dump(mode="json")
        events.append(RunEvent(type="done", data={"status": record.status.value, "result": result}))
    elif record.status is TaskStatus.CANCELLED:
        events.append(RunEvent(type="cancelled", data={"status": record.status.value}))
    else:
        error = record.error.model_dump() if record.error is not None else None
        events.append(RunEvent(type="error", data={"status": record.status.value, "error": error}))
    skip = _sequence(after)
    for number, event in enumerate(events, start=1):
        if number > skip:
            yield f"0-{number}", event


def _sequence(event_id: str | None) -> int:
    """The position a replayed ``Last-Event-ID`` stands for (0: from the start)."""
    if event_id is None:
        return 0
    first, _, second = event_id.partition("-")
    if first == "0" and second.isdigit():
        return int(second)
    return 0
