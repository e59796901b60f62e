"""Creation of the asyncio Redis client shared by a process (one pool per event loop)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from agent_service.domain.errors import DependencyUnavailableError, StorageFullError
from agent_service.settings import RedisSettings
from agent_service.store.connection import RedisConnection, create_async_client

P = ParamSpec("P")
T = TypeVar("T")

Redis = aioredis.Redis

REDIS_DOWN_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


def create_redis(settings: RedisSettings) -> Redis:
    """The process's asyncio client (plain, TLS or Sentinel: ``store.connection``), its pool
    bounded by ``max_connections``; no socket is opened until the first command."""
    connection = RedisConnection.of(settings)
    return create_async_client(
        connection, settings.max_connections, timeout=settings.socket_timeout_seconds
    )


def is_out_of_memory(exc: BaseException) -> bool:
    """True for Redis refusing a write at ``maxmemory`` (``-OOM``), raised directly, from a
    script, or as the first error of a transaction."""
    if isinstance(exc, OutOfMemoryError):
        return True
    return isinstance(exc, ResponseError) and "OOM command not allowed" in str(exc)


@asynccontextmanager
async def redis_errors() -> AsyncIterator[None]:
    """Turn Redis connection failures into ``DependencyUnavailableError``, and writes refused
    at ``maxmemory`` into ``StorageFullError`` (both answered 503)."""
    try:
        yield
    except REDIS_DOWN_ERRORS as exc:
        raise DependencyUnavailableError(f"Redis is unavailable: {exc.__class__.__name__}") from exc
    except ResponseError as exc:
        if not is_out_of_memory(exc):
            raise
        raise StorageFullError("Redis is full (maxmemory) and refuses writes; retry later") from exc


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
