"""Finished runs for the history tests: task records and sync runs with chosen fields, built
through the same domain functions the service uses."""

from __future__ import annotations

import time
import uuid
from typing import Any

from agent_service.domain.history import ArchivedRun, archived_sync_run, archived_task
from agent_service.domain.runs import RunRequest, RunResult, Step, Usage
from agent_service.domain.tasks import TaskError, TaskRecord, TaskStatus


def steps_with_tools(*tools: tuple[str, str], model: str = "sim") -> list[Step]:
    """An LLM step, then one step per (tool, "ok" | "error"), then a final LLM step."""
    now = time.time()
    steps = [
        Step(
            index=0,
            kind="llm",
            name=model,
            started_at=now,
            duration_ms=12.5,
            usage=Usage(input_tokens=10, output_tokens=4, total_tokens=14, cost_usd=0.0001),
            tool_calls=[name for name, _ in tools],
        )
    ]
    for index, (name, status) in enumerate(tools, start=1):
        steps.append(
            Step(
                index=index,
                kind="tool",
                name=name,
                started_at=now,
                duration_ms=2.0,
                status="ok" if status == "ok" else "error",
                input='{"expression": "2+3"}',
                output="5" if status == "ok" else None,
                error=None if status == "ok" else "boom",
            )
        )
    steps.append(Step(index=len(steps), kind="llm", name=model, started_at=now, duration_ms=8.0))
    return steps


def task_record(
    *,
    task_id: str | None = None,
    tenant: str = "acme",
    status: TaskStatus = TaskStatus.SUCCEEDED,
    created_at: float | None = None,
    duration_ms: float = 250.0,
    model: str = "sim",
    user: str | None = "alice",
    tokens: tuple[int, int] = (100, 20),
    cost_usd: float = 0.0012,
    tools: tuple[tuple[str, str], ...] = (("calculator", "ok"),),
    metadata_extra: dict[str, Any] | None = None,
    answer: str = "5",
    error_type: str = "llm_unavailable",
) -> TaskRecord:
    """A finished task record as the worker leaves it in Redis."""
    created = created_at if created_at is not None else time.time() - 5
    started = created + 0.5
    finished = started + duration_ms / 1000
    usage = Usage(
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        total_tokens=tokens[0] + tokens[1],
        cost_usd=cost_usd,
    )
    metadata: dict[str, Any] = dict(metadata_extra or {})
    if user is not None:
        metadata["user"] = user
    request = RunRequest(
        message=f"what is 2+3? ({uuid.uuid4().hex[:6]})", tenant=tenant, metadata=metadata
    )
    result = None
    error = None
    if status is TaskStatus.SUCCEEDED:
        result = RunResult(
            answer=answer,
            steps=steps_with_tools(*tools, model=model),
            usage=usage,
            model=model,
            duration_ms=duration_ms,
            trace_id="0af7651916cd43dd8448eb211c80319c",
        )
    else:
        error = TaskError(
            type=error_type if status is TaskStatus.FAILED else "cancelled", message="it went wrong"
        )
    return TaskRecord(
        task_id=task_id or uuid.uuid4().hex,
        status=status,
        queue="agent",
        request=request,
        created_at=created,
        tenant=tenant,
        key_id="k-" + tenant,
        started_at=started,
        finished_at=finished,
        attempts=1,
        result=result,
        error=error,
        usage=usage,
        trace_id="0af7651916cd43dd8448eb211c80319c",
    )


def task_run(**fields: Any) -> ArchivedRun:
    return archived_task(task_record(**fields))


def sync_run(
    *,
    run_id: str | None = None,
    tenant: str = "acme",
    created_at: float | None = None,
    duration_ms: float = 120.0,
    model: str = "sim",
    tokens: tuple[int, int] = (50, 10),
    cost_usd: float = 0.0005,
    failed: bool = False,
) -> ArchivedRun:
    """A finished sync run, as the API would put it on the outbox."""
    started = created_at if created_at is not None else time.time() - 3
    usage = Usage(
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        total_tokens=sum(tokens),
        cost_usd=cost_usd,
    )
    request = RunRequest(message="hello", tenant=tenant, metadata={"user": "bob"})
    if failed:
        return archived_sync_run(
            run_id or uuid.uuid4().hex,
            request,
            started_at=started,
            finished_at=started + duration_ms / 1000,
            error=TaskError(type="run_timeout", message="too slow"),
            usage=usage,
            steps=steps_with_tools(("calculator", "error"), model=model),
            key_id="k-" + tenant,
        )
    result = RunResult(
        answer="hi",
        steps=steps_with_tools(model=model),
        usage=usage,
        model=model,
        duration_ms=duration_ms,
    )
    return archived_sync_run(
        run_id or uuid.uuid4().hex,
        request,
        started_at=started,
        finished_at=started + duration_ms / 1000,
        result=result,
        key_id="k-" + tenant,
    )
