"""The API drain's timings and its race between a run and the end of the grace."""

from __future__ import annotations

import asyncio

import pytest

from agent_service.api.drain import Drain, ShuttingDownError, cutoff, first_of, graceful_timeout
from agent_service.domain.errors import ErrorType
from agent_service.settings import Settings


def test_the_grace_follows_the_run_timeout_unless_set() -> None:
    assert graceful_timeout(Settings(), 120) == 135
    configured = Settings.model_validate({"api": {"graceful_timeout_seconds": 40}})
    assert graceful_timeout(configured, 120) == 40


@pytest.mark.parametrize(("grace", "expected"), [(135, 133), (10, 8), (5, 4), (1, 0.8), (0, 0)])
def test_runs_are_ended_shortly_before_the_grace_runs_out(grace: float, expected: float) -> None:
    assert cutoff(grace) == pytest.approx(expected)


async def test_a_run_that_ends_within_the_grace_keeps_its_answer() -> None:
    drain = Drain(grace=0.5)
    drain.begin()
    assert drain.draining
    assert await drain.within_grace(asyncio.sleep(0.05, result="answer")) == "answer"


async def test_a_run_still_going_at_the_cutoff_is_cancelled_and_refused() -> None:
    drain = Drain(grace=0.25)
    cancelled = asyncio.Event()

    async def slow_run() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    drain.begin()
    with pytest.raises(ShuttingDownError) as caught:
        await drain.within_grace(slow_run())
    assert caught.value.type == ErrorType.SHUTTING_DOWN
    assert cancelled.is_set()


async def test_before_a_drain_runs_are_not_limited() -> None:
    drain = Drain(grace=0.01)
    assert await drain.within_grace(asyncio.sleep(0.05, result=1)) == 1


async def test_errors_of_the_work_pass_through() -> None:
    async def failing() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await first_of(failing(), asyncio.sleep(10))
