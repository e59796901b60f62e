"""A finished run as the history archive keeps it: one row per queued task or sync run.

Built here, from what the run left behind (a terminal ``TaskRecord``; or, for a sync run, its
request and outcome), by pure functions: ``store.history_outbox`` builds one from a task record
it reads back, the sync-run path builds one to put on the outbox, and ``history`` writes it to
Postgres. Both kinds keep their record in the ``TaskRecord`` shape, so every reader (the
``GET /v1/tasks/{id}`` fallback, the console) reads one shape.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pydantic import BaseModel, Field

from agent_service.domain.runs import RunRequest, RunResult, Step, Usage
from agent_service.domain.tasks import TaskError, TaskRecord, TaskStatus

DEFAULT_AGENT = "default"
"""The agent of a run that names none anywhere (records written before named agents existed);
the implicit agent of a config without ``agents`` has this name too."""

USER_MAX_CHARS = 256
"""Longest ``metadata.user`` kept (an id chosen by the caller, grouped by in usage)."""


class RunKind(StrEnum):
    TASK = "task"
    """Queued with ``POST /v1/tasks``, run by a worker."""
    SYNC = "sync"
    """Run by the API while the client waited (``POST /v1/chat``, chat completions)."""


class ToolUse(BaseModel):
    """How one run used one tool: calls, failed calls and their total duration."""

    tool: str
    calls: int
    errors: int = 0
    duration_ms: float = 0.0


class ArchivedRun(BaseModel):
    """One finished run, ready to be written to the archive. Times are Unix seconds.

    ``record`` is the run's ``TaskRecord`` as JSON without ``result.steps``: the steps are kept
    once, in ``steps``, and put back by ``restore_record``.
    """

    run_id: str
    kind: RunKind
    tenant: str
    key_id: str | None = None
    user: str | None = None
    agent: str = DEFAULT_AGENT
    model: str | None = None
    status: TaskStatus
    error_type: str | None = None
    created_at: float
    started_at: float | None = None
    finished_at: float
    duration_ms: float | None = None
    """How long the run itself took (not its wait in the queue)."""
    queue_wait_ms: float | None = None
    """Submission to first start, for tasks; None for sync runs and never-started tasks."""
    usage: Usage = Field(default_factory=Usage)
    trace_id: str | None = None
    attempts: int = 0
    record: dict[str, object]
    steps: list[Step] = Field(default_factory=list)
    tools: list[ToolUse] = Field(default_factory=list)


def agent_of(record: TaskRecord) -> str:
    """The agent a run ran as: the one its result names, else the one it was submitted to
    (a task's ``agent``, the request's), else ``DEFAULT_AGENT``."""
    result = record.result
    return (
        (result.agent if result is not None else None)
        or record.agent
        or record.request.agent
        or DEFAULT_AGENT
    )


def user_of(request: RunRequest) -> str | None:
    """The caller's end user, from ``metadata.user`` when it is a non-empty string."""
    user = request.metadata.get("user")
    if isinstance(user, str) and user:
        return user[:USER_MAX_CHARS]
    return None


def tool_uses(steps: Iterable[Step]) -> list[ToolUse]:
    """Per tool (in order of first use): calls, failed calls, summed duration."""
    uses: dict[str, ToolUse] = {}
    for step in steps:
        if step.kind != "tool":
            continue
        use = uses.setdefault(step.name, ToolUse(tool=step.name, calls=0))
        use.calls += 1
        use.errors += int(step.status == "error")
        use.duration_ms = round(use.duration_ms + step.duration_ms, 3)
    return list(uses.values())


def _ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, end - start) * 1000, 3)


def _archived(record: TaskRecord, kind: RunKind, steps: list[Step]) -> ArchivedRun:
    if not record.status.terminal or record.finished_at is None:
        raise ValueError(f"run {record.task_id} has not finished (status {record.status.value})")
    result: RunResult | None = record.result
    usage = record.usage or (result.usage if result is not None else Usage())
    return ArchivedRun(
        run_id=record.task_id,
        kind=kind,
        tenant=record.tenant,
        key_id=record.key_id,
        user=user_of(record.request),
        agent=agent_of(record),
        model=result.model if result is not None else record.request.model,
        status=record.status,
        error_type=record.error.type if record.error is not None else None,
        created_at=record.created_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
        duration_ms=result.duration_ms
        if result is not None
        else _ms(record.started_at, record.finished_at),
        queue_wait_ms=_ms(record.created_at, record.started_at) if kind is RunKind.TASK else None,
        usage=usage,
        trace_id=record.trace_id or (result.trace_id if result is not None else None),
        attempts=record.attempts,
        record=record.model_dump(mode="json", exclude={"result": {"steps"}}),
        steps=steps,
        tools=tool_uses(steps),
    )


def archived_task(record: TaskRecord) -> ArchivedRun:
    """The archive row of a finished task (``ValueError`` if it has not finished)."""
    steps = list(record.result.steps) if record.result is not None else []
    return _archived(record, RunKind.TASK, steps)


def archived_sync_run(
    run_id: str,
    request: RunRequest,
    *,
    started_at: float,
    finished_at: float,
    result: RunResult | None = None,
    error: TaskError | None = None,
    usage: Usage | None = None,
    steps: list[Step] | None = None,
    key_id: str | None = None,
    trace_id: str | None = None,
) -> ArchivedRun:
    """The archive row of a sync run: ``result`` when it succeeded, else ``error`` (type
    ``cancelled`` when the client went away) with the ``usage`` and ``steps`` it had made.

    Its record has the ``TaskRecord`` shape (empty ``queue``, one attempt), so the fallback
    of ``GET /v1/tasks/{id}`` can show a sync run like a task.
    """
    if (result is None) == (error is None):
        raise ValueError("give exactly one of result or error")
    if result is not None:
        status = TaskStatus.SUCCEEDED
    elif error is not None and error.type == "cancelled":
        status = TaskStatus.CANCELLED
    else:
        status = TaskStatus.FAILED
    record = TaskRecord(
        task_id=run_id,
        status=status,
        queue="",
        request=request,
        created_at=started_at,
        tenant=request.tenant,
        key_id=key_id,
        started_at=started_at,
        finished_at=finished_at,
        attempts=1,
        result=result,
        error=error,
        usage=usage if usage is not None else (result.usage if result is not None else None),
        trace_id=trace_id or (result.trace_id if result is not None else None),
    )
    kept = list(result.steps) if result is not None else list(steps or [])
    return _archived(record, RunKind.SYNC, kept)


def restore_record(record: dict[str, object], steps: list[Step]) -> TaskRecord:
    """The ``TaskRecord`` an archive row holds, with its steps put back into its result."""
    result = record.get("result")
    if isinstance(result, dict):
        record = {**record, "result": {**result, "steps": [s.model_dump() for s in steps]}}
    return TaskRecord.model_validate(record)
