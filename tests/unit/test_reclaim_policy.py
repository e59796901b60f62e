"""The pure decisions behind fast reclaim, the lost-message sweeper and the memory gates."""

from __future__ import annotations

import json

import pytest

from agent_service.queue.lost import Candidate, TailMessage, message_is_lost
from agent_service.queue.reclaim import restored_message
from agent_service.queue.stats import PRIORITY_SEPARATOR, priority_list
from agent_service.store.memory import MemoryUsage
from agent_service.worker.liveness import LeaseClock

NOW = 1_000.0


def _entry(priority: int = 0, routing_key: str = "agent") -> bytes:
    message = {
        "body": "e30=",
        "headers": {"id": "t1"},
        "properties": {"priority": priority, "delivery_tag": "tag-1", "delivery_info": {}},
    }
    return json.dumps([message, "", routing_key]).encode()


@pytest.mark.parametrize(
    ("priority", "suffix"), [(0, ""), (2, ""), (3, "3"), (5, "3"), (9, "9"), (12, "9")]
)
def test_a_restored_message_goes_to_the_list_of_its_priority(priority: int, suffix: str) -> None:
    target, raw = restored_message(_entry(priority))
    assert target == ("agent" + (PRIORITY_SEPARATOR + suffix if suffix else ""))
    assert target == priority_list("agent", priority)
    message = json.loads(raw)
    assert message["headers"]["redelivered"] is True
    assert message["properties"]["delivery_info"]["redelivered"] is True
    assert message["properties"]["delivery_tag"] == "tag-1"


def test_sweeping_waits_a_whole_lease_of_renewals_after_any_gap() -> None:
    clock = LeaseClock(lease_seconds=15)
    assert clock.renewal_due(0) and not clock.may_sweep(0)
    clock.renewed(0)
    assert not clock.renewal_due(4.9) and clock.renewal_due(5)
    assert not clock.may_sweep(14.9) and clock.may_sweep(15)
    clock.failed(20)  # Redis went away: every lease may end meanwhile
    assert not clock.may_sweep(100)
    assert clock.renewal_due(21)  # retried within a second
    clock.renewed(21)
    clock.renewed(26)
    assert not clock.may_sweep(35) and clock.may_sweep(36)


def _tail(*items: tuple[str, float | None, bool]) -> list[TailMessage]:
    return [TailMessage(tag, at, redelivered) for tag, at, redelivered in items]


CANDIDATE = Candidate("t", "lost-tag", created_at=NOW, queue="agent")


@pytest.mark.parametrize(
    ("tail", "whole", "lost"),
    [
        # The whole queue was read and the tag is not in it.
        (_tail(("a", NOW + 1, False)), True, True),
        ([], True, True),
        # The tag is there: it waits.
        (_tail(("a", NOW + 60, False), ("lost-tag", NOW, False)), False, False),
        (_tail(("lost-tag", NOW, True)), True, False),
        # Only part was read; its head-most message arrived well after the task: lost.
        (_tail(("b", NOW + 30, False), ("a", NOW + 20, False)), False, True),
        # ... but within the clock-skew allowance, or a redelivery, or unknown: it may wait.
        (_tail(("b", NOW + 2, False)), False, False),
        (_tail(("b", NOW + 30, True)), False, False),
        (_tail(("b", None, False)), False, False),
        ([], False, False),
    ],
)
def test_a_message_is_judged_lost_only_when_it_cannot_be_in_the_queue(
    tail: list[TailMessage], whole: bool, lost: bool
) -> None:
    assert message_is_lost(CANDIDATE, tail, whole) is lost


def test_tail_messages_are_parsed_from_the_transport_envelope() -> None:
    raw = json.dumps(
        {
            "headers": {"agent_enqueued_at": 12.5, "redelivered": True},
            "properties": {"delivery_tag": "x"},
        }
    ).encode()
    assert TailMessage.parse(raw) == TailMessage("x", 12.5, redelivered=True)
    assert TailMessage.parse(b"not json") == TailMessage(None, None, redelivered=True)


@pytest.mark.parametrize(
    ("info", "percent", "at_90"),
    [
        ({"used_memory": 900, "maxmemory": 1000}, 90.0, True),
        ({"used_memory": 899, "maxmemory": 1000}, 89.9, False),
        # Replication and AOF buffers do not count toward Redis's own limit.
        ({"used_memory": 950, "maxmemory": 1000, "mem_not_counted_for_evict": 100}, 85.0, False),
        ({"used_memory": 10**9, "maxmemory": 0}, None, False),  # no limit: never full
    ],
)
def test_memory_share_as_redis_counts_it(
    info: dict[str, int], percent: float | None, at_90: bool
) -> None:
    usage = MemoryUsage.from_info(info)
    assert usage.percent == pytest.approx(percent) if percent is not None else usage.percent is None
    assert usage.at_or_above(90) is at_90
