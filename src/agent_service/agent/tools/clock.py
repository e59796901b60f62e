"""The ``current_time`` tool: the current date and time in an IANA time zone.

Offered by the tool registry; the clock is injectable so tests can pin "now".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from agent_service.domain.errors import ToolError
from agent_service.domain.messages import ToolSpec

Clock = Callable[[], datetime]
"""Returns the current time as an aware datetime."""

MAX_ZONE_CHARS = 64
# English names, whatever the process locale (strftime("%A") follows the locale).
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

CURRENT_TIME_SPEC = ToolSpec(
    name="current_time",
    description="The current date, time and weekday in a time zone (default UTC).",
    parameters={
        "type": "object",
        "properties": {
            "timezone": {
                "type": "string",
                "description": "IANA time zone name, e.g. 'Europe/Paris' or 'America/New_York'.",
            }
        },
        "additionalProperties": False,
    },
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def resolve_zone(name: str) -> ZoneInfo:
    """The zone called ``name``; ``ToolError("unknown time zone 'X'")`` if there is none."""
    if name.upper() == "UTC":
        return ZoneInfo("UTC")
    if len(name) > MAX_ZONE_CHARS:
        raise ToolError(f"unknown time zone {name[:MAX_ZONE_CHARS]!r}…")
    try:
        return ZoneInfo(name)
    # zoneinfo answers a bad key with KeyError, ValueError (paths) or OSError (directories).
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ToolError(f"unknown time zone {name!r}") from None


def describe_time(now: datetime, zone: ZoneInfo) -> str:
    """E.g. ``2026-11-21T14:03:07+01:00 (Europe/Paris, Saturday)``."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    local = now.astimezone(zone)
    return f"{local.isoformat(timespec='seconds')} ({zone.key}, {_WEEKDAYS[local.weekday()]})"


class CurrentTimeTool:
    """The ``current_time`` tool (implements ``agent.ports.Tool``)."""

    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock

    @property
    def spec(self) -> ToolSpec:
        return CURRENT_TIME_SPEC

    async def invoke(self, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> str:
        name = arguments.get("timezone") or "UTC"
        if not isinstance(name, str):
            raise ToolError("argument 'timezone' must be a string")
        return describe_time(self._clock(), resolve_zone(name.strip()))
