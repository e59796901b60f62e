"""Enqueue overhead: what ``POST /v1/tasks`` adds above the HTTP floor, against one Redis LPUSH.

Not a test: it prints figures. Starts Redis, the simulator and one API process (no worker:
only the enqueue is measured). Each round sends ``--requests`` sequential requests on one
keep-alive connection (c=1: latency, not throughput) to ``POST /v1/tasks`` and to
``GET /healthz``, and, in the same process, ``--requests`` redis-py ``LPUSH`` round trips of a
value as large as a real task message. The overhead is ``tasks - healthz`` (p50 and p99); the
ratio is that overhead over the LPUSH round trip. Medians of ``--rounds`` rounds.

Target: overhead <= 2x one LPUSH at p50, <= 3x at p99.

    uv run python bench/enqueue_overhead.py --requests 1000 --rounds 5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import footer, header, median, pct, spread, stack


def http_times(client: httpx.Client, path: str, count: int) -> list[float]:
    times = []
    for i in range(count):
        started = time.perf_counter()
        if path == "/healthz":
            resp = client.get(path)
        else:
            resp = client.post(path, json={"message": f"hello number {i}"})
        times.append((time.perf_counter() - started) * 1000)
        assert resp.status_code in (200, 202), resp.text
    return times


def lpush_times(url: str, size: int, count: int) -> list[float]:
    client = redis.Redis.from_url(url)
    value = b"x" * size
    key = "bench:lpush"
    times = []
    for _ in range(count):
        started = time.perf_counter()
        client.lpush(key, value)
        times.append((time.perf_counter() - started) * 1000)
    client.delete(key)
    client.close()
    return times


def message_size(url: str, queue: str) -> int:
    client = redis.Redis.from_url(url)
    raw = client.lindex(queue, 0)
    client.close()
    return len(raw) if raw else 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    header(f"enqueue overhead: {args.requests} sequential requests x {args.rounds} rounds, c=1")
    with stack("enqueue") as s:
        redis_url = s.redis()
        sim_url = s.sim()
        queue = "bench-enqueue"
        url = s.api(
            {"AGENT_REDIS_URL": redis_url, "AGENT_SIM_URL": sim_url, "AGENT_WORKER_QUEUE": queue}
        )
        rows: dict[str, list[float]] = {
            k: [] for k in ("t50", "t99", "h50", "h99", "r50", "r99", "o50", "o99")
        }
        with httpx.Client(base_url=url, timeout=10) as client:
            http_times(client, "/v1/tasks", 200)  # warm-up: imports, pools, JIT-free caches
            http_times(client, "/healthz", 200)
            size = message_size(redis_url, queue)
            for _ in range(args.rounds):
                tasks = http_times(client, "/v1/tasks", args.requests)
                health = http_times(client, "/healthz", args.requests)
                lpush = lpush_times(redis_url, size, args.requests)
                for name, values in (("t", tasks), ("h", health), ("r", lpush)):
                    rows[f"{name}50"].append(pct(values, 50))
                    rows[f"{name}99"].append(pct(values, 99))
                rows["o50"].append(rows["t50"][-1] - rows["h50"][-1])
                rows["o99"].append(rows["t99"][-1] - rows["h99"][-1])
                redis.Redis.from_url(redis_url).delete(queue)  # keep the queue small
    m = {k: median(v) for k, v in rows.items()}
    print(f"# task message: {size} bytes (the LPUSH value has the same size)")
    print(f"{'':28s} {'p50 ms':>8s} {'p99 ms':>8s}   p50 spread")
    print(f"{'POST /v1/tasks':28s} {m['t50']:8.3f} {m['t99']:8.3f}   {spread(rows['t50'])}")
    print(
        f"{'GET /healthz (HTTP floor)':28s} {m['h50']:8.3f} {m['h99']:8.3f}   {spread(rows['h50'])}"
    )
    name = "overhead (tasks - healthz)"
    print(f"{name:28s} {m['o50']:8.3f} {m['o99']:8.3f}   {spread(rows['o50'])}")
    print(
        f"{'redis-py LPUSH (baseline)':28s} {m['r50']:8.3f} {m['r99']:8.3f}   {spread(rows['r50'])}"
    )
    r50, r99 = m["o50"] / m["r50"], m["o99"] / m["r99"]
    print(
        f"overhead / LPUSH: p50 {r50:.2f}x (target <= 2x: {'met' if r50 <= 2 else 'MISSED'}), "
        f"p99 {r99:.2f}x (target <= 3x: {'met' if r99 <= 3 else 'MISSED'})"
    )
    footer()


if __name__ == "__main__":
    main()
