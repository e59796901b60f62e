"""Draining an API process on SIGTERM: runs in flight get the grace period, then end cleanly.

API processes run agents themselves (``/v1/chat``, its stream, the OpenAI-compatible face), for
up to the run timeout. On SIGTERM the server (``api.server``) stops accepting connections and
calls ``Drain.begin``; the requests in flight then have ``AGENT_API_GRACEFUL_TIMEOUT_SECONDS``
(default: the run timeout + 15 s) to end on their own. A little before that grace runs out
(``cutoff``), every run still going is cancelled and answered in the documented way instead of
having its connection cut by the server:

* a non-streamed run: 503 with ``Retry-After`` and error type ``shutting_down``;
* a streamed run: an SSE ``error`` event ``{"type": "shutting_down", "message": ...}``, then
  the end of the stream;
* a task's event stream (``GET /v1/tasks/{id}/events``): ended at once when the drain begins,
  with the same ``error`` event (no event id: reconnecting with ``Last-Event-ID`` resumes
  exactly where it stopped, on another process). The task itself runs on a worker, untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from agent_service.domain.errors import AgentError, ErrorType
from agent_service.settings import Settings

T = TypeVar("T")

DRAIN_MARGIN_SECONDS = 15.0
"""Default grace beyond the run timeout (the chart's ``api.drainMarginSeconds``)."""
CUTOFF_SECONDS = 2.0
"""How long before the grace runs out the remaining runs are ended (time to answer them)."""

SHUTTING_DOWN_MESSAGE = "the server is shutting down; retry the request (another server answers)"
STREAM_RESUME_MESSAGE = (
    "the server is shutting down; reconnect with Last-Event-ID to follow the task on another one"
)


def graceful_timeout(settings: Settings, run_timeout_seconds: float) -> float:
    """Seconds the server waits for requests in flight after SIGTERM."""
    configured = settings.api.graceful_timeout_seconds
    return configured if configured is not None else run_timeout_seconds + DRAIN_MARGIN_SECONDS


def cutoff(grace: float) -> float:
    """Seconds after the drain begins at which remaining runs are ended."""
    return max(0.0, grace - min(CUTOFF_SECONDS, grace / 5))


class ShuttingDownError(AgentError):
    """A run ended by the drain: answered 503 with ``Retry-After`` (or an SSE ``error``)."""

    def __init__(self) -> None:
        super().__init__(ErrorType.SHUTTING_DOWN, SHUTTING_DOWN_MESSAGE)


class Drain:
    """The drain state of one API process (``grace``: its graceful timeout, in seconds)."""

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self._begun = asyncio.Event()
        self._expired = asyncio.Event()

    @property
    def draining(self) -> bool:
        return self._begun.is_set()

    def begin(self) -> None:
        """The server stopped accepting connections (on its event loop): start the grace."""
        if self._begun.is_set():
            return
        self._begun.set()
        asyncio.get_running_loop().call_later(cutoff(self.grace), self._expired.set)

    async def begun(self) -> None:
        await self._begun.wait()

    async def expired(self) -> None:
        await self._expired.wait()

    async def within_grace(self, run: Awaitable[T]) -> T:
        """``run``'s result, or ``ShuttingDownError`` once the grace is over (``run`` is then
        cancelled)."""
        return await first_of(run, self.expired(), ShuttingDownError)


async def first_of(
    work: Awaitable[T], stop: Awaitable[None], error: type[Exception] = ShuttingDownError
) -> T:
    """Await ``work`` unless ``stop`` completes first: then cancel ``work`` and raise ``error``.
    Cancelling the caller cancels both."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop)
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        raise error
    finally:
        for pending in (task, stopper):
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending
