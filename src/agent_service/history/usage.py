"""Usage analytics over archived runs: totals, trends and top lists in one grouped query.

For ``GET /v1/usage``: ``UsageQueries.report(scope, query)`` answers the ``UsageQuery`` the
route builds from its query parameters (``models`` describes them) with a ``UsageReport``. A
tenant's key gets ``Scope.of_tenant``, an admin key ``Scope.admin()`` (every tenant).
``InvalidUsageQueryError`` answers 400.

Each row counts runs, failed runs (``errors``), cancelled runs, tokens, cost, feedback, and
the p50/p95/p99 of the runs' own duration (``percentile_cont``; queue waits excluded). Grouped
by ``tool``, a row covers the runs that used the tool, plus its calls and failed calls; that
grouping reads the ``history_run_tools`` index, joined to the runs by primary key. Buckets start
at multiples of the interval since the Unix epoch (UTC), so hourly buckets start on the hour.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Double,
    FromClause,
    Interval,
    and_,
    func,
    literal,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncEngine

from agent_service.domain.tasks import TaskStatus
from agent_service.history.engine import pg_guarded
from agent_service.history.models import Dimension, UsageOrder, UsageQuery, UsageReport, UsageRow
from agent_service.history.schema import run_tools, runs
from agent_service.history.scope import Scope

PERCENTILES = (0.5, 0.95, 0.99)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _group_column(dimension: Dimension) -> ColumnElement[Any]:
    columns: dict[Dimension, ColumnElement[Any]] = {
        Dimension.AGENT: runs.c.agent,
        Dimension.MODEL: runs.c.model,
        Dimension.TENANT: runs.c.tenant,
        Dimension.USER: runs.c.user_id,
        Dimension.TOOL: run_tools.c.tool,
    }
    return columns[dimension].label(f"g_{dimension.value}")


def _measures(by_tool: bool) -> list[ColumnElement[Any]]:
    def count_where(condition: ColumnElement[bool], name: str) -> ColumnElement[Any]:
        return func.count().filter(condition).label(name)

    def total(column: ColumnElement[Any], name: str) -> ColumnElement[Any]:
        return func.coalesce(func.sum(column), 0).label(name)

    percentiles = array([literal(p, Double) for p in PERCENTILES])
    measures = [
        func.count().label("runs"),
        count_where(runs.c.status == TaskStatus.FAILED.value, "errors"),
        count_where(runs.c.status == TaskStatus.CANCELLED.value, "cancelled"),
        total(runs.c.input_tokens, "input_tokens"),
        total(runs.c.output_tokens, "output_tokens"),
        total(runs.c.total_tokens, "total_tokens"),
        total(runs.c.cost_usd, "cost_usd"),
        func.percentile_cont(percentiles, type_=ARRAY(Double))
        .within_group(runs.c.duration_ms)
        .label("latency"),
        count_where(runs.c.feedback_score == 1, "feedback_up"),
        count_where(runs.c.feedback_score == -1, "feedback_down"),
    ]
    if by_tool:
        measures.append(total(run_tools.c.calls, "tool_calls"))
        measures.append(total(run_tools.c.errors, "tool_errors"))
    return measures


_ORDER = {
    UsageOrder.RUNS: "runs",
    UsageOrder.ERRORS: "errors",
    UsageOrder.COST: "cost_usd",
    UsageOrder.TOKENS: "total_tokens",
}


def usage_statement(scope: Scope, query: UsageQuery) -> Any:
    """The SQL of ``query`` in ``scope`` (checked first)."""
    query.check()
    by_tool = Dimension.TOOL in query.group_by
    # Grouped by tool, the window and the tenant come from the tool rows' own index.
    source: FromClause = run_tools.join(runs, runs.c.id == run_tools.c.run_id) if by_tool else runs
    anchor = run_tools if by_tool else runs
    groups = [_group_column(d) for d in query.group_by]
    keys: list[ColumnElement[Any]] = []
    if query.interval is not None:
        bucket = func.date_bin(
            literal(query.interval, Interval),
            anchor.c.created_at,
            literal(_EPOCH, DateTime(timezone=True)),
        ).label("bucket")
        keys.append(bucket)
    keys += groups
    statement = (
        select(*keys, *_measures(by_tool))
        .select_from(source)
        .where(
            and_(
                scope.where(anchor),
                anchor.c.created_at >= query.start,
                anchor.c.created_at < query.end,
            )
        )
    )
    if keys:
        statement = statement.group_by(*keys)
    order = [] if query.interval is None else [keys[0]]
    order.append(statement.selected_columns[_ORDER[query.order_by]].desc())
    order += groups
    statement = statement.order_by(*order)
    if query.limit is not None:
        statement = statement.limit(query.limit)
    return statement


def _row(row: Any, query: UsageQuery, by_tool: bool) -> UsageRow:
    latency = row.latency or [None] * len(PERCENTILES)
    return UsageRow(
        bucket=row.bucket.timestamp() if query.interval is not None else None,
        group={d.value: getattr(row, f"g_{d.value}") for d in query.group_by},
        runs=row.runs,
        errors=row.errors,
        cancelled=row.cancelled,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        total_tokens=row.total_tokens,
        cost_usd=round(float(row.cost_usd), 8),
        latency_ms_p50=latency[0],
        latency_ms_p95=latency[1],
        latency_ms_p99=latency[2],
        feedback_up=row.feedback_up,
        feedback_down=row.feedback_down,
        tool_calls=row.tool_calls if by_tool else None,
        tool_errors=row.tool_errors if by_tool else None,
    )


class UsageQueries:
    """Usage reports with ``engine``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @pg_guarded
    async def report(self, scope: Scope, query: UsageQuery) -> UsageReport:
        """The usage of ``scope`` for ``query`` (``InvalidUsageQueryError`` if refused)."""
        statement = usage_statement(scope, query)
        by_tool = Dimension.TOOL in query.group_by
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return UsageReport(
            start=query.start.timestamp(),
            end=query.end.timestamp(),
            interval_seconds=query.interval.total_seconds() if query.interval else None,
            group_by=list(query.group_by),
            rows=[_row(row, query, by_tool) for row in rows],
        )
