"""Usage reports on a real Postgres, cross-checked against the runs the test archived: totals,
groups (agent, model, tenant, user, tool), time buckets, top N, feedback, scopes."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from agent_service.domain.history import ArchivedRun
from agent_service.domain.tasks import TaskStatus
from agent_service.history.models import (
    Dimension,
    InvalidUsageQueryError,
    UsageOrder,
    UsageQuery,
    UsageRow,
)
from agent_service.history.runtime import History
from agent_service.history.scope import Scope
from tests.history.factory import sync_run, task_run

pytestmark = pytest.mark.integration

HOUR = 3600.0
BASE = math.floor(datetime(2026, 11, 2, tzinfo=UTC).timestamp() / HOUR) * HOUR
WINDOW = (datetime.fromtimestamp(BASE, UTC), datetime.fromtimestamp(BASE + 6 * HOUR, UTC))
ACME = Scope.of_tenant("acme")


@dataclass
class Made:
    """A run the test archived, and the feedback it gave it."""

    run: ArchivedRun
    feedback: int | None = None


def percentile_cont(values: list[float], fraction: float) -> float | None:
    """Postgres' percentile_cont: linear interpolation between the closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _tools_of(run: ArchivedRun) -> dict[str, tuple[int, int]]:
    return {use.tool: (use.calls, use.errors) for use in run.tools}


async def _archive_population(history: History) -> list[Made]:
    """72 runs over 6 hours: two tenants, three agents, two models, three users (and none),
    every status, tools in several combinations, feedback on some."""
    rng = random.Random(16)
    made: list[Made] = []
    tool_sets = [
        (),
        (("calculator", "ok"),),
        (("calculator", "ok"), ("clock", "error")),
        (("clock", "ok"), ("clock", "ok")),
    ]
    for i in range(72):
        tenant = "globex" if i % 6 == 5 else "acme"
        created = BASE + rng.uniform(0, 6 * HOUR - 1)
        status = rng.choice([TaskStatus.SUCCEEDED] * 5 + [TaskStatus.FAILED, TaskStatus.CANCELLED])
        if i % 5 == 4:
            run = sync_run(
                tenant=tenant,
                created_at=created,
                duration_ms=round(rng.uniform(50, 900), 3),
                tokens=(rng.randint(10, 400), rng.randint(1, 90)),
                cost_usd=round(rng.uniform(0, 0.01), 6),
                failed=status is TaskStatus.FAILED,
            )
        else:
            run = task_run(
                tenant=tenant,
                created_at=created,
                status=status,
                duration_ms=round(rng.uniform(50, 5000), 3),
                model=rng.choice(["sim", "gpt"]),
                user=rng.choice(["alice", "alice", "alice", "bob", "carol", None]),
                tokens=(rng.randint(10, 900), rng.randint(1, 300)),
                cost_usd=round(rng.uniform(0, 0.02), 6),
                tools=rng.choice(tool_sets),
            )
        run = run.model_copy(update={"agent": rng.choice(["default", "support", "research"])})
        made.append(Made(run))
    assert await history.archive.write([m.run for m in made]) == len(made)
    for m in made[::3]:
        m.feedback = rng.choice([1, 1, -1])
        await history.feedback.give(Scope.of_tenant(m.run.tenant), m.run.run_id, m.feedback)
    return made


def _expected(made: Iterable[Made], tool: str | None = None) -> dict[str, object]:
    group = list(made)
    runs = [m.run for m in group]
    durations = [r.duration_ms for r in runs if r.duration_ms is not None]
    expected: dict[str, object] = {
        "runs": len(runs),
        "errors": sum(r.status is TaskStatus.FAILED for r in runs),
        "cancelled": sum(r.status is TaskStatus.CANCELLED for r in runs),
        "input_tokens": sum(r.usage.input_tokens for r in runs),
        "output_tokens": sum(r.usage.output_tokens for r in runs),
        "total_tokens": sum(r.usage.total_tokens for r in runs),
        "cost_usd": pytest.approx(sum(r.usage.cost_usd for r in runs), rel=1e-9, abs=1e-12),
        "latency_ms_p50": pytest.approx(percentile_cont(durations, 0.5)),
        "latency_ms_p95": pytest.approx(percentile_cont(durations, 0.95)),
        "latency_ms_p99": pytest.approx(percentile_cont(durations, 0.99)),
        "feedback_up": sum(m.feedback == 1 for m in group),
        "feedback_down": sum(m.feedback == -1 for m in group),
    }
    if tool is not None:
        expected["tool_calls"] = sum(_tools_of(r)[tool][0] for r in runs)
        expected["tool_errors"] = sum(_tools_of(r)[tool][1] for r in runs)
    return expected


def _measured(row: UsageRow) -> dict[str, object]:
    fields = row.model_dump(exclude={"bucket", "group"})
    if row.tool_calls is None:
        fields.pop("tool_calls")
        fields.pop("tool_errors")
    return fields


def _by(made: Iterable[Made], key: Callable[[Made], Hashable]) -> dict[Hashable, list[Made]]:
    groups: dict[Hashable, list[Made]] = defaultdict(list)
    for m in made:
        groups[key(m)].append(m)
    return groups


@pytest.fixture
async def made(history: History) -> list[Made]:
    return await _archive_population(history)


async def test_totals_of_a_tenant(history: History, made: list[Made]) -> None:
    report = await history.usage.report(ACME, UsageQuery(*WINDOW))
    assert len(report.rows) == 1
    acme = [m for m in made if m.run.tenant == "acme"]
    assert _measured(report.rows[0]) == _expected(acme)
    assert report.rows[0].runs == 60


