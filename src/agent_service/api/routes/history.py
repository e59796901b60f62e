"""The run history: ``GET /v1/tasks`` (finished runs, filtered and paginated), ``GET /v1/usage``
(runs, errors, tokens, cost and latency grouped and bucketed), and feedback on a run
(``POST /v1/tasks/{task_id}/feedback``, ``POST /v1/runs/{run_id}/feedback``).

They read and write the Postgres archive (``history``), which the workers fill from the outbox
within about a second of a run's end. Without ``AGENT_HISTORY_URL`` each answers 404 with the
error type ``history_disabled``; with Postgres down, 503 with ``Retry-After``. A key sees its
tenant's runs; an admin key (``role: admin``) every tenant's, or one with ``tenant=``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent_service.agentconfig.spec import NAME_PATTERN
from agent_service.api.deps import (
    CallerDep,
    HistoryAccess,
    HistoryDep,
    JsonBody,
    MetricsDep,
    TasksDep,
)
from agent_service.api.errors import ApiError
from agent_service.api.history_reads import RUN_ID, not_found, own_scope, read_scope
from agent_service.api.schemas import ERROR_RESPONSES
from agent_service.domain.callers import Caller
from agent_service.domain.errors import ErrorType
from agent_service.domain.history import RunKind
from agent_service.domain.tasks import TaskStatus
from agent_service.history.cursor import InvalidCursorError
from agent_service.history.models import (
    DEFAULT_PAGE,
    MAX_COMMENT_CHARS,
    MAX_LIMIT,
    MAX_PAGE,
    SCORES,
    FeedbackOutcome,
    InvalidUsageQueryError,
    RunFilter,
    RunPage,
    UsageOrder,
    UsageQuery,
    UsageReport,
    parse_dimensions,
    parse_interval,
)
from agent_service.observability.metrics import Metrics
from agent_service.store.tasks import TaskStore

router = APIRouter(tags=["history"])

DEFAULT_USAGE_WINDOW = timedelta(hours=24)
_FINISHED = (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)
_HISTORY_ERRORS = {
    **ERROR_RESPONSES,
    403: {"model": ERROR_RESPONSES[400]["model"], "description": "Another tenant (not admin)"},
    404: {
        "model": ERROR_RESPONSES[400]["model"],
        "description": "History is off (`history_disabled`), or an unknown run",
    },
}


def _bad_request(message: str) -> ApiError:
    return ApiError(400, ErrorType.INVALID_REQUEST, message)


_MAX_UNIX_SECONDS = 253402300799  # 9999-12-31T23:59:59Z, the last second a datetime holds
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?$"
)
TIME_SCHEMA = {
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "number", "minimum": 0, "maximum": _MAX_UNIX_SECONDS},
    ]
}
"""A query time as the schema states it; ``_utc`` reads exactly these (400 otherwise)."""


def _utc(value: str | None, name: str) -> datetime | None:
    """A query time as an aware datetime: Unix seconds, or RFC 3339 (without a zone: UTC)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        when = _rfc3339(value)
    else:
        ok = 0 <= seconds <= _MAX_UNIX_SECONDS
        when = datetime.fromtimestamp(seconds, UTC) if ok else None
    if when is None:
        message = f"{name}: {value!r} is not a time (Unix seconds or RFC 3339)"
        raise ApiError(422, ErrorType.INVALID_REQUEST, message)
    return when


def _rfc3339(text: str) -> datetime | None:
    """RFC 3339 as its grammar allows (any case of T and Z, any fraction digits, a leap
    second read as :59), or an ISO date-time without a zone (UTC); None otherwise."""
    match = _RFC3339.match(text.strip())
    if match is None:
        return None
    day, minutes, second, fraction, zone = match.groups()
    second = min(int(second), 59)
    micro = (fraction or ".0")[1:7].ljust(6, "0")
    offset = "+00:00" if zone is None or zone in "Zz" else zone
    try:
        when = datetime.fromisoformat(f"{day}T{minutes}:{second:02d}.{micro}{offset}")
        return when.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _statuses(values: list[str] | None) -> tuple[TaskStatus, ...]:
    allowed = ", ".join(s.value for s in _FINISHED)
    if any(re.match(STATUS_PATTERN, value) is None for value in values or []):
        raise _bad_request(f"status: the history lists finished runs: {allowed}")
    names = [n.strip() for value in values or [] for n in value.split(",") if n.strip()]
    statuses = []
    for name in names:
        if name not in allowed.split(", "):
            raise _bad_request(f"status: the history lists finished runs: {allowed}")
        statuses.append(TaskStatus(name))
    return tuple(statuses)


