"""History archive: how fast the drainer empties the outbox, what a run costs in Postgres, and
how long the list and usage queries take.

Not a test: it prints figures. Starts a private redis-server and Postgres. For each batch size
it puts ``--runs`` finished tasks (records with four steps, as the worker leaves them) on the
outbox and drains it with ``HistoryDrainer.drain_once`` (claim, read the records, write, settle);
the same-run baseline writes the same runs with ``HistoryArchive.write`` alone, so the ratio is
what the outbox (Redis claim, load and settle) costs over the Postgres insert itself. Then the
bytes per archived run (table, indexes and TOAST; tool rows included) against the bytes the
same record takes in Redis, and query latencies on the archived runs. Medians of ``--rounds``.

    uv run python bench/history_archive.py --runs 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import footer, header, median, spread, stack
from tests.history.factory import task_record
from tests.history.redis_runs import finish_in_redis
from tests.postgres import start_postgres

from agent_service.domain.history import archived_task
from agent_service.domain.tasks import TaskStatus
from agent_service.history.migrate import upgrade_schema
from agent_service.history.models import Dimension, RunFilter, UsageQuery
from agent_service.history.runtime import History
from agent_service.history.scope import Scope
from agent_service.observability.metrics import Metrics
from agent_service.settings import HistorySettings
from agent_service.store.client import Redis
from agent_service.store.history_outbox import HistoryOutbox
from agent_service.store.keys import Keys
from agent_service.store.tasks import TaskStore
from agent_service.worker.history_drainer import HistoryDrainer

TASK_TTL = 7 * 86400


def settings(url: str, batch: int) -> HistorySettings:
    return HistorySettings(url=SecretStr(url), drain_batch_size=batch, pool_size=2)


async def fill(redis_url: str, runs: int) -> tuple[Keys, list[str]]:
    keys = Keys(f"b{uuid.uuid4().hex[:8]}:")
    client = Redis.from_url(redis_url)
    store = TaskStore(client, keys, TASK_TTL, 100)
    outbox = HistoryOutbox(client, keys, TASK_TTL)
    tools = (("calculator", "ok"), ("clock", "ok"))
    ids = []
    for _ in range(runs):
        record = await finish_in_redis(store, outbox, task_record(tools=tools))
        ids.append(record.task_id)
    await client.aclose()
    return keys, ids


async def drain_rate(redis_url: str, pg_url: str, runs: int, batch: int) -> float:
    """Runs per second through claim, load, write, settle."""
    keys, _ = await fill(redis_url, runs)
    client = Redis.from_url(redis_url)
    history = History.create(settings(pg_url, batch))
    outbox = HistoryOutbox(client, keys, TASK_TTL)
    drainer = HistoryDrainer(history, outbox, Metrics(CollectorRegistry()), history.settings)
    started = time.perf_counter()
    while await drainer.drain_once():
        pass
    elapsed = time.perf_counter() - started
    await history.close()
    await client.aclose()
    return runs / elapsed


async def insert_rate(pg_url: str, runs: int, batch: int) -> float:
    """Runs per second written by the archive alone (the same kind of runs)."""
    rows = [
        archived_task(task_record(tools=(("calculator", "ok"), ("clock", "ok"))))
        for _ in range(runs)
    ]
    history = History.create(settings(pg_url, batch))
    started = time.perf_counter()
    for i in range(0, runs, batch):
        await history.archive.write(rows[i : i + batch])
    elapsed = time.perf_counter() - started
    await history.close()
    return runs / elapsed


async def sizes(redis_url: str, pg_url: str) -> tuple[float, float]:
    """Bytes per run: in Postgres (all relations of both tables), and in Redis (record + events
    of one task as the worker leaves it)."""
    history = History.create(settings(pg_url, 200))
    async with history.engine.connect() as conn:
        total = (
            await conn.execute(
                text(
                    "SELECT pg_total_relation_size('history_runs') "
                    "+ pg_total_relation_size('history_run_tools'), "
                    "(SELECT count(*) FROM history_runs)"
                )
            )
        ).one()
    await history.close()
    keys, ids = await fill(redis_url, 20)
    client = Redis.from_url(redis_url)
    redis_bytes = []
    for task_id in ids:
        record = await client.memory_usage(keys.task(task_id)) or 0
        events = await client.memory_usage(keys.events(task_id)) or 0
        redis_bytes.append(record + events)
    await client.aclose()
    return total[0] / total[1], median(redis_bytes)


async def query_times(pg_url: str, rounds: int) -> dict[str, float]:
    history = History.create(settings(pg_url, 200))
    scope = Scope.of_tenant("acme")
    now = datetime.now(UTC)
    day = UsageQuery(now - timedelta(days=1), now + timedelta(minutes=1))
    queries = {
        "list first page (20)": lambda: history.runs.page(scope, RunFilter(), None, 20),
        "list failed only": lambda: history.runs.page(
            scope, RunFilter(statuses=(TaskStatus.FAILED,)), None, 20
        ),
        "get one run": None,
        "usage totals, 1 day": lambda: history.usage.report(scope, day),
        "usage by model, hourly": lambda: history.usage.report(
            scope,
            UsageQuery(
                day.start, day.end, interval=timedelta(hours=1), group_by=(Dimension.MODEL,)
            ),
        ),
        "usage top tools": lambda: history.usage.report(
            scope, UsageQuery(day.start, day.end, group_by=(Dimension.TOOL,), limit=10)
        ),
    }
    first = (await history.runs.page(scope, RunFilter(), None, 1)).items[0].run_id
    queries["get one run"] = lambda: history.runs.get(scope, first)
    times: dict[str, float] = {}
    for name, make in queries.items():
        assert make is not None
        samples = []
        for _ in range(rounds * 5):
            started = time.perf_counter()
            await make()
            samples.append((time.perf_counter() - started) * 1000)
        times[name] = median(samples)
    await history.close()
    return times


async def run(args: argparse.Namespace) -> None:
    with stack("history") as running:
        redis_url = running.redis()
        pg = start_postgres(running.work)
        if pg is None:
            print("Postgres is not installed (Debian: apt-get install postgresql)")
            return
        try:
            pg.execute("CREATE DATABASE bench")
            pg_url = pg.url("bench")
            await upgrade_schema(settings(pg_url, 200))
            for batch in args.batches:
                drains, inserts = [], []
                for _ in range(args.rounds):
                    drains.append(await drain_rate(redis_url, pg_url, args.runs, batch))
                    inserts.append(await insert_rate(pg_url, args.runs, batch))
                ratio = median(inserts) / median(drains)
                print(
                    f"batch {batch:>4}: drain {median(drains):7.0f} runs/s "
                    f"({spread(drains)}), insert alone {median(inserts):7.0f} runs/s "
                    f"({spread(inserts)}); outbox costs x{ratio:.2f}"
                )
            pg_bytes, redis_bytes = await sizes(redis_url, pg_url)
            print(
                f"bytes per run: Postgres {pg_bytes:,.0f} (tables, indexes, TOAST), "
                f"Redis {redis_bytes:,.0f} (record + events); ratio {pg_bytes / redis_bytes:.2f}"
            )
            for name, ms in (await query_times(pg_url, args.rounds)).items():
                print(f"{name:<26} {ms:7.2f} ms (median)")
        finally:
            pg.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, nargs="+", default=[50, 200, 1000])
    args = parser.parse_args()
    header("history archive: drain rate, bytes per run, query latency")
    asyncio.run(run(args))
    footer()


if __name__ == "__main__":
    main()
