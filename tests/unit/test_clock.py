"""The current_time tool with a pinned clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agent_service.agent.tools.clock import CurrentTimeTool
from agent_service.domain.errors import ToolError

NOW = datetime(2026, 11, 21, 13, 3, 7, 123456, tzinfo=UTC)


def pinned() -> datetime:
    return NOW


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"timezone": "Europe/Paris"}, "2026-11-21T14:03:07+01:00 (Europe/Paris, Saturday)"),
        (
            {"timezone": "America/New_York"},
            "2026-11-21T08:03:07-05:00 (America/New_York, Saturday)",
        ),
        ({"timezone": "Asia/Tokyo"}, "2026-11-21T22:03:07+09:00 (Asia/Tokyo, Saturday)"),
        (
            {"timezone": "Pacific/Kiritimati"},
            "2026-11-22T03:03:07+14:00 (Pacific/Kiritimati, Sunday)",
        ),
        ({}, "2026-11-21T13:03:07+00:00 (UTC, Saturday)"),
        ({"timezone": ""}, "2026-11-21T13:03:07+00:00 (UTC, Saturday)"),
        ({"timezone": None}, "2026-11-21T13:03:07+00:00 (UTC, Saturday)"),
        ({"timezone": "utc"}, "2026-11-21T13:03:07+00:00 (UTC, Saturday)"),
    ],
)
async def test_current_time_in_zone(arguments: dict[str, object], expected: str) -> None:
    assert await CurrentTimeTool(clock=pinned).invoke(arguments) == expected


async def test_summer_time_offset() -> None:
    summer = datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)
    result = await CurrentTimeTool(clock=lambda: summer).invoke({"timezone": "Europe/Paris"})
    assert result == "2026-07-01T14:00:00+02:00 (Europe/Paris, Wednesday)"


async def test_clock_in_another_offset_is_converted() -> None:
    plus_two = NOW.astimezone(timezone(timedelta(hours=2)))
    result = await CurrentTimeTool(clock=lambda: plus_two).invoke({"timezone": "UTC"})
    assert result == "2026-11-21T13:03:07+00:00 (UTC, Saturday)"


@pytest.mark.parametrize("name", ["Mars/Olympus", "Europe", "../etc/passwd", "/etc/localtime"])
async def test_unknown_zone(name: str) -> None:
    with pytest.raises(ToolError, match=re.escape(f"unknown time zone '{name}'")):
        await CurrentTimeTool(clock=pinned).invoke({"timezone": name})


async def test_overlong_zone_name_is_not_echoed_whole() -> None:
    with pytest.raises(ToolError, match="unknown time zone") as info:
        await CurrentTimeTool(clock=pinned).invoke({"timezone": "x" * 500})
    assert len(str(info.value)) < 100


async def test_non_string_zone() -> None:
    with pytest.raises(ToolError, match="must be a string"):
        await CurrentTimeTool(clock=pinned).invoke({"timezone": 5})


async def test_default_clock_is_now() -> None:
    result = await CurrentTimeTool().invoke({})
    stamp, _, rest = result.partition(" ")
    assert abs(datetime.fromisoformat(stamp) - datetime.now(UTC)) < timedelta(seconds=5)
    assert rest.startswith("(UTC, ")
