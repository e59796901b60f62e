"""API memory over a long life: RSS after 1k and 10k runs served (issue 17, target C4).

Not a test: it prints figures. One API process (one uvicorn process, ``AGENT_API_WORKERS=1``)
serves one-LLM-call sync runs (``POST /v1/chat``) against the simulator (answering at once:
this measures memory, not latency), ``--concurrency`` at a time, with every ``--tasks-every``-th
request a queued task instead (``POST /v1/tasks``: the submit path, no worker runs them; their
records expire after 60 s). At each checkpoint (``--checkpoints``) the API's RSS is read from
/proc, with its CPU per request since the previous checkpoint. Growth is RSS(last) / RSS(first).

Target C4: API RSS after 10k runs <= 160 MB.

    uv run python bench/api_memory.py                            # 1k, 10k (~3 min)
    uv run python bench/api_memory.py --checkpoints 1000 10000 30000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import cpu_seconds, footer, header, load, rss_mb, stack


async def serve(url: str, first: int, count: int, concurrency: int, tasks_every: int) -> int:
    """Requests ``first .. first + count - 1``, ``concurrency`` at a time; every one must
    succeed. A request whose connection was dropped before any answer is sent again once;
    returns how many were (printed: they are not hidden)."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(first, first + count):
        queue.put_nowait(number)
    resent = 0

    async def send(client: httpx.AsyncClient, number: int) -> httpx.Response:
        body = {"message": f"hello number {number}"}
        path = "/v1/tasks" if tasks_every and number % tasks_every == 0 else "/v1/chat"
        return await client.post(path, json=body)

    async def client_loop(client: httpx.AsyncClient) -> None:
        nonlocal resent
        while not queue.empty():
            number = queue.get_nowait()
            try:
                response = await send(client, number)
            except (httpx.ReadError, httpx.RemoteProtocolError):
                resent += 1
                response = await send(client, number)
            if response.status_code not in (200, 202):
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
    return resent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoints", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--tasks-every", type=int, default=10, help="every N-th request is a task (0: none)"
    )
    args = parser.parse_args()
    header(
        f"API memory: RSS at {args.checkpoints} runs, {args.concurrency} at a time, "
        f"one in {args.tasks_every} a queued task"
    )
    with stack("api-memory") as s:
        redis_url = s.redis()
        sim_url = s.sim("--ttft", "0")
        url, api = s.api_process(
            {
                "AGENT_REDIS_URL": redis_url,
                "AGENT_SIM_URL": sim_url,
                "AGENT_API_WORKERS": "1",
                "AGENT_WORKER_QUEUE": "bench-api-memory",
                "AGENT_TASKS_TTL_SECONDS": "60",
            }
        )
        header_row = f"{'runs':>8s} {'RSS MB':>8s} {'CPU ms/req':>10s} {'req/s':>8s} {'resent':>6s}"
        print(f"{header_row}  load", flush=True)
        rows = []
        done, started = 0, time.monotonic()
        cpu_before, last = cpu_seconds(api.pid), time.monotonic()
        for target in sorted(args.checkpoints):
            count = target - done
            try:
                resent = asyncio.run(serve(url, done, count, args.concurrency, args.tasks_every))
            except (httpx.HTTPError, RuntimeError):
                print(f"# the API failed; its log ends with:\n{api.log()[-3000:]}", flush=True)
                raise
            done = target
            time.sleep(1.0)  # background work after the last answers
            cpu_now, now = cpu_seconds(api.pid), time.monotonic()
            rss = rss_mb(api.pid)
            rows.append((target, rss))
            cpu_ms = (cpu_now - cpu_before) / count * 1000
            print(
                f"{target:>8d} {rss:8.1f} {cpu_ms:10.2f} {count / (now - last):8.1f} "
                f"{resent:>6d}  {load()}",
                flush=True,
            )
            cpu_before, last = cpu_now, now
    print(f"# {time.monotonic() - started:.0f} s in all")
    if len(rows) > 1:
        print(f"RSS {rows[-1][0]} runs / {rows[0][0]} runs: {rows[-1][1] / rows[0][1]:.3f}x")
    by_runs = dict(rows)
    if 10_000 in by_runs:
        verdict = "met" if by_runs[10_000] <= 160 else "MISSED"
        print(f"C4 (API RSS after 10k runs <= 160 MB): {by_runs[10_000]:.1f} MB, {verdict}")
    footer()


if __name__ == "__main__":
    main()
