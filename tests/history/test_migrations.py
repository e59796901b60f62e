"""Migrations on a real Postgres: to head, again (a no-op), concurrently from several
processes under the advisory lock, and the migrated schema equals the code's metadata."""

from __future__ import annotations

import subprocess

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from agent_service.domain.errors import DependencyUnavailableError
from agent_service.history.migrate import head_revision, upgrade_schema
from agent_service.history.runtime import History
from agent_service.history.schema import VERSION_TABLE, metadata
from agent_service.history.scope import Scope
from tests.history.conftest import history_settings
from tests.history.factory import sync_run
from tests.procs import base_env, cli, free_port

pytestmark = pytest.mark.integration


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


async def test_migrate_an_empty_database_then_again(pg_url: str) -> None:
    settings = history_settings(pg_url)
    first = await upgrade_schema(settings)
    assert first.before is None
    assert first.after == head_revision() == "0001"
    assert _tables(pg_url) == {"history_runs", "history_run_tools", VERSION_TABLE}
    second = await upgrade_schema(settings)
    assert (second.before, second.after, second.newer) == ("0001", "0001", False)


async def test_migrated_schema_matches_the_code(pg_url: str) -> None:
    await upgrade_schema(history_settings(pg_url))
    engine = create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
            )
            diff = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_processes_starting_together_migrate_once(pg_url: str) -> None:
    """Four `history migrate` processes at once: all succeed, one migrates, the others wait
    for its lock and find the schema current (without the lock, CREATE TABLE would clash)."""
    env = base_env({"AGENT_HISTORY_URL": pg_url, "AGENT_LOG_JSON": "false"})
    procs = [
        subprocess.Popen(
            cli("history", "migrate"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [proc.communicate(timeout=90)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 4, outputs
    migrated = [out for out in outputs if "migrated from None to 0001" in out]
    assert len(migrated) == 1, outputs
    assert sum("at revision 0001 (was 0001)" in out for out in outputs) == 3, outputs
    with psycopg.connect(pg_url) as conn:
        versions = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
    assert versions == [("0001",)]


async def test_a_newer_schema_is_left_alone(pg_url: str) -> None:
    settings = history_settings(pg_url)
    await upgrade_schema(settings)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version_num = '9999'")
    result = await upgrade_schema(settings)
    assert (result.before, result.after, result.newer) == ("9999", "9999", True)


def _migrate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli("history", "migrate"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_migrate_command_exit_status_without_url_or_postgres() -> None:
    unset = _migrate(base_env())
    assert unset.returncode == 2, unset.stdout + unset.stderr
    assert "AGENT_HISTORY_URL is not set" in unset.stdout + unset.stderr
    down = _migrate(base_env({"AGENT_HISTORY_URL": f"postgresql://x@127.0.0.1:{free_port()}/x"}))
    assert down.returncode == 1, down.stdout + down.stderr
    assert "Postgres is unavailable" in down.stdout + down.stderr


async def test_a_schema_behind_the_code_means_wait_never_drop(pg_url: str) -> None:
    """Pods may run before the hook Job migrates (the chart's CloudNativePG mode migrates after
    they roll): a missing table or column is "unavailable" (the drainer retries, the routes
    answer 503), never a refused run that would be dropped."""
    history = History.create(history_settings(pg_url))
    try:
        with pytest.raises(DependencyUnavailableError):
            await history.runs.page(Scope.of_tenant("acme"))
        with pytest.raises(DependencyUnavailableError):
            await history.archive.write([sync_run()])
        await upgrade_schema(history_settings(pg_url))
        # A column a newer release added and this database lacks yet.
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE history_runs DROP COLUMN trace_id")
        with pytest.raises(DependencyUnavailableError):
            await history.archive.write([sync_run()])
    finally:
        await history.close()
