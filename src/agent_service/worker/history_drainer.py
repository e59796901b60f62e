"""Archiving finished runs from the Redis outbox to Postgres, on the worker's event loop.

The worker's start-up (``worker.main``) starts one ``HistoryDrainer`` per worker process on its
``LoopThread`` when history is on (``drainer_of``), next to the webhook dispatcher, and stops it
at shutdown.
Every ``AGENT_HISTORY_DRAIN_INTERVAL_SECONDS`` (at once after a full batch) it:

1. makes sure the schema is migrated (once per process, ``History.ensure_schema``);
2. leases a batch from the outbox (``store.history_outbox``) for ``lease_seconds``;
3. writes it to Postgres in one transaction (``history.archive``; a re-write is a no-op);
4. settles it: off the outbox, and the Redis records get the short archived TTL.

Postgres down: the batch is given back and the drainer backs off (doubling up to
``MAX_BACKOFF_SECONDS``); runs wait on the outbox, counted in ``agent_history_outbox_depth``
and ``agent_history_archive_lag_seconds``, each failed attempt in
``agent_history_archive_errors_total{reason="database"}``. A drainer killed between 3 and 4
leaves its lease to run out; another drainer writes the batch again, harmlessly. A run Postgres
refuses (a bug, never an outage) is found by writing the batch run by run, logged with its id
and dropped from the outbox, its Redis record left to its full TTL, so it cannot hold the
others back. The drainer also runs retention sweeps every
``AGENT_HISTORY_RETENTION_INTERVAL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence

from agent_service.domain.errors import DependencyUnavailableError
from agent_service.domain.history import ArchivedRun
from agent_service.history.models import ArchiveRejectedError
from agent_service.history.runtime import History
from agent_service.observability.metrics import Metrics
from agent_service.runtime import Runtime
from agent_service.settings import HistorySettings
from agent_service.store.history_outbox import HistoryOutbox, OutboxClaim, OutboxItem

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
"""Longest wait between two archive attempts while Postgres (or Redis) is down."""
FIRST_SWEEP_MAX_DELAY_SECONDS = 300.0
"""A worker's first retention sweep comes after a random delay up to this (or the interval),
so pods started together do not all try at once."""


def drainer_of(runtime: Runtime) -> HistoryDrainer | None:
    """The drainer of a worker's runtime; None when history is off."""
    if runtime.history is None or runtime.history_outbox is None:
        return None
    return HistoryDrainer(
        runtime.history, runtime.history_outbox, runtime.metrics, runtime.settings.history
    )


