"""Retention on a real Postgres: runs older than the setting go, in batches of the set size,
with their tool rows; rows locked by someone else are skipped, not waited for; one sweeper at
a time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import event

from agent_service.history.retention import RETENTION_LOCK, Retention
from agent_service.history.runtime import History
from tests.history.factory import task_run

pytestmark = pytest.mark.integration

DAY = 86400.0


@contextmanager
def counting_deletes(history: History) -> Iterator[list[str]]:
    """The DELETE statements the engine sends while inside."""
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE"):
            statements.append(statement)

    event.listen(history.engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(history.engine.sync_engine, "before_cursor_execute", seen)


def _ids(url: str, table: str = "history_runs", column: str = "id") -> set[str]:
    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute(f"SELECT {column} FROM {table}").fetchall()}


async def test_old_runs_are_deleted_in_batches(history: History) -> None:
    now = time.time()
    old = [task_run(created_at=now - 31 * DAY - i * 60) for i in range(30)]
    young = [task_run(created_at=now - 29 * DAY + i * 60) for i in range(5)]
    await history.archive.write(old + young)
    url = history.settings.url.get_secret_value()  # type: ignore[union-attr]
    retention = Retention(history.engine, days=30, batch_size=7)
    with counting_deletes(history) as deletes:
        assert await retention.sweep() == 30
    assert len(deletes) == 5  # 7 + 7 + 7 + 7 + 2: one short transaction each
    assert _ids(url) == {run.run_id for run in young}
    assert _ids(url, "history_run_tools", "run_id") == {run.run_id for run in young}
    assert await retention.sweep() == 0


async def test_rows_locked_by_another_transaction_are_skipped(history: History) -> None:
    now = time.time()
    old = [task_run(created_at=now - 40 * DAY - i) for i in range(10)]
    await history.archive.write(old)
    url = history.settings.url.get_secret_value()  # type: ignore[union-attr]
    retention = Retention(history.engine, days=30, batch_size=4)
    with psycopg.connect(url) as holder:
        # e.g. feedback being written to that run right now
        holder.execute("SELECT 1 FROM history_runs WHERE id = %s FOR UPDATE", (old[0].run_id,))
        assert await retention.sweep() == 9
        holder.rollback()
    assert _ids(url) == {old[0].run_id}
    assert await retention.sweep() == 1


async def test_one_sweeper_at_a_time_and_zero_days_keeps_everything(history: History) -> None:
    await history.archive.write([task_run(created_at=time.time() - 400 * DAY)])
    url = history.settings.url.get_secret_value()  # type: ignore[union-attr]
    assert await Retention(history.engine, days=0, batch_size=10).sweep() is None
    retention = Retention(history.engine, days=30, batch_size=10)
    with psycopg.connect(url, autocommit=True) as other_worker:
        other_worker.execute("SELECT pg_advisory_lock(%s)", (RETENTION_LOCK,))
        assert await retention.sweep() is None
        other_worker.execute("SELECT pg_advisory_unlock(%s)", (RETENTION_LOCK,))
    assert await retention.sweep() == 1
    # the sweeper released its lock: another session can take it at once
    with psycopg.connect(url, autocommit=True) as conn:
        got = conn.execute("SELECT pg_try_advisory_lock(%s)", (RETENTION_LOCK,)).fetchone()
    assert got == (True,)
