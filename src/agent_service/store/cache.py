"""The response cache: exact-match answers of stateless runs, as JSON strings with a TTL."""

from __future__ import annotations

from pydantic import ValidationError

from agent_service.domain.runs import RunResult
from agent_service.store.client import Redis, guarded
from agent_service.store.keys import Keys


class RedisResponseCache:
    """Implements ``agent.ports.ResponseCache``; keys come from ``agent.policy.cache_key``."""

    def __init__(self, client: Redis, keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    @guarded
    async def get(self, key: str) -> RunResult | None:
        raw = await self._redis.get(self._keys.cache(key))
        if raw is None:
            return None
        try:
            return RunResult.model_validate_json(raw)
        except ValidationError:  # written by another version: a miss, not an error
            return None

    @guarded
    async def put(self, key: str, result: RunResult, ttl_seconds: int) -> None:
        await self._redis.set(self._keys.cache(key), result.model_dump_json(), ex=ttl_seconds)
