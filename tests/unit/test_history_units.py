"""Pure parts of history, table-driven: archive rows from runs, cursors, settings, usage
query checks, the metrics' named methods."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from pydantic import SecretStr, ValidationError

from agent_service.domain.history import (
    DEFAULT_AGENT,
    USER_MAX_CHARS,
    RunKind,
    ToolUse,
    agent_of,
    archived_sync_run,
    archived_task,
    restore_record,
    tool_uses,
)
from agent_service.domain.runs import RunRequest, RunResult, Step, Usage
from agent_service.domain.tasks import TaskError, TaskRecord, TaskStatus
from agent_service.history.archive import run_row, tool_rows
from agent_service.history.cursor import InvalidCursorError, decode_cursor, encode_cursor
from agent_service.history.engine import database_url
from agent_service.history.models import (
    Dimension,
    HistoryConfigError,
    InvalidUsageQueryError,
    UsageQuery,
    parse_dimensions,
    parse_interval,
)
from agent_service.observability.metrics import Metrics
from agent_service.settings import HistorySettings, Settings


def _step(index: int, kind: str, name: str, status: str = "ok", ms: float = 1.0) -> Step:
    return Step.model_validate(
        {
            "index": index,
            "kind": kind,
            "name": name,
            "started_at": 0.0,
            "duration_ms": ms,
            "status": status,
        }
    )


def test_tool_uses_count_calls_errors_and_time_per_tool() -> None:
    steps = [
        _step(0, "llm", "sim"),
        _step(1, "tool", "calculator", ms=2.5),
        _step(2, "tool", "clock", "error", ms=1.0),
        _step(3, "tool", "calculator", "error", ms=0.5),
        _step(4, "llm", "sim"),
    ]
    assert tool_uses(steps) == [
        ToolUse(tool="calculator", calls=2, errors=1, duration_ms=3.0),
        ToolUse(tool="clock", calls=1, errors=1, duration_ms=1.0),
    ]
    assert tool_uses([_step(0, "llm", "sim")]) == []


def _record(**update: object) -> TaskRecord:
    now = time.time()
    record = TaskRecord(
        task_id="t1",
        status=TaskStatus.SUCCEEDED,
        queue="agent",
        request=RunRequest(message="hi", tenant="acme", metadata={"user": "alice"}),
        created_at=now - 2,
        tenant="acme",
        key_id="k1",
        started_at=now - 1.5,
        finished_at=now,
        attempts=2,
        result=RunResult(
            answer="ok",
            steps=[_step(0, "llm", "sim"), _step(1, "tool", "calculator")],
            usage=Usage(input_tokens=3, output_tokens=2, total_tokens=5, cost_usd=0.1),
            model="sim",
            duration_ms=1400.0,
            trace_id="run-trace",
        ),
        usage=Usage(input_tokens=3, output_tokens=2, total_tokens=5, cost_usd=0.1),
        trace_id="api-trace",
    )
    return record.model_copy(update=update)


@pytest.mark.parametrize(
    ("result_agent", "record_agent", "request_agent", "expected"),
    [
        ("support", "triage", "triage", "support"),  # who ran it, first
        (None, "triage", None, "triage"),  # a task that failed: the agent it was submitted to
        (None, None, "triage", "triage"),  # a sync run that failed: the request names it
        (None, None, None, DEFAULT_AGENT),  # a record from before named agents
    ],
)
def test_the_agent_of_a_run(
    result_agent: str | None, record_agent: str | None, request_agent: str | None, expected: str
) -> None:
    record = _record()
    assert record.result is not None
    record.result.agent = result_agent
    record.agent = record_agent
    record.request.agent = request_agent
    assert agent_of(record) == expected
    assert archived_task(record).agent == expected


def test_a_finished_task_as_an_archive_row() -> None:
    record = _record()
    run = archived_task(record)
    assert (run.run_id, run.kind, run.tenant, run.key_id) == ("t1", RunKind.TASK, "acme", "k1")
    assert (run.user, run.agent, run.model, run.status) == (
        "alice",
        DEFAULT_AGENT,
        "sim",
        TaskStatus.SUCCEEDED,
    )
    assert run.duration_ms == 1400.0  # the run's own time
    assert run.queue_wait_ms == pytest.approx(500, abs=0.01)
    assert run.trace_id == "api-trace" and run.attempts == 2
    assert "steps" not in run.record["result"]  # type: ignore[operator]
    assert [s.index for s in run.steps] == [0, 1]
    assert run.tools == [ToolUse(tool="calculator", calls=1, duration_ms=1.0)]
    assert restore_record(run.record, run.steps) == record


@pytest.mark.parametrize(
    ("update", "field", "expected"),
    [
        ({"status": TaskStatus.RUNNING}, None, ValueError),
        ({"finished_at": None}, None, ValueError),
        (
            {
                "result": None,
                "status": TaskStatus.FAILED,
                "error": TaskError(type="run_timeout", message="slow"),
            },
            "error_type",
            "run_timeout",
        ),
        ({"result": None, "status": TaskStatus.FAILED}, "model", None),
        ({"started_at": None, "result": None, "status": TaskStatus.CANCELLED}, "duration_ms", None),
        (
            {"started_at": None, "result": None, "status": TaskStatus.CANCELLED},
            "queue_wait_ms",
            None,
        ),
        ({"request": RunRequest(message="x", metadata={"user": 42})}, "user", None),
        ({"request": RunRequest(message="x", metadata={"user": ""})}, "user", None),
        (
            {"request": RunRequest(message="x", metadata={"user": "u" * 999})},
            "user",
            "u" * USER_MAX_CHARS,
        ),
        ({"request": RunRequest(message="x", model="big")}, "model", "sim"),
    ],
)
def test_archive_row_edge_cases(
    update: dict[str, object], field: str | None, expected: object
) -> None:
    record = _record(**update)
    if expected is ValueError:
        with pytest.raises(ValueError, match="has not finished"):
            archived_task(record)
        return
    assert field is not None
    assert getattr(archived_task(record), field) == expected


def test_a_failed_task_duration_comes_from_its_timestamps() -> None:
    record = _record(result=None, status=TaskStatus.FAILED)
    assert record.started_at is not None and record.finished_at is not None
    expected = (record.finished_at - record.started_at) * 1000
    assert archived_task(record).duration_ms == pytest.approx(expected, abs=0.01)


def test_sync_runs_become_task_shaped_records() -> None:
    request = RunRequest(message="hi", tenant="acme")
    result = _record().result
    assert result is not None
    ok = archived_sync_run(
        "r1", request, started_at=10.0, finished_at=11.5, result=result, key_id="k1"
    )
    assert (ok.kind, ok.status, ok.queue_wait_ms, ok.created_at) == (
        RunKind.SYNC,
        TaskStatus.SUCCEEDED,
        None,
        10.0,
    )
    assert ok.usage == result.usage and ok.trace_id == "run-trace"
    restored = restore_record(ok.record, ok.steps)
    assert restored.queue == "" and restored.attempts == 1 and restored.result == result
    cancelled = archived_sync_run(
        "r2",
        request,
        started_at=10.0,
        finished_at=10.2,
        error=TaskError(type="cancelled", message="client went away"),
        steps=[_step(0, "llm", "sim")],
    )
    assert cancelled.status is TaskStatus.CANCELLED and len(cancelled.steps) == 1
    assert cancelled.duration_ms == pytest.approx(200, abs=0.01)
    with pytest.raises(ValueError, match="exactly one"):
        archived_sync_run("r3", request, started_at=1.0, finished_at=2.0)


def test_rows_carry_times_as_utc_and_tools_with_the_run() -> None:
    run = archived_task(_record())
    row = run_row(run)
    assert row["created_at"].tzinfo is UTC
    assert row["created_at"].timestamp() == pytest.approx(run.created_at, abs=1e-6)
    assert row["steps"][1]["name"] == "calculator"
    [tools] = tool_rows(run)
    assert (tools["run_id"], tools["tool"], tools["tenant"]) == ("t1", "calculator", "acme")


@pytest.mark.parametrize(
    "moment",
    [datetime(2026, 12, 4, 5, 6, 7, 891011, tzinfo=UTC), datetime(1999, 1, 1, tzinfo=UTC)],
)
def test_cursor_round_trip_is_exact(moment: datetime) -> None:
    assert decode_cursor(encode_cursor(moment, "abc")) == (moment, "abc")
    assert "=" not in encode_cursor(moment, "abc")


@pytest.mark.parametrize(
    "cursor",
    ["", "%%%", "bnVsbA", "WyJhIiwiYiJd", "W3RydWUsImEiXQ", "Wzk5OTk5OTk5OTk5OTk5OTk5OTk5LCJhIl0"],
)
def test_foreign_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursorError):
        decode_cursor(cursor)


def test_history_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_HISTORY_URL", "postgres://u:p@db:5432/agent")
    monkeypatch.setenv("AGENT_HISTORY_RETENTION_DAYS", "30")
    monkeypatch.setenv("AGENT_HISTORY_ARCHIVED_RECORD_TTL_SECONDS", "600")
    settings = Settings().history
    assert settings.enabled and settings.retention_days == 30
    assert settings.archived_record_ttl_seconds == 600
    assert "p@db" not in repr(settings)  # the password never reaches a log line
    assert not Settings.model_construct().history.enabled  # history off without a URL


def test_lease_must_outlast_a_statement() -> None:
    with pytest.raises(ValidationError, match="lease_seconds"):
        HistorySettings(lease_seconds=10, statement_timeout_seconds=10)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db/agent", "postgresql+psycopg://u:***@db/agent"),
        ("postgresql://u@db:6543/agent", "postgresql+psycopg://u@db:6543/agent"),
        ("postgresql+psycopg://u:p@db/agent", "postgresql+psycopg://u:***@db/agent"),
    ],
)
def test_database_urls_use_psycopg(url: str, expected: str) -> None:
    assert str(database_url(HistorySettings(url=SecretStr(url)))) == expected


@pytest.mark.parametrize("url", ["mysql://u@db/x", "not a url", ""])
def test_database_urls_that_are_refused(url: str) -> None:
    with pytest.raises(HistoryConfigError):
        database_url(HistorySettings(url=SecretStr(url)))


def test_a_password_file_replaces_the_url_password(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cr/t@:x\n")
    settings = HistorySettings(url=SecretStr("postgresql://u:old@db/agent"), password_file=secret)
    assert database_url(settings).password == "s3cr/t@:x"
    missing = HistorySettings(url=SecretStr("postgresql://u@db/a"), password_file=tmp_path / "x")
    with pytest.raises(HistoryConfigError, match="PASSWORD_FILE"):
        database_url(missing)


def test_history_metrics_named_methods() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.prime("q", [], [])
    value = metrics.registry.get_sample_value
    assert value("agent_history_archive_errors_total", {"reason": "database"}) == 0
    assert value("agent_history_outbox_depth") == 0
    metrics.history_outbox(12, 3.5)
    metrics.history_archive_failed("database")
    metrics.history_archive_failed("rejected", 3)
    metrics.feedback_given("default", -1)
    assert value("agent_history_outbox_depth") == 12
    assert value("agent_history_archive_lag_seconds") == 3.5
    assert value("agent_history_archive_errors_total", {"reason": "database"}) == 1
    assert value("agent_history_archive_errors_total", {"reason": "rejected"}) == 3
    assert value("agent_feedback_total", {"agent": "default", "score": "-1"}) == 1


def test_usage_window_checks_need_no_database() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    UsageQuery(start, start + timedelta(days=1), interval=timedelta(minutes=5)).check()
    with pytest.raises(InvalidUsageQueryError, match="buckets"):
        UsageQuery(start, start + timedelta(days=30), interval=timedelta(minutes=5)).check()


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("7d", 604800)]
)
def test_usage_intervals(text: str, seconds: int) -> None:
    assert parse_interval(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "h", "0h", "-1h", "1.5h", "1w", "1 h", "١h"])
def test_usage_intervals_refused(text: str) -> None:
    with pytest.raises(InvalidUsageQueryError, match="interval"):
        parse_interval(text)


def test_usage_group_by_parameters() -> None:
    assert parse_dimensions(["agent,model", " tool "]) == (
        Dimension.AGENT,
        Dimension.MODEL,
        Dimension.TOOL,
    )
    assert parse_dimensions([]) == ()
    with pytest.raises(InvalidUsageQueryError, match="group_by takes"):
        parse_dimensions(["agent,colour"])
