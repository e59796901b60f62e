"""The history of one process: its engine and everything that reads or writes the archive.

Opened once per process by the composition root (the API's lifespan, the worker's start-up):

    async with open_history(settings.history) as history:   # None when AGENT_HISTORY_URL unset
        ...

Opening never touches Postgres, so a Postgres outage never stops a process from starting: the
worker's drainer calls ``ensure_schema`` before it archives, and retries it like an archive.

Importing this module imports no SQLAlchemy, psycopg or Alembic (36 MB of RSS in each process):
``History.create``, ``ensure_schema`` and ``check_history_settings`` import them when history
is on, so a process without ``AGENT_HISTORY_URL`` never does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent_service.settings import HistorySettings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from agent_service.history.archive import HistoryArchive
    from agent_service.history.feedback import FeedbackStore
    from agent_service.history.retention import Retention
    from agent_service.history.runs import RunQueries
    from agent_service.history.usage import UsageQueries


@dataclass
class History:
    settings: HistorySettings
    engine: AsyncEngine
    archive: HistoryArchive
    runs: RunQueries
    usage: UsageQueries
    feedback: FeedbackStore
    retention: Retention
    _schema_ready: bool = field(default=False, repr=False)
    _schema_lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @classmethod
    def create(cls, settings: HistorySettings) -> History:
        # The Postgres modules, imported here and not at the top: see the module docstring.
        from agent_service.history.archive import HistoryArchive  # noqa: PLC0415
        from agent_service.history.engine import create_history_engine  # noqa: PLC0415
        from agent_service.history.feedback import FeedbackStore  # noqa: PLC0415
        from agent_service.history.retention import Retention  # noqa: PLC0415
        from agent_service.history.runs import RunQueries  # noqa: PLC0415
        from agent_service.history.usage import UsageQueries  # noqa: PLC0415

        engine = create_history_engine(settings)
        return cls(
            settings=settings,
            engine=engine,
            archive=HistoryArchive(engine),
            runs=RunQueries(engine),
            usage=UsageQueries(engine),
            feedback=FeedbackStore(engine),
            retention=Retention(engine, settings.retention_days, settings.retention_batch_size),
        )

    async def ensure_schema(self) -> None:
        """Migrate once per process (when ``migrate_at_start``); ``DependencyUnavailableError``
        while Postgres is down, and the next call tries again."""
        if self._schema_ready or not self.settings.migrate_at_start:
            return
        from agent_service.history.migrate import upgrade_schema  # noqa: PLC0415 - Alembic

        async with self._schema_lock:
            if not self._schema_ready:
                await upgrade_schema(self.settings)
                self._schema_ready = True

    async def close(self) -> None:
        await self.engine.dispose()


def check_history_settings(settings: HistorySettings) -> None:
    """``HistoryConfigError`` when history is on but its URL (or password file) cannot be used:
    the API and the worker check it first thing and exit 2, as for an invalid agent config."""
    if settings.enabled:
        from agent_service.history.engine import database_url  # noqa: PLC0415 - SQLAlchemy

        database_url(settings)


@asynccontextmanager
async def open_history(settings: HistorySettings) -> AsyncIterator[History | None]:
    """The process's ``History``, or None when history is off (no ``AGENT_HISTORY_URL``)."""
    if not settings.enabled:
        yield None
        return
    history = History.create(settings)
    try:
        yield history
    finally:
        await history.close()
