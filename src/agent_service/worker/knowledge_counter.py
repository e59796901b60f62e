"""Keeping ``agent_knowledge_chunks`` true between ingestions, on the worker's event loop.

A knowledge base's chunk count is set by the process that last changed it (an ingestion or a
delete). That leaves the gauge empty after a restart, and stale when another process (the
CLI, another worker) changed the store. ``worker.main`` starts one ``KnowledgeCounter`` per
worker process when a vector store is configured: at start and every ``interval`` it counts
each knowledge base of the config in force. The gauge keeps the most recent count of any
process (``multiprocess_mode="mostrecent"``), so a fleet of workers reports one figure.
A store that cannot be reached is logged once per outage; the next count retries it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from agent_service.knowledge.base import KnowledgeBase
from agent_service.knowledge.errors import KnowledgeStoreUnavailableError
from agent_service.worker.periodic import Periodic

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 60.0


class KnowledgeCounter:
    """Counts the chunks of every configured knowledge base until ``stop``."""

    def __init__(
        self,
        bases: Callable[[], Mapping[str, KnowledgeBase]],
        interval_seconds: float = INTERVAL_SECONDS,
    ) -> None:
        self._bases = bases
        self._store_down = False
        self._periodic = Periodic("knowledge-counter", self.count, interval_seconds)

    async def start(self) -> None:
        """Start counting (call on the worker's event loop)."""
        await self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def count(self) -> dict[str, int]:
        """One round: each knowledge base counted (and its gauge set). Returns the counts of
        the bases that answered."""
        counts: dict[str, int] = {}
        for name, kb in self._bases().items():
            try:
                counts[name] = await kb.count_chunks()
            except KnowledgeStoreUnavailableError as exc:
                if not self._store_down:
                    log.warning("knowledge store unreachable, counting again later: %s", exc)
                self._store_down = True
                return counts
            except Exception:  # a bug must not stop the counting; the next round retries
                log.exception("counting the chunks of knowledge base %s failed", name)
        self._store_down = False
        return counts
