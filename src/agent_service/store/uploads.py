"""Documents waiting for their ingestion task: bytes in Redis, next to the task record.

``api.routes.knowledge`` writes a document in the same transaction that creates its task
(``TaskQueue.submit(also=...)``), so a queued ingestion always finds its bytes; the worker reads
them (``worker.ingestion``) and deletes them when the task ends. They expire with the record,
so a task that never runs leaves nothing behind.
"""

from __future__ import annotations

from redis.asyncio.client import Pipeline

from agent_service.store.client import Redis, guarded
from agent_service.store.keys import Keys


class UploadStore:
    """The bytes of queued documents, by task id."""

    def __init__(self, client: Redis, keys: Keys, ttl_seconds: int) -> None:
        self._redis = client
        self._keys = keys
        self._ttl = ttl_seconds

    def key(self, task_id: str) -> str:
        return self._keys.task(task_id) + ":upload"

    def add(self, pipe: Pipeline, task_id: str, data: bytes) -> None:
        """Queue the write of ``data`` on ``pipe`` (the task's creating transaction)."""
        pipe.set(self.key(task_id), data, ex=self._ttl)

    @guarded
    async def get(self, task_id: str) -> bytes | None:
        data = await self._redis.get(self.key(task_id))
        if data is None:
            return None
        return data if isinstance(data, bytes) else str(data).encode()

    @guarded
    async def delete(self, task_id: str) -> None:
        await self._redis.delete(self.key(task_id))
