"""Archiving runs and reading them back on a real Postgres: one run (the GET fallback), the
idempotent re-write, and the list with each filter and its cursor pagination."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg
import pytest

from agent_service.domain.history import RunKind, archived_task
from agent_service.domain.tasks import TaskStatus
from agent_service.history.cursor import InvalidCursorError, encode_cursor
from agent_service.history.models import MAX_PAGE, RunFilter
from agent_service.history.runtime import History
from agent_service.history.scope import Scope
from tests.history.factory import sync_run, task_record, task_run

pytestmark = pytest.mark.integration

ACME = Scope.of_tenant("acme")


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def test_a_task_reads_back_as_its_record(history: History) -> None:
    record = task_record(tools=(("calculator", "ok"), ("calculator", "error"), ("clock", "ok")))
    assert await history.archive.write([archived_task(record)]) == 1
    found = await history.runs.get(ACME, record.task_id)
    assert found is not None
    # The GET fallback returns exactly what Redis held, steps included.
    assert found.record == record
    assert found.kind is RunKind.TASK
    assert found.status is TaskStatus.SUCCEEDED
    assert (found.tenant, found.user, found.agent, found.model) == (
        "acme",
        "alice",
        "default",
        "sim",
    )
    assert found.usage == record.usage
    assert found.created_at == pytest.approx(record.created_at, abs=1e-5)
    assert found.queue_wait_ms == pytest.approx(500, abs=0.01)
    assert found.duration_ms == 250.0
    assert found.message == record.request.message
    assert found.trace_id == record.trace_id
    assert found.feedback is None
    with psycopg.connect(history.settings.url.get_secret_value()) as conn:  # type: ignore[union-attr]
        tools = conn.execute(
            "SELECT tool, calls, errors, tenant FROM history_run_tools WHERE run_id = %s "
            "ORDER BY tool",
            (record.task_id,),
        ).fetchall()
    assert tools == [("calculator", 2, 1, "acme"), ("clock", 1, 0, "acme")]


async def test_a_run_of_another_tenant_is_not_found_but_an_admin_sees_it(
    history: History,
) -> None:
    run = task_run(tenant="globex")
    await history.archive.write([run])
    assert await history.runs.get(ACME, run.run_id) is None
    assert await history.runs.get(Scope.of_tenant("globex"), run.run_id) is not None
    assert await history.runs.get(Scope.admin(), run.run_id) is not None
    assert await history.runs.get(ACME, "no-such-run") is None


async def test_failed_and_sync_runs_read_back(history: History) -> None:
    failed = task_run(status=TaskStatus.FAILED)
    chat = sync_run()
    broken_chat = sync_run(failed=True)
    assert await history.archive.write([failed, chat, broken_chat]) == 3
    got = await history.runs.get(ACME, failed.run_id)
    assert got is not None and got.error_type == "llm_unavailable" and got.record.result is None
    got = await history.runs.get(ACME, chat.run_id)
    assert got is not None and got.kind is RunKind.SYNC and got.queue_wait_ms is None
    assert got.record.result is not None and got.record.result.answer == "hi"
    got = await history.runs.get(ACME, broken_chat.run_id)
    assert got is not None and got.status is TaskStatus.FAILED
    assert got.error_type == "run_timeout"
    # A failed sync run keeps the steps it made.
    assert [s.name for s in broken_chat.steps] == ["sim", "calculator", "sim"]


async def test_writing_a_run_twice_keeps_one_row_unchanged(history: History) -> None:
    first, second = task_run(), task_run()
    assert await history.archive.write([first]) == 1
    url = history.settings.url.get_secret_value()  # type: ignore[union-attr]
    with psycopg.connect(url) as conn:
        archived_at = conn.execute(
            "SELECT archived_at FROM history_runs WHERE id = %s", (first.run_id,)
        ).fetchone()
    # A retaken batch holds it again, next to a new run.
    assert await history.archive.write([first, second]) == 1
    assert await history.archive.write([first, second]) == 0
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, archived_at FROM history_runs ORDER BY id").fetchall()
        tools = conn.execute("SELECT count(*) FROM history_run_tools").fetchone()
    assert sorted(r[0] for r in rows) == sorted([first.run_id, second.run_id])
    assert dict(rows)[first.run_id] == archived_at[0]  # type: ignore[index]
    assert tools == (2,)


async def test_nul_characters_are_archived_replaced(history: History) -> None:
    record = task_record(answer="a\x00b", user="eve\x00")
    await history.archive.write([archived_task(record)])
    found = await history.runs.get(ACME, record.task_id)
    assert found is not None and found.record.result is not None
    assert found.record.result.answer == "a\ufffdb"
    assert found.user == "eve\ufffd"


async def _archive_spread(history: History) -> list[str]:
    """30 acme runs a minute apart (i % 4 == 3: a sync run; else i % 3 == 0: a failed task;
    else a succeeded task: 7 sync, 7 failed), plus 5 of another tenant; acme ids newest
    first."""
    base = time.time() - 3600
    runs = []
    for i in range(30):
        if i % 4 == 3:
            run = sync_run(created_at=base + 60 * i)
        else:
            status = TaskStatus.FAILED if i % 3 == 0 else TaskStatus.SUCCEEDED
            run = task_run(created_at=base + 60 * i, status=status)
        runs.append(run)
    others = [task_run(tenant="globex", created_at=base + 60 * i + 1) for i in range(5)]
    await history.archive.write(runs + others)
    return [run.run_id for run in reversed(runs)]


async def _walk(history: History, where: RunFilter, limit: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = await history.runs.page(ACME, where, cursor, limit)
        assert len(page.items) <= limit
        seen += [item.run_id for item in page.items]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


async def test_list_pages_newest_first_with_each_filter(history: History) -> None:
    newest_first = await _archive_spread(history)
    assert await _walk(history, RunFilter(), 7) == newest_first
    assert await _walk(history, RunFilter(), MAX_PAGE) == newest_first
    page = await history.runs.page(ACME, RunFilter(), None, 30)
    assert page.next_cursor is None and len(page.items) == 30
    summaries = {item.run_id: item for item in page.items}

    failed = await _walk(history, RunFilter(statuses=(TaskStatus.FAILED,)), 4)
    assert failed == [i for i in newest_first if summaries[i].status is TaskStatus.FAILED]
    assert len(failed) == 7
    both = await _walk(history, RunFilter(statuses=(TaskStatus.FAILED, TaskStatus.SUCCEEDED)), 5)
    assert both == newest_first

    syncs = await _walk(history, RunFilter(kind=RunKind.SYNC), 3)
    assert syncs == [i for i in newest_first if summaries[i].kind is RunKind.SYNC]
    assert len(syncs) == 7

    assert await _walk(history, RunFilter(agent="default"), 9) == newest_first
    assert await _walk(history, RunFilter(agent="other"), 9) == []

    # from inclusive, to exclusive, by creation time
    oldest_first = list(reversed(newest_first))
    start = summaries[oldest_first[10]].created_at
    end = summaries[oldest_first[20]].created_at
    window = RunFilter(created_from=_at(start), created_to=_at(end))
    assert await _walk(history, window, 4) == list(reversed(oldest_first[10:20]))
    # admin sees the other tenant's runs too
    everyone = await history.runs.page(Scope.admin(), RunFilter(), None, MAX_PAGE)
    assert len(everyone.items) == 35


async def test_pages_are_stable_while_runs_are_archived(history: History) -> None:
    newest_first = await _archive_spread(history)
    first = await history.runs.page(ACME, RunFilter(), None, 10)
    # Runs archived between two pages: newer ones, and a late one older than the cursor.
    await history.archive.write([task_run(), task_run(created_at=time.time() - 7200)])
    rest = await _walk_from(history, first.next_cursor, 10)
    walked = [item.run_id for item in first.items] + rest
    assert walked[:30] == newest_first  # no run twice, none of the first 30 missed
    assert len(walked) == 31  # the late, older one appears at the end


async def _walk_from(history: History, cursor: str | None, limit: int) -> list[str]:
    seen: list[str] = []
    while cursor is not None:
        page = await history.runs.page(ACME, RunFilter(), cursor, limit)
        seen += [item.run_id for item in page.items]
        cursor = page.next_cursor
    return seen


@pytest.mark.parametrize("cursor", ["", "not base64!", "W10", "eyJhIjoxfQ", "WzEsMl0"])
async def test_a_cursor_the_service_did_not_make_is_refused(history: History, cursor: str) -> None:
    with pytest.raises(InvalidCursorError):
        await history.runs.page(ACME, RunFilter(), cursor, 10)


async def test_page_size_is_bounded(history: History) -> None:
    for limit in (0, MAX_PAGE + 1):
        with pytest.raises(ValueError, match="limit"):
            await history.runs.page(ACME, RunFilter(), None, limit)
    # a well-formed cursor past everything is an empty last page
    page = await history.runs.page(ACME, RunFilter(), encode_cursor(_at(0), ""), 10)
    assert page.items == [] and page.next_cursor is None
