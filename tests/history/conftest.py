"""History fixtures: a fresh database per test on the session's private Postgres, migrated;
a Redis key prefix per test on the session's redis-server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from agent_service.history.migrate import upgrade_schema
from agent_service.history.runtime import History
from agent_service.settings import HistorySettings
from agent_service.store.client import Redis
from agent_service.store.keys import Keys
from tests.conftest import RedisServer
from tests.postgres import PostgresServer

pytestmark = pytest.mark.integration


def history_settings(url: str, **overrides: Any) -> HistorySettings:
    """Settings of a test: quick drains and leases unless ``overrides`` say otherwise."""
    fields: dict[str, Any] = {
        "url": SecretStr(url),
        "drain_interval_seconds": 0.05,
        "statement_timeout_seconds": 5.0,
        "lease_seconds": 10.0,
        "connect_timeout_seconds": 2.0,
    }
    fields.update(overrides)
    return HistorySettings(**fields)


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """An empty database of its own."""
    with postgres_server.database() as url:
        yield url


@pytest.fixture
async def history(pg_url: str) -> AsyncIterator[History]:
    """The history of a migrated database."""
    settings = history_settings(pg_url)
    await upgrade_schema(settings)
    opened = History.create(settings)
    yield opened
    await opened.close()


@pytest.fixture
def keys() -> Keys:
    return Keys(f"t{uuid.uuid4().hex[:8]}:")


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()
