"""How full Redis is: ``used_memory`` against ``maxmemory``, read from ``INFO memory``.

Redis runs with ``maxmemory-policy noeviction`` (an evicted queue key would lose tasks), so at
``maxmemory`` it refuses every write, the end of a run included. The service stops taking in
work before that point, leaving headroom for the runs already in flight: the API refuses new
tasks at ``AGENT_REDIS_ADMIT_MEMORY_PERCENT`` (``queue.producer``) and workers stop taking
messages off the queue at ``AGENT_REDIS_CONSUME_MEMORY_PERCENT`` (``worker.liveness``). Both
read a ``MemoryWatch``: one ``INFO memory`` per second at most, whatever the request rate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent_service.domain.errors import StorageFullError
from agent_service.store.client import REDIS_DOWN_ERRORS, Redis


@dataclass(frozen=True)
class MemoryUsage:
    """Redis memory as its out-of-memory check counts it (replication and AOF buffers are not
    counted), and its limit (0: no ``maxmemory``)."""

    used: int
    maxmemory: int

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> MemoryUsage:
        used = int(info.get("used_memory", 0)) - int(info.get("mem_not_counted_for_evict", 0))
        return cls(used=max(0, used), maxmemory=int(info.get("maxmemory", 0)))

    @property
    def percent(self) -> float | None:
        """Share of ``maxmemory`` in use, in percent; None without a limit."""
        if self.maxmemory <= 0:
            return None
        return 100.0 * self.used / self.maxmemory

    def at_or_above(self, percent: float) -> bool:
        """True when a limit is set and at least ``percent`` of it is used."""
        share = self.percent
        return share is not None and share >= percent


class MemoryWatch:
    """The last ``INFO memory`` of ``client``, read again when older than ``max_age``.

    Concurrent callers share one read; a failed read (Redis down) answers None, so callers
    decide on what they know (the write itself then fails with its own error)."""

    def __init__(self, client: Redis, max_age: float = 1.0) -> None:
        self._client = client
        self._max_age = max_age
        self._usage: MemoryUsage | None = None
        self._read_at = float("-inf")
        self._reading: asyncio.Task[MemoryUsage | None] | None = None

    @property
    def last(self) -> MemoryUsage | None:
        """The last usage read, without reading (None before the first)."""
        return self._usage

    async def usage(self) -> MemoryUsage | None:
        if time.monotonic() - self._read_at < self._max_age:
            return self._usage
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read())
        return await asyncio.shield(self._reading)

    async def _read(self) -> MemoryUsage | None:
        try:
            info = await self._client.info("memory")
        except REDIS_DOWN_ERRORS:
            self._usage = None
        else:
            self._usage = MemoryUsage.from_info(info)
        self._read_at = time.monotonic()
        return self._usage


class AdmissionByMemory:
    """Refuses new tasks (``StorageFullError``, a 503) while Redis is at or above
    ``percent`` of its ``maxmemory``."""

    def __init__(self, watch: MemoryWatch, percent: float) -> None:
        self._watch = watch
        self._percent = percent

    async def check(self) -> None:
        usage = await self._watch.usage()
        if usage is not None and usage.at_or_above(self._percent):
            raise StorageFullError(
                f"Redis is at {usage.percent:.0f} % of its maxmemory: new tasks are refused "
                f"until running ones finish or old records expire; retry later"
            )
