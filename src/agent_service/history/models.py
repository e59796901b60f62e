"""The run history's vocabulary without the database: its errors, and what the routes send and get.

Imported by the API (the history routes, the start-up check) and the worker (the start-up
check, the drainer) whether history is on or off, so it imports no SQLAlchemy, psycopg or
Alembic (36 MB of RSS in each process, issue 17): the modules that do (``engine``, ``archive``,
``migrate``, ``runs``, ``usage``, ``feedback``, ``retention``) are imported only with history
on (by ``runtime``, and by ``agent-service history migrate``).

- ``GET /v1/tasks`` (``runs.RunQueries.page``): ``RunFilter``, ``limit`` 1..``MAX_PAGE``
  (default ``DEFAULT_PAGE``), answered with a ``RunPage`` of ``RunSummary``; a run in full is a
  ``HistoryRun``.
- ``GET /v1/usage`` (``usage.UsageQueries.report``): a ``UsageQuery`` from the query
  parameters ``from`` and ``to`` (the window, by run creation time; from inclusive, to
  exclusive), ``interval`` (a bucket size such as ``1h``, through ``parse_interval``; omitted:
  one bucket for the window), ``group_by`` (any of ``agent``, ``model``, ``tenant``, ``user``,
  ``tool``; repeated or comma-separated, through ``parse_dimensions``), ``order_by``
  (``runs``, ``errors``, ``cost``, ``tokens``) and ``limit`` (top N groups, without
  ``interval``), answered with a ``UsageReport``. ``InvalidUsageQueryError`` answers 400.
- Feedback (``feedback.FeedbackStore.give``): a score in ``SCORES`` and a comment of at most
  ``MAX_COMMENT_CHARS`` (``check_feedback``), answered with a ``FeedbackResult``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel

from agent_service.domain.history import RunKind
from agent_service.domain.runs import Usage
from agent_service.domain.tasks import TaskRecord, TaskStatus


class HistoryConfigError(ValueError):
    """``AGENT_HISTORY_URL`` (or its password file) cannot be used."""


class ArchiveRejectedError(Exception):
    """Postgres refused a batch for what it holds (not for being unavailable)."""


# The run list and a run in full.

DEFAULT_PAGE = 20
MAX_PAGE = 100
PREVIEW_CHARS = 200
"""Characters of the run's message shown in a list."""


class Feedback(BaseModel):
    """A person's verdict on a run: +1 or -1, an optional comment, when (Unix seconds)."""

    score: int
    comment: str | None = None
    at: float


class RunSummary(BaseModel):
    """A run as a list shows it (no record, no steps). Times are Unix seconds."""

    run_id: str
    kind: RunKind
    tenant: str
    status: TaskStatus
    agent: str
    model: str | None
    user: str | None
    key_id: str | None
    error_type: str | None
    created_at: float
    started_at: float | None
    finished_at: float
    duration_ms: float | None
    queue_wait_ms: float | None
    usage: Usage
    trace_id: str | None
    attempts: int
    message: str | None
    """The start of the run's message (``PREVIEW_CHARS`` characters)."""
    feedback_score: int | None


class HistoryRun(RunSummary):
    """One run in full: its record (with its steps) and its feedback."""

    record: TaskRecord
    feedback: Feedback | None


class RunPage(BaseModel):
    items: list[RunSummary]
    next_cursor: str | None
    """Pass it as ``cursor`` for the next page; None on the last page."""


@dataclass(frozen=True)
class RunFilter:
    """What ``GET /v1/tasks`` narrows the list by (all optional)."""

    statuses: tuple[TaskStatus, ...] = ()
    agent: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    kind: RunKind | None = None


# Usage reports.

MAX_BUCKETS = 1000
MAX_WINDOW = timedelta(days=400)
MAX_LIMIT = 1000


class InvalidUsageQueryError(ValueError):
    """A usage query the service will not run (the message says why)."""


class Dimension(StrEnum):
    AGENT = "agent"
    MODEL = "model"
    TENANT = "tenant"
    USER = "user"
    TOOL = "tool"