class HistoryDrainer:
    """Drains the outbox into ``history`` until ``stop``. Lives on the worker's loop."""

    def __init__(
        self,
        history: History,
        outbox: HistoryOutbox,
        metrics: Metrics,
        settings: HistorySettings,
    ) -> None:
        self._history = history
        self._outbox = outbox
        self._metrics = metrics
        self._settings = settings
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._failing: str | None = None

    async def start(self) -> None:
        """Start draining and sweeping (call on the worker's event loop)."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._drain_loop()), loop.create_task(self._sweep_loop())]

    async def stop(self, grace_seconds: float) -> None:
        """Stop taking batches; let the batch in hand finish for up to ``grace_seconds``, then
        cancel (its lease runs out and another worker archives it)."""
        self._stopping.set()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drain_once(self) -> int:
        """Archive one batch; returns how many runs it held (0: the outbox had none due).

        ``DependencyUnavailableError`` when Postgres or Redis is down (counted here).
        """
        try:
            await self._history.ensure_schema()
        except DependencyUnavailableError:
            self._metrics.history_archive_failed("database")
            raise
        try:
            claims = await self._outbox.claim(
                self._settings.lease_seconds, self._settings.drain_batch_size
            )
            items = await self._outbox.load(claims) if claims else []
        except DependencyUnavailableError:
            self._metrics.history_archive_failed("outbox")
            raise
        if not items:
            return 0
        archived, dropped = await self._write(items)
        try:
            settled = await self._outbox.settle(
                [item.claim for item in archived], self._settings.archived_record_ttl_seconds
            )
            settled += await self._outbox.settle(dropped, 0)
        except DependencyUnavailableError:
            # Archived but still on the outbox: rewritten (a no-op) after the lease.
            self._metrics.history_archive_failed("outbox")
            raise
        if settled < len(items):
            log.info(
                "history lease ran out for %d of %d runs before they were settled; they are "
                "archived again (a no-op) by the next drainer",
                len(items) - settled,
                len(items),
            )
        return len(items)

    async def _write(
        self, items: Sequence[OutboxItem]
    ) -> tuple[list[OutboxItem], list[OutboxClaim]]:
        """Write the batch: the items archived, and the claims to drop (nothing to archive,
        or refused by Postgres)."""
        dropped = [item.claim for item in items if item.run is None]
        for item in items:
            if item.run is None and item.problem == "expired":
                # It waited longer than its record's TTL (AGENT_TASKS_TTL_SECONDS): lost.
                self._metrics.history_archive_failed("expired")
                log.warning(
                    "history: a run's record expired before it could be archived",
                    extra={"task_id": item.claim.run_id},
                )
            elif item.run is None:
                self._metrics.history_archive_failed("unreadable")
                log.error(
                    "history: dropped a run whose record cannot be read: %s",
                    item.problem,
                    extra={"task_id": item.claim.run_id},
                )
        ready = [(item, item.run) for item in items if item.run is not None]
        try:
            await self._archive(ready)
        except ArchiveRejectedError:
            return await self._write_one_by_one(ready, dropped)
        return [item for item, _ in ready], dropped

    async def _archive(self, pending: Sequence[tuple[OutboxItem, ArchivedRun]]) -> None:
        """Write the runs of ``pending``; when Postgres is down, give them back first."""
        try:
            await self._history.archive.write([run for _, run in pending])
        except DependencyUnavailableError:
            self._metrics.history_archive_failed("database")
            with contextlib.suppress(DependencyUnavailableError):
                await self._outbox.release([item.claim for item, _ in pending], self._backoff(1))
            raise

    async def _write_one_by_one(
        self, pending: Sequence[tuple[OutboxItem, ArchivedRun]], dropped: list[OutboxClaim]
    ) -> tuple[list[OutboxItem], list[OutboxClaim]]:
        archived: list[OutboxItem] = []
        for index, (item, _) in enumerate(pending):
            try:
                await self._archive(pending[index : index + 1])
            except ArchiveRejectedError as exc:
                self._metrics.history_archive_failed("rejected")
                log.error(
                    "history: Postgres refused a run; dropped from the outbox, its record "
                    "kept in Redis until it expires: %s",
                    exc,
                    extra={"task_id": item.claim.run_id},
                )
                dropped.append(item.claim)
            else:
                archived.append(item)
        return archived, dropped

    def _backoff(self, failures: int) -> float:
        interval = self._settings.drain_interval_seconds
        return min(MAX_BACKOFF_SECONDS, interval * (1 << min(failures, 16)))

    async def _drain_loop(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                drained = await self.drain_once()
            except DependencyUnavailableError as exc:
                failures += 1
                self._note_failure(str(exc))
                drained = 0
            except Exception:
                failures += 1
                log.exception("history drain failed; retrying")
                drained = 0
            else:
                failures = 0
                self._note_failure(None)
            await self._observe()
            if drained >= self._settings.drain_batch_size:
                continue  # more is waiting: no pause
            await self._pause(self._backoff(failures) if failures else 0.0)

    async def _pause(self, backoff: float) -> None:
        """Wait one drain interval, or ``backoff``; the gauges keep being refreshed every
        interval meanwhile, so an outage shows as a growing lag, not a frozen one."""
        interval = self._settings.drain_interval_seconds
        deadline = time.monotonic() + max(interval, backoff)
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), min(left, interval))
            if time.monotonic() < deadline:
                await self._observe()

    def _note_failure(self, reason: str | None) -> None:
        """Log an outage once when it starts and once when it ends, not every attempt."""
        if reason is not None and self._failing is None:
            log.warning("history archive waiting (runs stay on the outbox): %s", reason)
        elif reason is None and self._failing is not None:
            log.info("history archive resumed")
        self._failing = reason

    async def _observe(self) -> None:
        try:
            stats = await self._outbox.stats()
        except DependencyUnavailableError:
            return
        self._metrics.history_outbox(stats.depth, stats.lag_seconds(time.time()))

    async def _sweep_loop(self) -> None:
        interval = self._settings.retention_interval_seconds
        # Random, not cryptographic: only spreads the first sweeps of pods started together.
        delay = random.uniform(0, min(interval, FIRST_SWEEP_MAX_DELAY_SECONDS))  # noqa: S311
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return
            delay = interval
            try:
                await self._history.retention.sweep()
            except Exception as exc:  # Postgres down, or a bug: the next sweep tries again
                log.warning("history retention sweep failed: %s", exc)