_FINISHED_NAME = "(succeeded|failed|cancelled)"
STATUS_PATTERN = rf"^ *{_FINISHED_NAME} *(, *{_FINISHED_NAME} *)*,?$"
"""One ``status`` value as the schema states it (the route answers 400 with the allowed values
for any other, rather than a 422 quoting this pattern)."""

TenantParam = Annotated[
    str | None,
    Query(
        pattern=NAME_PATTERN,
        description="One tenant's runs: an admin key reads any; another key only its own.",
    ),
]
FromParam = Annotated[
    str | None,
    Query(
        alias="from",
        description="Created at or after (RFC 3339, or Unix seconds; no zone: UTC).",
        json_schema_extra=TIME_SCHEMA,
    ),
]
ToParam = Annotated[
    str | None,
    Query(
        alias="to",
        description="Created before (RFC 3339, or Unix seconds; no zone: UTC).",
        json_schema_extra=TIME_SCHEMA,
    ),
]


@router.get("/v1/tasks", response_model=RunPage, responses=_HISTORY_ERRORS)
async def list_tasks(
    *,
    access: HistoryDep,
    caller: CallerDep,
    status: Annotated[
        list[str] | None,
        Query(
            description="succeeded, failed, cancelled: repeated or comma-separated.",
            json_schema_extra={"items": {"type": "string", "pattern": STATUS_PATTERN}},
        ),
    ] = None,
    agent: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    created_from: FromParam = None,
    created_to: ToParam = None,
    kind: Annotated[
        RunKind | None,
        Query(description="`task` (queued runs) or `sync` (/v1/chat, chat completions)."),
    ] = None,
    tenant: TenantParam = None,
    cursor: Annotated[
        str | None, Query(max_length=256, description="`next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> RunPage:
    """Finished runs (queued tasks and sync runs) from the history, newest first.

    Runs appear here once archived, about a second after they end; queued and running tasks
    are read one by one with ``GET /v1/tasks/{task_id}``. Pages are keyset-paginated: pass
    ``next_cursor`` back as ``cursor``; runs archived meanwhile never make a page repeat or
    skip a run."""
    where = RunFilter(
        statuses=_statuses(status),
        agent=agent,
        created_from=_utc(created_from, "from"),
        created_to=_utc(created_to, "to"),
        kind=kind,
    )
    try:
        return await access.history.runs.page(read_scope(caller, tenant), where, cursor, limit)
    except InvalidCursorError:
        raise _bad_request("cursor: not a cursor this service made") from None


@router.get("/v1/usage", response_model=UsageReport, responses=_HISTORY_ERRORS)
async def usage(
    *,
    access: HistoryDep,
    caller: CallerDep,
    start: FromParam = None,
    end: ToParam = None,
    interval: Annotated[
        str | None,
        Query(
            max_length=16,
            description="Time buckets: `30s`, `5m`, `1h`, `1d`… (omitted: one for the window).",
        ),
    ] = None,
    group_by: Annotated[
        list[str] | None,
        Query(description="Any of agent, model, tenant, user, tool: repeated or comma-separated."),
    ] = None,
    order_by: UsageOrder = UsageOrder.RUNS,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_LIMIT, description="Top N groups (without interval).")
    ] = None,
    tenant: TenantParam = None,
) -> UsageReport:
    """Runs, errors, cancelled runs, tokens, cost, latency percentiles (p50/p95/p99 of the
    runs' own duration) and feedback over a window (default: the last 24 hours), optionally
    per time bucket and grouped. A key sees its tenant's usage; an admin key every tenant's."""
    end_at = _utc(end, "to") or datetime.now(UTC)
    start_at = _utc(start, "from") or end_at - DEFAULT_USAGE_WINDOW
    try:
        query = UsageQuery(
            start=start_at,
            end=end_at,
            interval=parse_interval(interval) if interval is not None else None,
            group_by=parse_dimensions(group_by or []),
            order_by=order_by,
            limit=limit,
        )
        query.check()
    except InvalidUsageQueryError as exc:
        raise _bad_request(str(exc)) from None
    return await access.history.usage.report(read_scope(caller, tenant), query)


class FeedbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: int = Field(
        strict=True,  # true and 1.0 are not scores
        json_schema_extra={"enum": [-1, 1]},
        description="1 (a good answer) or -1 (a bad one).",
    )
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)

    @field_validator("score")
    @classmethod
    def _a_score(cls, score: int) -> int:
        if score not in SCORES:
            raise ValueError("must be -1 or 1")
        return score