async def test_grouped_by_agent_and_model(history: History, made: list[Made]) -> None:
    query = UsageQuery(*WINDOW, group_by=(Dimension.AGENT, Dimension.MODEL))
    report = await history.usage.report(ACME, query)
    groups = _by((m for m in made if m.run.tenant == "acme"), lambda m: (m.run.agent, m.run.model))
    assert {(r.group["agent"], r.group["model"]) for r in report.rows} == set(groups)
    for row in report.rows:
        assert _measured(row) == _expected(groups[(row.group["agent"], row.group["model"])])
    runs = [row.runs for row in report.rows]
    assert runs == sorted(runs, reverse=True)  # order_by runs by default


async def test_top_users_by_runs_and_by_cost(history: History, made: list[Made]) -> None:
    acme = [m for m in made if m.run.tenant == "acme"]
    groups = _by(acme, lambda m: m.run.user)
    query = UsageQuery(*WINDOW, group_by=(Dimension.USER,), limit=2)
    report = await history.usage.report(ACME, query)
    top = sorted(groups, key=lambda u: -len(groups[u]))[:2]
    assert [r.group["user"] for r in report.rows] == top
    for row in report.rows:
        assert _measured(row) == _expected(groups[row.group["user"]])
    by_cost = UsageQuery(*WINDOW, group_by=(Dimension.USER,), order_by=UsageOrder.COST, limit=1)
    richest = max(groups, key=lambda u: sum(m.run.usage.cost_usd for m in groups[u]))
    [row] = (await history.usage.report(ACME, by_cost)).rows
    assert row.group["user"] == richest


async def test_grouped_by_tool(history: History, made: list[Made]) -> None:
    query = UsageQuery(*WINDOW, group_by=(Dimension.TOOL,))
    report = await history.usage.report(ACME, query)
    acme = [m for m in made if m.run.tenant == "acme"]
    for tool in ("calculator", "clock"):
        [row] = [r for r in report.rows if r.group["tool"] == tool]
        users = [m for m in acme if tool in _tools_of(m.run)]
        assert _measured(row) == _expected(users, tool)
    assert {r.group["tool"] for r in report.rows} == {"calculator", "clock"}
    # with a second dimension
    query = UsageQuery(*WINDOW, group_by=(Dimension.TOOL, Dimension.MODEL))
    for row in (await history.usage.report(ACME, query)).rows:
        tool = str(row.group["tool"])
        group = [m for m in acme if tool in _tools_of(m.run) and m.run.model == row.group["model"]]
        assert _measured(row) == _expected(group, tool)


async def test_hourly_buckets(history: History, made: list[Made]) -> None:
    query = UsageQuery(*WINDOW, interval=timedelta(hours=1), group_by=(Dimension.AGENT,))
    report = await history.usage.report(ACME, query)
    groups = _by(
        (m for m in made if m.run.tenant == "acme"),
        lambda m: (math.floor(m.run.created_at / HOUR) * HOUR, m.run.agent),
    )
    assert {(r.bucket, r.group["agent"]) for r in report.rows} == set(groups)
    for row in report.rows:
        assert row.bucket is not None and row.bucket % HOUR == 0
        assert _measured(row) == _expected(groups[(row.bucket, row.group["agent"])])
    buckets = [row.bucket for row in report.rows]
    assert buckets == sorted(buckets)
    assert report.interval_seconds == HOUR


async def test_an_admin_sees_every_tenant_a_tenant_only_its_own(
    history: History, made: list[Made]
) -> None:
    query = UsageQuery(*WINDOW, group_by=(Dimension.TENANT,))
    admin = await history.usage.report(Scope.admin(), query)
    groups = _by(made, lambda m: m.run.tenant)
    assert {r.group["tenant"]: _measured(r) for r in admin.rows} == {
        tenant: _expected(group) for tenant, group in groups.items()
    }
    own = await history.usage.report(Scope.of_tenant("globex"), query)
    assert [r.group["tenant"] for r in own.rows] == ["globex"]
    assert own.rows[0].runs == 12


async def test_the_window_bounds_the_runs(history: History, made: list[Made]) -> None:
    start = WINDOW[0] + timedelta(hours=2)
    end = WINDOW[0] + timedelta(hours=3)
    [row] = (await history.usage.report(ACME, UsageQuery(start, end))).rows
    inside = [
        m
        for m in made
        if m.run.tenant == "acme" and start.timestamp() <= m.run.created_at < end.timestamp()
    ]
    assert _measured(row) == _expected(inside)
    before = WINDOW[0] - timedelta(days=1)
    [empty] = (await history.usage.report(ACME, UsageQuery(before, WINDOW[0]))).rows
    assert empty.runs == 0 and empty.cost_usd == 0 and empty.latency_ms_p95 is None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (UsageQuery(WINDOW[1], WINDOW[0]), "after"),
        (UsageQuery(datetime(2026, 1, 1), datetime(2026, 1, 2)), "time zone"),
        (UsageQuery(WINDOW[0], WINDOW[0] + timedelta(days=500)), "at most"),
        (UsageQuery(*WINDOW, interval=timedelta(seconds=1)), "buckets"),
        (UsageQuery(*WINDOW, interval=timedelta(hours=1), limit=3), "without interval"),
        (UsageQuery(*WINDOW, group_by=(Dimension.USER, Dimension.USER)), "twice"),
        (UsageQuery(*WINDOW, limit=0), "limit"),
    ],
)
async def test_queries_the_service_refuses(
    history: History, query: UsageQuery, message: str
) -> None:
    with pytest.raises(InvalidUsageQueryError, match=message):
        await history.usage.report(ACME, query)
