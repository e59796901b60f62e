"""Worker memory over a long life: RSS after 10k and after 100k simulated runs.

Not a test: it prints figures. One worker process (``--slots`` slots) consumes one-LLM-call
runs against the simulator (answering at once: this measures memory, not latency), fed in
batches so the backlog stays small; task records expire after 60 s so Redis stays small too.
At each checkpoint (``--checkpoints``, default 1k, 10k, 100k runs) the queue is drained and
the worker's RSS read from /proc. The baseline is the first checkpoint (warm: every lazy
import and pool done); growth is RSS(last) / RSS(10k).

Target: RSS after 100k runs <= 1.10x RSS after 10k.

    uv run python bench/worker_memory.py                         # 1k, 10k, 100k (~25 min)
    uv run python bench/worker_memory.py --checkpoints 1000 10000 30000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import worker_concurrency as wc
from bench.common import cpu_seconds, footer, header, load, rss_mb, stack

BATCH = 1000


def drained(client: redis.Redis, queue: str) -> bool:
    return int(client.llen(queue)) == 0 and int(client.hlen("unacked")) == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--slots", type=int, default=100)
    args = parser.parse_args()
    header(f"worker memory: RSS at {args.checkpoints} runs, {args.slots} slots")
    queue = "bench-memory"
    prefix = f"{queue}:"
    with stack("memory") as s:
        redis_url = s.redis()
        sim_url = s.sim("--ttft", "0")
        worker = s.worker(
            {
                "AGENT_REDIS_URL": redis_url,
                "AGENT_SIM_URL": sim_url,
                "AGENT_WORKER_QUEUE": queue,
                "AGENT_REDIS_KEY_PREFIX": prefix,
                "AGENT_WORKER_CONCURRENCY": str(args.slots),
                "AGENT_TASKS_TTL_SECONDS": "60",
            }
        )
        client = redis.Redis.from_url(redis_url)
        done, started = 0, time.monotonic()
        rows = []
        print(f"{'runs':>8s} {'RSS MB':>8s} {'CPU ms/run':>10s} {'runs/s':>8s}  load", flush=True)
        cpu_before, last = cpu_seconds(worker.pid), time.monotonic()
        previous = 0
        for target in sorted(args.checkpoints):
            while done < target:
                while int(client.llen(queue)) > BATCH // 2:  # keep the backlog small
                    time.sleep(0.2)
                count = min(BATCH, target - done)
                asyncio.run(wc.enqueue(redis_url, queue, prefix, count))
                done += count
            while not drained(client, queue):
                time.sleep(0.2)
            time.sleep(1.0)  # the last acknowledgements and background bookkeeping
            cpu_now, now = cpu_seconds(worker.pid), time.monotonic()
            runs = target - previous
            cpu_ms = (cpu_now - cpu_before) / runs * 1000
            rate = runs / (now - last)
            rss = rss_mb(worker.pid)
            rows.append((target, rss))
            print(f"{target:>8d} {rss:8.1f} {cpu_ms:10.2f} {rate:8.1f}  {load()}", flush=True)
            cpu_before, last, previous = cpu_now, now, target
        client.close()
    print(f"# {time.monotonic() - started:.0f} s in all")
    by_runs = dict(rows)
    if 10_000 in by_runs and rows[-1][0] > 10_000:
        growth = rows[-1][1] / by_runs[10_000]
        verdict = "met" if growth <= 1.10 else "MISSED"
        print(f"RSS {rows[-1][0]} runs / 10000 runs: {growth:.3f}x (target <= 1.10x: {verdict})")
    footer()


if __name__ == "__main__":
    main()