class FeedbackAnswer(BaseModel):
    run_id: str
    agent: str
    score: int
    comment: str | None


_FEEDBACK_RESPONSES = {
    **_HISTORY_ERRORS,
    409: {
        "model": ERROR_RESPONSES[400]["model"],
        "description": "The run has not finished, or is not archived yet (see Retry-After)",
    },
}


@dataclass(frozen=True)
class FeedbackContext:
    """What taking feedback needs: the history, the task store (is the run still running?),
    metrics, the caller."""

    access: HistoryAccess
    tasks: TaskStore
    metrics: Metrics
    caller: Caller


async def _feedback_context(
    access: HistoryDep, tasks: TasksDep, metrics: MetricsDep, caller: CallerDep
) -> FeedbackContext:
    return FeedbackContext(access, tasks, metrics, caller)


FeedbackDep = Annotated[FeedbackContext, Depends(_feedback_context)]


@router.post(
    "/v1/tasks/{task_id}/feedback",
    response_model=FeedbackAnswer,
    responses=_FEEDBACK_RESPONSES,
    dependencies=[JsonBody],
)
async def task_feedback(task_id: str, body: FeedbackBody, context: FeedbackDep) -> FeedbackAnswer:
    """Score a finished task ``+1`` or ``-1``, with an optional comment (a second feedback
    replaces the first). Counted in ``agent_feedback_total`` and in ``GET /v1/usage``."""
    return await _give(task_id, body, context)


@router.post(
    "/v1/runs/{run_id}/feedback",
    response_model=FeedbackAnswer,
    responses=_FEEDBACK_RESPONSES,
    dependencies=[JsonBody],
)
async def run_feedback(run_id: str, body: FeedbackBody, context: FeedbackDep) -> FeedbackAnswer:
    """Score a sync run (by the ``X-Run-Id`` / ``run_id`` it answered with; a task id works
    too), like ``POST /v1/tasks/{task_id}/feedback``."""
    return await _give(run_id, body, context)


async def _give(run_id: str, body: FeedbackBody, context: FeedbackContext) -> FeedbackAnswer:
    if not RUN_ID.match(run_id):
        raise not_found(run_id, "run")
    feedback = context.access.history.feedback
    given = await feedback.give(own_scope(context.caller), run_id, body.score, body.comment)
    if given.outcome is FeedbackOutcome.RECORDED and given.agent is not None:
        context.metrics.feedback_given(given.agent, body.score)
        return FeedbackAnswer(
            run_id=run_id, agent=given.agent, score=body.score, comment=body.comment
        )
    await _explain_missing(run_id, context)
    raise not_found(run_id, "run")


async def _explain_missing(run_id: str, context: FeedbackContext) -> None:
    """409 when the caller's run exists but cannot take feedback yet: still running, or
    finished and waiting on the outbox (with ``Retry-After``)."""
    access, caller = context.access, context.caller
    record = await context.tasks.get(run_id)
    if record is not None and record.tenant == caller.tenant and not record.status.terminal:
        raise ApiError(
            409, ErrorType.CONFLICT, f"run {run_id!r} has not finished ({record.status.value})"
        )
    if await access.outbox.pending_tenant(run_id) == caller.tenant:
        wait = max(1, math.ceil(access.history.settings.drain_interval_seconds))
        raise ApiError(
            409,
            ErrorType.CONFLICT,
            f"run {run_id!r} is not archived yet: retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )
