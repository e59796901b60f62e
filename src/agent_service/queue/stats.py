"""Reading queue depth and the oldest waiting task's age from Redis (for metrics scrapes).

Synchronous on purpose: Prometheus collectors are called from the metrics server's thread (or a
threadpool), never from the event loop. Kombu keeps one Redis list per priority step; all are
summed. The age comes from the ``agent_enqueued_at`` header ``queue.producer`` adds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from agent_service.domain.tasks import QueueStats
from agent_service.settings import RedisSettings
from agent_service.store.connection import RedisConnection, create_sync_client

# kombu's Redis transport: priority steps 0, 3, 6, 9; step 0 is the bare queue name.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)


def priority_lists(queue: str) -> list[str]:
    return [priority_list(queue, step) for step in PRIORITY_STEPS]


def priority_list(queue: str, priority: int) -> str:
    """The list kombu keeps ``queue``'s messages of ``priority`` (0-9) in: the highest step not
    above it (kombu's ``_q_for_pri``)."""
    step = max(s for s in PRIORITY_STEPS if s <= max(0, min(9, priority)))
    return queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}"


def _enqueued_at(raw: bytes | None) -> float | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw)["headers"].get("agent_enqueued_at")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


class QueueStatsReader:
    """Reads depth and oldest age of ``queues`` with one pipelined round trip."""

    def __init__(
        self, settings: RedisSettings, queues: Sequence[str], timeout_seconds: float = 1.0
    ) -> None:
        self._client = create_sync_client(RedisConnection.of(settings), timeout_seconds)
        self._queues = list(queues)

    def read(self) -> list[QueueStats]:
        pipe = self._client.pipeline(transaction=False)
        for queue in self._queues:
            for key in priority_lists(queue):
                pipe.llen(key)
                pipe.lindex(key, -1)  # LPUSH adds at the head: the tail is the oldest
        answers = pipe.execute()
        now = time.time()
        stats = []
        per_queue = 2 * len(PRIORITY_STEPS)
        for index, queue in enumerate(self._queues):
            chunk = answers[index * per_queue : (index + 1) * per_queue]
            depth = sum(int(n) for n in chunk[0::2])
            stamps = [t for t in (_enqueued_at(raw) for raw in chunk[1::2]) if t is not None]
            age = max(0.0, now - min(stamps)) if stamps else 0.0
            stats.append(QueueStats(queue=queue, depth=depth, oldest_age_seconds=round(age, 3)))
        return stats

    def close(self) -> None:
        self._client.close()
