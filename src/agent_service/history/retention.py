"""Retention: deleting archived runs older than ``AGENT_HISTORY_RETENTION_DAYS``, in batches.

Run periodically by ``worker.history_drainer`` (every ``AGENT_HISTORY_RETENTION_INTERVAL_SECONDS``).
Each batch is its own short transaction deleting at most ``batch_size`` runs (their tool rows
go with them, by cascade), picked by the ``created_at`` index with ``SKIP LOCKED``: no long
lock, and feedback written meanwhile is never waited on. One worker sweeps at a time: a sweep
holds a session-level advisory lock that the others try, and skip when taken.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agent_service.history.engine import pg_guarded
from agent_service.history.schema import runs

log = logging.getLogger(__name__)

RETENTION_LOCK = 0x6167_656E_7472_6574
"""Advisory lock key held by the worker sweeping (any constant every release agrees on)."""


class Retention:
    """Deletes runs created more than ``days`` ago, ``batch_size`` per transaction."""

    def __init__(self, engine: AsyncEngine, days: int, batch_size: int) -> None:
        self._engine = engine
        self._days = days
        self._batch = batch_size

    @pg_guarded
    async def sweep(self, now: datetime | None = None) -> int | None:
        """Delete what has expired; the number of runs deleted, or None when another worker
        is sweeping (or retention is off: ``days`` 0)."""
        if self._days <= 0:
            return None
        cutoff = (now or datetime.now(UTC)) - timedelta(days=self._days)
        async with self._engine.connect() as conn:
            # A session-level lock, on the connection that runs the batches (one connection
            # per sweep, whatever the pool size).
            got = (await conn.execute(select(func.pg_try_advisory_lock(RETENTION_LOCK)))).scalar()
            await conn.commit()
            if not got:
                return None
            try:
                return await self._delete_before(conn, cutoff)
            finally:
                await _unlock(conn)

    async def _delete_before(self, conn: AsyncConnection, cutoff: datetime) -> int:
        deleted = 0
        expired = (
            select(runs.c.id)
            .where(runs.c.created_at < cutoff)
            .order_by(runs.c.created_at)
            .limit(self._batch)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        while True:
            result = await conn.execute(delete(runs).where(runs.c.id.in_(expired)))
            await conn.commit()
            count = result.rowcount or 0
            deleted += count
            if count < self._batch:
                break
            await asyncio.sleep(0)  # let the loop's other work run between batches
        if deleted:
            log.info("history retention deleted %d runs created before %s", deleted, cutoff)
        return deleted


async def _unlock(conn: AsyncConnection) -> None:
    try:
        await conn.rollback()  # a batch that failed left its transaction aborted
        await conn.execute(select(func.pg_advisory_unlock(RETENTION_LOCK)))
        await conn.commit()
    except DBAPIError:
        # Never hand a connection holding the lock back to the pool: closing it releases it.
        await conn.invalidate()
