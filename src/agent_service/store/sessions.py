"""Session memory: the last turns of a conversation, as a Redis list of JSON messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent_service.domain.messages import ChatMessage
from agent_service.store.client import Redis, guarded
from agent_service.store.keys import Keys


class RedisSessionMemory:
    """Implements ``agent.ports.SessionMemory``. A turn is two messages (user, assistant)."""

    def __init__(self, client: Redis, keys: Keys, ttl_seconds: int) -> None:
        self._redis = client
        self._keys = keys
        self._ttl = ttl_seconds

    @guarded
    async def load(self, session_id: str, max_turns: int) -> list[ChatMessage]:
        if max_turns <= 0:
            return []
        key = self._keys.session(session_id)
        raw: list[Any] = await self._redis.lrange(key, -2 * max_turns, -1)
        return [ChatMessage.model_validate_json(item) for item in raw]

    @guarded
    async def append(
        self, session_id: str, messages: Sequence[ChatMessage], max_turns: int
    ) -> None:
        key = self._keys.session(session_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, *[m.model_dump_json(exclude_defaults=True) for m in messages])
            pipe.ltrim(key, -2 * max(max_turns, 1), -1)
            pipe.expire(key, self._ttl)
            await pipe.execute()
