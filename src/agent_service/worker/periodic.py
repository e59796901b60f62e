"""``Periodic``: one chore of the worker, run every ``interval`` on its event loop until stopped.

The approval sweeper and the knowledge counter are built on it. ``tick`` must handle its own
errors: an exception that escapes it ends the chore (and is logged by asyncio).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class Periodic:
    """Awaits ``tick()`` at start and then every ``interval_seconds`` until ``stop``."""

    def __init__(
        self, name: str, tick: Callable[[], Awaitable[object]], interval_seconds: float
    ) -> None:
        self._name = name
        self._tick = tick
        self._interval = interval_seconds
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start ticking (call on the worker's event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        """Let the tick in hand finish, then stop."""
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            await self._tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
