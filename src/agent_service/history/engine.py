"""The process's Postgres engine for history, and how Postgres failures leave the package.

Built by ``runtime.open_history`` (and by ``migrate`` for its own, unpooled connection). The URL
is normalised to the psycopg 3 driver; a password file replaces the URL's password.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, ParamSpec, TypeVar

import psycopg.errors
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from agent_service.domain.errors import DependencyUnavailableError
from agent_service.history.models import HistoryConfigError
from agent_service.settings import HistorySettings

P = ParamSpec("P")
T = TypeVar("T")

DRIVER = "postgresql+psycopg"
_ACCEPTED_SCHEMES = ("postgres", "postgresql", DRIVER)
APPLICATION_NAME = "agent-service"


def database_url(settings: HistorySettings) -> URL:
    """The SQLAlchemy URL of ``settings`` (``HistoryConfigError`` if unusable or unset)."""
    if settings.url is None:
        raise HistoryConfigError("AGENT_HISTORY_URL is not set")
    try:
        url = make_url(settings.url.get_secret_value())
    except ArgumentError:
        raise HistoryConfigError("AGENT_HISTORY_URL is not a URL") from None
    if url.drivername not in _ACCEPTED_SCHEMES:
        raise HistoryConfigError(
            f"AGENT_HISTORY_URL must be a postgresql:// URL, not {url.drivername}://"
        )
    url = url.set(drivername=DRIVER)
    if settings.password_file is not None:
        try:
            password = settings.password_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise HistoryConfigError(
                f"cannot read AGENT_HISTORY_PASSWORD_FILE {settings.password_file}: {exc}"
            ) from None
        url = url.set(password=password)
    return url


def _connect_args(settings: HistorySettings, statement_timeout: bool) -> dict[str, Any]:
    args: dict[str, Any] = {
        # libpq takes whole seconds (and treats 1 as 2).
        "connect_timeout": max(2, math.ceil(settings.connect_timeout_seconds)),
        "application_name": APPLICATION_NAME,
    }
    if statement_timeout:
        ms = int(settings.statement_timeout_seconds * 1000)
        args["options"] = f"-c statement_timeout={ms}"
    return args


def create_history_engine(settings: HistorySettings) -> AsyncEngine:
    """A pooled async engine; no connection is opened until the first query.

    ``pool_pre_ping`` replaces connections that died with a Postgres restart, so the first
    query after an outage succeeds instead of failing on a stale socket.
    """
    return create_async_engine(
        database_url(settings),
        pool_size=settings.pool_size,
        max_overflow=0,
        pool_timeout=settings.connect_timeout_seconds + settings.statement_timeout_seconds,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=_connect_args(settings, statement_timeout=True),
    )


def create_migration_engine(settings: HistorySettings) -> AsyncEngine:
    """An unpooled engine without statement timeout: waiting for the migration lock, and a
    migration itself, may take longer than a query should."""
    return create_async_engine(
        database_url(settings),
        poolclass=NullPool,
        connect_args=_connect_args(settings, statement_timeout=False),
    )


_NOT_MIGRATED = (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn)
"""What a schema older than the code raises: not migrated yet (a hook Job that runs after the
pods roll, as the chart's does with a CloudNativePG Cluster), so wait and retry, never drop."""


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means Postgres cannot serve (down, unreachable, not migrated)."""
    if isinstance(exc, (OperationalError, InterfaceError, OSError, TimeoutError)):
        return True
    if isinstance(exc, DBAPIError):
        # A connection lost mid-statement, or a schema not migrated yet.
        return exc.connection_invalidated or isinstance(exc.orig, _NOT_MIGRATED)
    return False


@asynccontextmanager
async def postgres_errors() -> AsyncIterator[None]:
    """Turn Postgres being unreachable (or unmigrated) into ``DependencyUnavailableError``."""
    try:
        yield
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        detail = type(getattr(exc, "orig", None) or exc).__name__
        raise DependencyUnavailableError(f"Postgres is unavailable: {detail}") from exc


def pg_guarded(fn: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorator form of ``postgres_errors`` for the package's query methods."""

    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        async with postgres_errors():
            return await fn(*args, **kwargs)

    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper
