"""Reading archived runs: one run, and a tenant's runs page by page.

For the API (wired by the lead):

- ``GET /v1/tasks/{task_id}`` falls back to ``RunQueries.get(scope, task_id)`` when Redis has no
  record (archived and expired there); None answers 404. ``HistoryRun.record`` is the
  ``TaskRecord`` the route returns, steps included, so a client never sees the difference.
- ``GET /v1/tasks`` is ``RunQueries.page(scope, RunFilter(...), cursor, limit)`` with query
  parameters ``status`` (one or more of ``succeeded``, ``failed``, ``cancelled``; repeated or
  comma-separated), ``agent``, ``from`` and ``to`` (creation time; from inclusive, to
  exclusive), ``kind`` (``task``, ``sync``; default both), ``cursor`` (``next_cursor`` of the
  previous page) and ``limit`` (1..``MAX_PAGE``, default ``DEFAULT_PAGE``). Newest first.
  ``InvalidCursorError`` answers 400.

The models it answers with, and ``RunFilter``, are in ``models`` (the API imports them without
SQLAlchemy).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_service.domain.history import restore_record
from agent_service.domain.runs import Step, Usage
from agent_service.history.cursor import decode_cursor, encode_cursor
from agent_service.history.engine import pg_guarded
from agent_service.history.models import (
    DEFAULT_PAGE,
    MAX_PAGE,
    PREVIEW_CHARS,
    Feedback,
    HistoryRun,
    RunFilter,
    RunPage,
    RunSummary,
)
from agent_service.history.schema import runs
from agent_service.history.scope import Scope

_SUMMARY = (
    runs.c.id,
    runs.c.kind,
    runs.c.tenant,
    runs.c.status,
    runs.c.agent,
    runs.c.model,
    runs.c.user_id,
    runs.c.key_id,
    runs.c.error_type,
    runs.c.created_at,
    runs.c.started_at,
    runs.c.finished_at,
    runs.c.duration_ms,
    runs.c.queue_wait_ms,
    runs.c.input_tokens,
    runs.c.output_tokens,
    runs.c.total_tokens,
    runs.c.cost_usd,
    runs.c.trace_id,
    runs.c.attempts,
    runs.c.feedback_score,
    func.left(runs.c.record[("request", "message")].astext, PREVIEW_CHARS).label("message"),
)


def _seconds(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _summary_fields(row: Any) -> dict[str, Any]:
    return {
        "run_id": row.id,
        "kind": row.kind,
        "tenant": row.tenant,
        "status": row.status,
        "agent": row.agent,
        "model": row.model,
        "user": row.user_id,
        "key_id": row.key_id,
        "error_type": row.error_type,
        "created_at": row.created_at.timestamp(),
        "started_at": _seconds(row.started_at),
        "finished_at": row.finished_at.timestamp(),
        "duration_ms": row.duration_ms,
        "queue_wait_ms": row.queue_wait_ms,
        "usage": Usage(
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            total_tokens=row.total_tokens,
            cost_usd=row.cost_usd,
        ),
        "trace_id": row.trace_id,
        "attempts": row.attempts,
        "message": row.message,
        "feedback_score": row.feedback_score,
    }


class RunQueries:
    """Reads archived runs with ``engine``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @pg_guarded
    async def get(self, scope: Scope, run_id: str) -> HistoryRun | None:
        """Run ``run_id`` if archived and in ``scope`` (another tenant's run is None, as an
        unknown one: its existence is not revealed)."""
        query = select(
            *_SUMMARY,
            runs.c.record,
            runs.c.steps,
            runs.c.feedback_comment,
            runs.c.feedback_at,
        ).where(runs.c.id == run_id, scope.where(runs))
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        steps = [Step.model_validate(step) for step in row.steps]
        feedback = None
        if row.feedback_score is not None:
            feedback = Feedback(
                score=row.feedback_score,
                comment=row.feedback_comment,
                at=row.feedback_at.timestamp(),
            )
        return HistoryRun(
            **_summary_fields(row),
            record=restore_record(row.record, steps),
            feedback=feedback,
        )

    @pg_guarded
    async def page(
        self,
        scope: Scope,
        where: RunFilter | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_PAGE,
    ) -> RunPage:
        """A page of runs in ``scope``, newest first, after ``cursor``.

        ``ValueError`` for a ``limit`` outside 1..``MAX_PAGE``; ``InvalidCursorError`` for a
        cursor this service did not make.
        """
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        where = where or RunFilter()
        conditions = [scope.where(runs)]
        if where.statuses:
            conditions.append(runs.c.status.in_([s.value for s in where.statuses]))
        if where.agent is not None:
            conditions.append(runs.c.agent == where.agent)
        if where.kind is not None:
            conditions.append(runs.c.kind == where.kind.value)
        if where.created_from is not None:
            conditions.append(runs.c.created_at >= where.created_from)
        if where.created_to is not None:
            conditions.append(runs.c.created_at < where.created_to)
        if cursor is not None:
            created_at, run_id = decode_cursor(cursor)
            conditions.append(tuple_(runs.c.created_at, runs.c.id) < tuple_(created_at, run_id))
        query = (
            select(*_SUMMARY)
            .where(and_(*conditions))
            .order_by(runs.c.created_at.desc(), runs.c.id.desc())
            .limit(limit + 1)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more else None
        return RunPage(
            items=[RunSummary(**_summary_fields(row)) for row in rows], next_cursor=next_cursor
        )
