"""State of the OpenAI-compatible routes in Redis: stored Responses and chat continuations.

``api.routes.responses`` keeps each stored response (its request, status and result as JSON,
``StoredResponse`` in ``api.openai.responses``) under its tenant, for ``GET``, ``DELETE`` and
``previous_response_id``; a background response is created in the same transaction as its
task (``add_create`` on the producer's pipeline). ``api.routes.openai`` keeps, for a chat
completion that stopped at client tool calls after server tool steps, the messages its client
never saw, keyed by the returned call ids, so the run continues with them when the client sends
the results. Everything expires with the task TTL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from redis.asyncio.client import Pipeline

from agent_service.domain.messages import ChatMessage
from agent_service.store.client import Redis, guarded
from agent_service.store.keys import Keys


class ResponseStore:
    """Stored responses and chat continuations under ``keys``; both expire after ``ttl``."""

    def __init__(self, client: Redis, keys: Keys, ttl_seconds: int) -> None:
        self._redis = client
        self._keys = keys
        self._ttl = ttl_seconds

    def add_create(self, pipe: Pipeline, tenant: str, response_id: str, document: str) -> None:
        """Queue the write of a response on ``pipe`` (the enqueue transaction of its task)."""
        pipe.set(self._keys.response(tenant, response_id), document, ex=self._ttl)

    @guarded
    async def put(self, tenant: str, response_id: str, document: str) -> None:
        await self._redis.set(self._keys.response(tenant, response_id), document, ex=self._ttl)

    @guarded
    async def get(self, tenant: str, response_id: str) -> str | None:
        raw: Any = await self._redis.get(self._keys.response(tenant, response_id))
        return raw.decode() if isinstance(raw, bytes) else raw

    @guarded
    async def delete(self, tenant: str, response_id: str) -> bool:
        return bool(await self._redis.delete(self._keys.response(tenant, response_id)))

    @guarded
    async def save_continuation(
        self, tenant: str, call_ids: Sequence[str], messages: Sequence[ChatMessage]
    ) -> None:
        """Keep ``messages`` for whichever of ``call_ids`` the client answers first."""
        document = json.dumps([m.model_dump(mode="json") for m in messages], ensure_ascii=False)
        async with self._redis.pipeline(transaction=False) as pipe:
            for call_id in call_ids:
                pipe.set(self._keys.continuation(tenant, call_id), document, ex=self._ttl)
            await pipe.execute()

    @guarded
    async def continuations(
        self, tenant: str, call_ids: Sequence[str]
    ) -> dict[str, list[ChatMessage]]:
        """The kept messages of those of ``call_ids`` that have some."""
        if not call_ids:
            return {}
        found: list[Any] = await self._redis.mget(
            [self._keys.continuation(tenant, call_id) for call_id in call_ids]
        )
        return {
            call_id: [ChatMessage.model_validate(m) for m in json.loads(raw)]
            for call_id, raw in zip(call_ids, found, strict=True)
            if raw is not None
        }
