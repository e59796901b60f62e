"""Writing finished runs to the archive, idempotently.

Called by ``worker.history_drainer`` with a batch it leased from the outbox. A batch is one
transaction: the runs (``INSERT ... ON CONFLICT (id) DO NOTHING``) and the tool rows of the
runs that were new. Writing a run that is already archived (a batch retaken after its drainer
died between the write and the outbox settle) changes nothing, so a retry writes one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_service.domain.history import ArchivedRun
from agent_service.history.engine import is_unavailable, pg_guarded
from agent_service.history.models import ArchiveRejectedError
from agent_service.history.schema import run_tools, runs

T = TypeVar("T")


def to_datetime(seconds: float) -> datetime:
    """A Unix time as an aware UTC datetime (what ``timestamptz`` columns take)."""
    return datetime.fromtimestamp(seconds, UTC)


def _text(value: T) -> T:
    """``value`` with NUL characters replaced: Postgres refuses them in text and JSONB, and a
    model or tool may well produce one."""
    cleaned: Any = value
    if isinstance(value, str) and "\x00" in value:
        cleaned = value.replace("\x00", "\ufffd")
    elif isinstance(value, dict):
        cleaned = {_text(k): _text(v) for k, v in value.items()}
    elif isinstance(value, list):
        cleaned = [_text(v) for v in value]
    return cast(T, cleaned)


def run_row(run: ArchivedRun) -> dict[str, Any]:
    """The ``history_runs`` row of ``run``."""
    return _text(
        {
            "id": run.run_id,
            "kind": run.kind.value,
            "tenant": run.tenant,
            "key_id": run.key_id,
            "user_id": run.user,
            "agent": run.agent,
            "model": run.model,
            "status": run.status.value,
            "error_type": run.error_type,
            "created_at": to_datetime(run.created_at),
            "started_at": to_datetime(run.started_at) if run.started_at is not None else None,
            "finished_at": to_datetime(run.finished_at),
            "duration_ms": run.duration_ms,
            "queue_wait_ms": run.queue_wait_ms,
            "input_tokens": run.usage.input_tokens,
            "output_tokens": run.usage.output_tokens,
            "total_tokens": run.usage.total_tokens,
            "cost_usd": run.usage.cost_usd,
            "trace_id": run.trace_id,
            "attempts": run.attempts,
            "record": run.record,
            "steps": [step.model_dump(mode="json") for step in run.steps],
        }
    )


def tool_rows(run: ArchivedRun) -> list[dict[str, Any]]:
    """The ``history_run_tools`` rows of ``run``."""
    return [
        _text(
            {
                "run_id": run.run_id,
                "tool": use.tool,
                "tenant": run.tenant,
                "created_at": to_datetime(run.created_at),
                "calls": use.calls,
                "errors": use.errors,
                "duration_ms": use.duration_ms,
            }
        )
        for use in run.tools
    ]


class HistoryArchive:
    """Writes runs with ``engine``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @pg_guarded
    async def write(self, batch: Sequence[ArchivedRun]) -> int:
        """Archive ``batch`` in one transaction; returns how many runs were new.

        ``DependencyUnavailableError`` when Postgres is down; ``ArchiveRejectedError`` when it
        refuses a run of the batch (the caller writes the runs one by one to find it).
        """
        if not batch:
            return 0
        try:
            return await self._write(batch)
        except DBAPIError as exc:
            if is_unavailable(exc):
                raise
            raise ArchiveRejectedError(f"{type(exc.orig).__name__}: {exc.orig}"[:500]) from exc

    async def _write(self, batch: Sequence[ArchivedRun]) -> int:
        async with self._engine.begin() as conn:
            inserted = await conn.execute(
                insert(runs)
                .on_conflict_do_nothing(index_elements=[runs.c.id])
                .returning(runs.c.id),
                [run_row(run) for run in batch],
            )
            new = {row.id for row in inserted}
            tools = [row for run in batch if run.run_id in new for row in tool_rows(run)]
            if tools:
                await conn.execute(insert(run_tools).on_conflict_do_nothing(), tools)
        return len(new)