class UsageOrder(StrEnum):
    RUNS = "runs"
    ERRORS = "errors"
    COST = "cost"
    TOKENS = "tokens"


@dataclass(frozen=True)
class UsageQuery:
    """A window, optional time buckets, optional groups, optional top-N."""

    start: datetime
    end: datetime
    interval: timedelta | None = None
    group_by: tuple[Dimension, ...] = ()
    order_by: UsageOrder = UsageOrder.RUNS
    limit: int | None = None

    def check(self) -> None:
        """``InvalidUsageQueryError`` unless the query is one the service runs."""
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise InvalidUsageQueryError("from and to need a time zone")
        if self.end <= self.start:
            raise InvalidUsageQueryError("to must be after from")
        window = self.end - self.start
        if window > MAX_WINDOW:
            raise InvalidUsageQueryError(f"the window is at most {MAX_WINDOW.days} days")
        if self.interval is not None:
            if self.interval < timedelta(seconds=1):
                raise InvalidUsageQueryError("interval is at least 1 second")
            buckets = math.ceil(window / self.interval)
            if buckets > MAX_BUCKETS:
                raise InvalidUsageQueryError(
                    f"{buckets} buckets: at most {MAX_BUCKETS} (widen the interval)"
                )
            if self.limit is not None:
                raise InvalidUsageQueryError("limit (top N) applies without interval")
        if len(set(self.group_by)) != len(self.group_by):
            raise InvalidUsageQueryError("group_by names a dimension twice")
        if self.limit is not None and not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidUsageQueryError(f"limit must be between 1 and {MAX_LIMIT}")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_interval(text: str) -> timedelta:
    """``30s``, ``5m``, ``1h``, ``7d`` as a bucket size (the ``interval`` query parameter);
    ``InvalidUsageQueryError`` otherwise."""
    number, unit = text[:-1], text[-1:]
    if unit not in _UNITS or not number.isdigit() or not number.isascii() or int(number) <= 0:
        raise InvalidUsageQueryError(
            f"interval {text!r}: a positive whole number and s, m, h or d (e.g. 1h)"
        )
    return timedelta(seconds=int(number) * _UNITS[unit])


def parse_dimensions(values: list[str]) -> tuple[Dimension, ...]:
    """``group_by`` as given (repeated and/or comma-separated) as dimensions, in order."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    try:
        return tuple(Dimension(name) for name in names)
    except ValueError:
        allowed = ", ".join(d.value for d in Dimension)
        raise InvalidUsageQueryError(f"group_by takes {allowed}") from None


class UsageRow(BaseModel):
    """One (bucket, group) of a usage report. Latencies in milliseconds; None without runs
    that started."""

    bucket: float | None
    """Start of the time bucket (Unix seconds); None without ``interval``."""
    group: dict[str, str | None]
    """The value of each ``group_by`` dimension (None: runs without one, e.g. no user)."""
    runs: int
    errors: int
    cancelled: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    latency_ms_p99: float | None
    feedback_up: int
    feedback_down: int
    tool_calls: int | None = None
    """Calls of the row's tool (grouped by ``tool`` only)."""
    tool_errors: int | None = None


class UsageReport(BaseModel):
    start: float
    end: float
    interval_seconds: float | None
    group_by: list[Dimension]
    rows: list[UsageRow]


# Feedback.

SCORES = (-1, 1)
MAX_COMMENT_CHARS = 2000


class FeedbackOutcome(StrEnum):
    RECORDED = "recorded"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class FeedbackResult:
    outcome: FeedbackOutcome
    agent: str | None = None
    """The run's agent (for ``agent_feedback_total``), when recorded."""


def check_feedback(score: int, comment: str | None) -> None:
    """``ValueError`` unless ``score`` is -1 or +1 and ``comment`` fits."""
    if isinstance(score, bool) or score not in SCORES:
        raise ValueError("score must be -1 or 1")
    if comment is not None and len(comment) > MAX_COMMENT_CHARS:
        raise ValueError(f"comment is longer than {MAX_COMMENT_CHARS} characters")
