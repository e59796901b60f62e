"""Bringing the history schema to the newest migration, once, however many pods start at once.

Called by ``runtime.History.ensure_schema`` (workers, before their first archive, when
``AGENT_HISTORY_MIGRATE_AT_START``) and by ``agent-service history migrate`` (a Helm hook Job).
The migrations are Alembic scripts shipped in this package (``migrations/``), run on one
connection that first takes a Postgres advisory lock: a second process waits for the first to
finish, then finds the schema current and does nothing. Each migration runs in one transaction
(Postgres DDL is transactional), so a process killed mid-migration leaves the previous schema.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, select

from agent_service.history.engine import create_migration_engine, postgres_errors
from agent_service.history.schema import VERSION_TABLE
from agent_service.settings import HistorySettings

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x6167_656E_7468_6973
"""Advisory lock key of history migrations (any constant every release agrees on)."""

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"


@dataclass(frozen=True)
class MigrationResult:
    """Where the schema was and is: ``before`` None on an empty database."""

    before: str | None
    after: str | None
    newer: bool = False
    """The database is at a revision this release does not know (a newer release migrated
    it): left alone, since migrations only add."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest migration this release ships."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def _current(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def _upgrade(connection: Connection) -> MigrationResult:
    # Alembic logs two INFO lines per context it builds (three per run, in every worker's
    # start); upgrade_schema logs what changed instead.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)
    config = _config(connection)
    before = _current(connection)
    known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
    if before is not None and before not in known:
        return MigrationResult(before, before, newer=True)
    command.upgrade(config, "head")
    return MigrationResult(before, _current(connection))


async def upgrade_schema(settings: HistorySettings) -> MigrationResult:
    """Migrate the database of ``settings`` to the newest revision, under the advisory lock.

    ``DependencyUnavailableError`` when Postgres cannot be reached.
    """
    engine = create_migration_engine(settings)
    try:
        async with postgres_errors(), engine.connect() as conn:
            # A session-level lock, held across the migrations' transactions. On any error
            # the connection is closed (the engine pools nothing), which releases it.
            await conn.execute(select(func.pg_advisory_lock(MIGRATION_LOCK)))
            await conn.commit()
            result = await conn.run_sync(_upgrade)
            await conn.commit()
            await conn.execute(select(func.pg_advisory_unlock(MIGRATION_LOCK)))
            await conn.commit()
    finally:
        await engine.dispose()
    if result.newer:
        log.warning(
            "history schema is at revision %s, newer than this release knows; left as it is",
            result.before,
        )
    elif result.before != result.after:
        log.info("history schema migrated from %s to %s", result.before, result.after)
    return result
