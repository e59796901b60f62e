"""The API's side of the history, pure parts: who reads whose runs, the event stream replayed
from an archived record, and sync runs handed to the outbox (a recording fake outbox)."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry

from agent_service.agent.loop import RunFailedError
from agent_service.api.errors import ApiError
from agent_service.api.history_reads import read_scope, replayed_events
from agent_service.api.sync_runs import SyncRunArchiver
from agent_service.domain.callers import Caller
from agent_service.domain.errors import AgentError, DependencyUnavailableError, ErrorType
from agent_service.domain.history import ArchivedRun, RunKind
from agent_service.domain.messages import TokenUsage
from agent_service.domain.runs import RunRequest, RunResult, Step, Usage
from agent_service.domain.tasks import TaskError, TaskRecord, TaskStatus
from agent_service.history.scope import Scope
from agent_service.observability.metrics import Metrics

TENANT = Caller("acme", "k1")
ADMIN = Caller("ops", "k2", role="admin")


@pytest.mark.parametrize(
    ("caller", "tenant", "scope"),
    [
        (TENANT, None, Scope.of_tenant("acme")),
        (TENANT, "acme", Scope.of_tenant("acme")),
        (ADMIN, None, Scope.admin()),
        (ADMIN, "acme", Scope.of_tenant("acme")),
        (ADMIN, "ops", Scope.of_tenant("ops")),
    ],
)
def test_who_reads_whose_runs(caller: Caller, tenant: str | None, scope: Scope) -> None:
    assert read_scope(caller, tenant) == scope


def test_a_tenant_key_asking_for_another_tenant_is_forbidden() -> None:
    with pytest.raises(ApiError) as info:
        read_scope(TENANT, "globex")
    assert (info.value.status, info.value.type) == (403, ErrorType.FORBIDDEN)


def _step(index: int, name: str, kind: str = "llm", tokens: int = 0) -> Step:
    usage = Usage(input_tokens=tokens, total_tokens=tokens, cost_usd=tokens / 1000)
    return Step.model_validate(
        {
            "index": index,
            "kind": kind,
            "name": name,
            "started_at": 0.0,
            "duration_ms": 1.0,
            "usage": usage if kind == "llm" else None,
        }
    )


def _record(status: TaskStatus, **fields: object) -> TaskRecord:
    return TaskRecord(
        task_id="a" * 32,
        status=status,
        queue="agent",
        request=RunRequest(message="hi"),
        created_at=1.0,
        finished_at=2.0,
        **fields,  # type: ignore[arg-type]
    )


def test_an_archived_run_replays_its_steps_then_its_end() -> None:
    steps = [_step(0, "sim"), _step(1, "calculator", "tool"), _step(2, "sim")]
    result = RunResult(answer="84", steps=steps, usage=Usage(), model="sim", duration_ms=3.0)
    record = _record(TaskStatus.SUCCEEDED, result=result)
    events = list(replayed_events(record, None))
    assert [(i, e.type) for i, e in events] == [
        ("0-1", "step"),
        ("0-2", "step"),
        ("0-3", "step"),
        ("0-4", "done"),
    ]
    assert events[1][1].data["name"] == "calculator"
    assert events[-1][1].data == {"status": "succeeded", "result": result.model_dump(mode="json")}
    assert [i for i, _ in replayed_events(record, "0-2")] == ["0-3", "0-4"]
    assert [i for i, _ in replayed_events(record, "1700000000000-0")] == [
        "0-1",
        "0-2",
        "0-3",
        "0-4",
    ]
    failed = _record(TaskStatus.FAILED, error=TaskError(type="run_timeout", message="slow"))
    assert [(e.type, e.data) for _, e in replayed_events(failed, None)] == [
        ("error", {"status": "failed", "error": {"type": "run_timeout", "message": "slow"}})
    ]
    cancelled = _record(TaskStatus.CANCELLED)
    assert [e.type for _, e in replayed_events(cancelled, None)] == ["cancelled"]


class RecordingOutbox:
    """Collects what the archiver enqueues; fails when told to (Redis down)."""

    def __init__(self, fail: bool = False) -> None:
        self.runs: list[ArchivedRun] = []
        self.fail = fail

    async def enqueue_sync_run(self, run: ArchivedRun) -> None:
        if self.fail:
            raise DependencyUnavailableError("Redis is unavailable")
        self.runs.append(run)


async def _settle(archiver: SyncRunArchiver) -> None:
    await asyncio.sleep(0)
    await archiver.close(5)


async def test_sync_runs_reach_the_outbox_once_with_their_outcome() -> None:
    outbox = RecordingOutbox()
    metrics = Metrics(CollectorRegistry())
    archiver = SyncRunArchiver(outbox, metrics)  # type: ignore[arg-type]
    request = RunRequest(message="hi", tenant="acme", agent="support", metadata={"user": "al"})
    caller = Caller("acme", "k1")

    ok = archiver.begin(request, caller)
    steps = [_step(0, "sim", tokens=10), _step(1, "calculator", "tool")]
    result = RunResult(answer="a", steps=steps, usage=Usage(total_tokens=10), model="sim",
                       duration_ms=5.0, agent="support")  # fmt: skip
    answered = ok.succeeded(result)
    assert answered.run_id == ok.run_id and ok.headers == {"X-Run-Id": ok.run_id}
    ok.succeeded(result)  # a second end is ignored

    failed = archiver.begin(request, caller)
    cause = AgentError(ErrorType.LLM_UNAVAILABLE, "every model failed")
    failed.failed(RunFailedError(cause, steps[:1], TokenUsage(input_tokens=10), "support"))

    left = archiver.begin(request, caller)
    left.interrupted([_step(0, "sim", tokens=7), _step(1, "sim", tokens=5)])
    await _settle(archiver)

    by_id = {run.run_id: run for run in outbox.runs}
    assert list(by_id) == [ok.run_id, failed.run_id, left.run_id]
    done = by_id[ok.run_id]
    assert (done.kind, done.status, done.agent, done.user, done.key_id) == (
        RunKind.SYNC, TaskStatus.SUCCEEDED, "support", "al", "k1"
    )  # fmt: skip
    assert [t.tool for t in done.tools] == ["calculator"] and done.usage.total_tokens == 10
    assert done.record["result"]["run_id"] == ok.run_id  # type: ignore[index]
    lost = by_id[failed.run_id]
    assert (lost.status, lost.error_type, lost.usage.input_tokens) == (
        TaskStatus.FAILED, "llm_unavailable", 10
    )  # fmt: skip
    gone = by_id[left.run_id]
    assert (gone.status, gone.error_type, gone.usage.input_tokens) == (
        TaskStatus.CANCELLED, "cancelled", 12
    )  # fmt: skip
    assert gone.started_at is not None and gone.finished_at >= gone.started_at


async def test_an_unreachable_outbox_costs_the_history_entry_not_the_answer() -> None:
    metrics = Metrics(CollectorRegistry())
    archiver = SyncRunArchiver(RecordingOutbox(fail=True), metrics)  # type: ignore[arg-type]
    run = archiver.begin(RunRequest(message="hi"), Caller("acme", "k1"))
    run.succeeded(RunResult(answer="a", steps=[], usage=Usage(), model="sim", duration_ms=1.0))
    await _settle(archiver)
    failures = metrics.registry.get_sample_value(
        "agent_history_archive_errors_total", {"reason": "outbox"}
    )
    assert failures == 1


async def test_without_history_runs_get_ids_and_nothing_is_archived() -> None:
    archiver = SyncRunArchiver(None, Metrics(CollectorRegistry()))
    first = archiver.begin(RunRequest(message="hi"), Caller("acme", "k1"))
    second = archiver.begin(RunRequest(message="hi"), Caller("acme", "k1"))
    assert first.run_id != second.run_id and len(first.run_id) == 32
    assert first.started_at <= time.time()
    first.succeeded(RunResult(answer="a", steps=[], usage=Usage(), model="sim", duration_ms=1.0))
    await _settle(archiver)
