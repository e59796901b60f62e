"""How every process reaches Redis: one description of the connection, built from the settings.

``RedisConnection.of(settings.redis)`` reads the password files once and parses the URL with
redis-py's own parser. Everything that talks to Redis starts from it, so they agree on the
password, TLS and Sentinel: the asyncio pool of a process (``store.client.create_redis``), the
synchronous client of the metrics scrape (``queue.stats``) and the Celery broker
(``queue.celery_app``, which maps it onto kombu's ``redis``/``sentinel`` transports).

The password never travels inside a URL (it comes from ``AGENT_REDIS_PASSWORD_FILE`` when
given), so any character works. TLS always verifies the server's certificate, against
``AGENT_REDIS_TLS_CA_FILE`` when given. With Sentinels the URL gives only the scheme, the user
and the database: the master's address comes from the Sentinels, asked again after a failover.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.connection import BlockingConnectionPool, Connection, SSLConnection, parse_url
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.asyncio.sentinel import SentinelConnectionPool
from redis.sentinel import Sentinel as SyncSentinel

from agent_service.settings import RedisSettings, secret_file

HEALTH_CHECK_SECONDS = 30


@dataclass(frozen=True)
class RedisConnection:
    """Where Redis is and how to authenticate to it (see the module doc)."""

    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    master: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    socket_timeout: float = 5.0
    options: Mapping[str, Any] = field(default_factory=dict)
    """Other query-string options of the URL, as redis-py parsed them."""

    @classmethod
    def of(cls, settings: RedisSettings) -> RedisConnection:
        """The connection ``settings`` describe; reads the password files (``SettingsFileError``
        when one is unreadable or empty)."""
        parsed: dict[str, Any] = dict(parse_url(settings.url))
        tls = parsed.pop("connection_class", Connection) is SSLConnection
        if "path" in parsed:
            raise ValueError("AGENT_REDIS_URL: unix sockets are not supported (redis, rediss)")
        password = parsed.pop("password", None)
        if settings.password_file is not None:
            password = secret_file(settings.password_file)
        sentinel_password = None
        if settings.sentinel_password_file is not None:
            sentinel_password = secret_file(settings.sentinel_password_file)
        return cls(
            host=parsed.pop("host", "127.0.0.1"),
            port=int(parsed.pop("port", 6379)),
            db=int(parsed.pop("db", 0)),
            tls=tls,
            username=parsed.pop("username", None),
            password=password,
            ca_file=settings.tls_ca_file,
            sentinels=tuple(_host_port(node) for node in settings.sentinels),
            master=settings.sentinel_master,
            sentinel_password=sentinel_password,
            socket_timeout=settings.socket_timeout_seconds,
            options=parsed,
        )

    @property
    def uses_sentinel(self) -> bool:
        return bool(self.sentinels)

    def describe(self) -> str:
        """Where Redis is, for log lines (never the password)."""
        scheme = "rediss" if self.tls else "redis"
        if self.uses_sentinel:
            nodes = ",".join(f"{host}:{port}" for host, port in self.sentinels)
            return f"{scheme} master {self.master!r} via sentinels {nodes}, db {self.db}"
        return f"{scheme}://{netloc(self.host, self.port)}/{self.db}"

    def tls_options(self) -> dict[str, Any]:
        """redis-py's TLS arguments (empty without TLS): the certificate is always checked."""
        if not self.tls:
            return {}
        options: dict[str, Any] = {"ssl_cert_reqs": "required"}
        if self.ca_file is not None:
            options["ssl_ca_certs"] = str(self.ca_file)
        return options

    def server_kwargs(self, socket_timeout: float | None = None) -> dict[str, Any]:
        """Arguments of a connection to a Redis server (not its address): database, user,
        password, timeouts, TLS, and the URL's other options."""
        timeout = self.socket_timeout if socket_timeout is None else socket_timeout
        return {
            **self.options,
            "db": self.db,
            "username": self.username,
            "password": self.password,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            **self.tls_options(),
        }

    def sentinel_kwargs(self, socket_timeout: float | None = None) -> dict[str, Any]:
        """Arguments of a connection to a Sentinel: its own password, timeouts, the same TLS."""
        timeout = self.socket_timeout if socket_timeout is None else socket_timeout
        kwargs: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "password": self.sentinel_password,
        }
        if self.tls:
            kwargs.update(ssl=True, **self.tls_options())
        return kwargs


def _host_port(node: str) -> tuple[str, int]:
    host, _, port = node.strip().rpartition(":")
    return host.strip("[]"), int(port)


def netloc(host: str, port: int) -> str:
    """``host:port`` for a URL (an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _BlockingSentinelPool(SentinelConnectionPool, BlockingConnectionPool):
    """A Sentinel-managed pool that waits for a free connection, like the plain one."""


class SentinelRedis(aioredis.Redis):
    """The master's client; closing it also closes the connections to the Sentinels."""

    sentinel_manager: AsyncSentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinel_manager is not None:
            for node in self.sentinel_manager.sentinels:
                await node.aclose()


def create_async_client(
    connection: RedisConnection, max_connections: int, timeout: float
) -> aioredis.Redis:
    """An asyncio client with a bounded pool that waits up to ``timeout`` for a free connection
    (redis-py's plain pool would raise ``MaxConnectionsError`` under a burst); no socket is
    opened until the first command."""
    kwargs = connection.server_kwargs()
    if connection.uses_sentinel:
        assert connection.master is not None
        sentinel = AsyncSentinel(  # type: ignore[no-untyped-call]
            list(connection.sentinels), sentinel_kwargs=connection.sentinel_kwargs(), **kwargs
        )
        client = sentinel.master_for(
            connection.master,
            redis_class=SentinelRedis,
            connection_pool_class=_BlockingSentinelPool,
            max_connections=max_connections,
            timeout=timeout,
            health_check_interval=HEALTH_CHECK_SECONDS,
            ssl=connection.tls,
        )
        assert isinstance(client, SentinelRedis)
        client.sentinel_manager = sentinel
        return client
    pool = BlockingConnectionPool(
        connection_class=SSLConnection if connection.tls else Connection,
        host=connection.host,
        port=connection.port,
        max_connections=max_connections,
        timeout=timeout,
        health_check_interval=HEALTH_CHECK_SECONDS,
        **kwargs,
    )
    # The client owns its pool: closing it (at shutdown) disconnects every pooled connection.
    return aioredis.Redis.from_pool(pool)


class SyncSentinelRedis(redis.Redis):
    """The synchronous master client; closing it also closes the Sentinel connections."""

    sentinel_manager: SyncSentinel | None = None

    def close(self) -> None:
        super().close()
        if self.sentinel_manager is not None:
            for node in self.sentinel_manager.sentinels:
                node.close()


def create_sync_client(connection: RedisConnection, timeout: float) -> redis.Redis:
    """A synchronous client (for threads off the event loop, such as metrics scrapes)."""
    kwargs = connection.server_kwargs(timeout)
    if connection.uses_sentinel:
        assert connection.master is not None
        sentinel = SyncSentinel(  # type: ignore[no-untyped-call]
            list(connection.sentinels),
            sentinel_kwargs=connection.sentinel_kwargs(timeout),
            **kwargs,
        )
        client = sentinel.master_for(  # type: ignore[no-untyped-call]
            connection.master, redis_class=SyncSentinelRedis, ssl=connection.tls
        )
        assert isinstance(client, SyncSentinelRedis)
        client.sentinel_manager = sentinel
        return client
    return redis.Redis(host=connection.host, port=connection.port, ssl=connection.tls, **kwargs)
