"""Creation of the asyncio Redis client shared by a process (one pool per event loop)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from agent_service.domain.errors import DependencyUnavailableError
from agent_service.settings import RedisSettings

P = ParamSpec("P")
T = TypeVar("T")

Redis = aioredis.Redis

REDIS_DOWN_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


def create_redis(settings: RedisSettings) -> Redis:
    """An asyncio client with a bounded pool; no socket is opened until the first command.

    The pool blocks (up to the socket timeout) when every connection is busy: redis-py's plain
    pool would raise ``MaxConnectionsError`` instead, failing runs under a burst.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.url,
        max_connections=settings.max_connections,
        timeout=settings.socket_timeout_seconds,
        socket_timeout=settings.socket_timeout_seconds,
        socket_connect_timeout=settings.socket_timeout_seconds,
        health_check_interval=30,
    )
    # The client owns its pool: closing it (at shutdown) disconnects every pooled connection.
    return aioredis.Redis.from_pool(pool)


@asynccontextmanager
async def redis_errors() -> AsyncIterator[None]:
    """Turn Redis connection failures into ``DependencyUnavailableError``."""
    try:
        yield
    except REDIS_DOWN_ERRORS as exc:
        raise DependencyUnavailableError(f"Redis is unavailable: {exc.__class__.__name__}") from exc


def guarded(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorator form of ``redis_errors`` for store methods."""

    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        async with redis_errors():
            return await fn(*args, **kwargs)

    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper


async def ping(client: Redis) -> bool:
    """True when Redis answers (readiness)."""
    try:
        return bool(await client.ping())
    except REDIS_DOWN_ERRORS:
        return False
