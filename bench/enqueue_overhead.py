"""Enqueue overhead: what ``POST /v1/tasks`` adds above the HTTP floor, against one Redis LPUSH.

Not a test: it prints figures. Starts Redis, the simulator and one API process (no worker:
only the enqueue is measured). Each round sends ``--requests`` sequential requests on one
keep-alive connection (c=1: latency, not throughput) to ``POST /v1/tasks`` and to
``GET /healthz``, and, in the same process, ``--requests`` redis-py ``LPUSH`` round trips of a
value as large as a real task message. The overhead is ``tasks - healthz`` (p50 and p99); the
ratio is that overhead over the LPUSH round trip. Medians of ``--rounds`` rounds. A second API
process with OpenTelemetry off (``OTEL_SDK_DISABLED=true``) is measured the same way in the same
run, to say how much of the overhead the request's spans are.

Target (issue 17, C6): overhead <= 4x one LPUSH at p50.

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
from bench.common import footer, header, median, pct, stack


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


def measure_api(url: str, redis_url: str, queue: str, args: argparse.Namespace) -> dict[str, float]:
    """Medians over ``args.rounds`` of one API's task and healthz percentiles, each round with
    its own LPUSH baseline; the overhead is tasks - healthz of the same round."""
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
    m["size"] = size
    m["o50_spread"] = max(rows["o50"]) - min(rows["o50"])
    m["t50_spread"] = max(rows["t50"]) - min(rows["t50"])
    m["h50_spread"] = max(rows["h50"]) - min(rows["h50"])
    m["r50_spread"] = max(rows["r50"]) - min(rows["r50"])
    return m


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    header(f"enqueue overhead: {args.requests} sequential requests x {args.rounds} rounds, c=1")
    with stack("enqueue") as s:
        redis_url = s.redis()
        sim_url = s.sim()
        env = {"AGENT_REDIS_URL": redis_url, "AGENT_SIM_URL": sim_url}
        queue = "bench-enqueue"
        url = s.api({**env, "AGENT_WORKER_QUEUE": queue})
        # The same API with OpenTelemetry off (its server and producer spans): what tracing
        # costs of the overhead, measured in the same run (not a supported way to run).
        untraced_queue = "bench-enqueue-untraced"
        untraced_url = s.api(
            {**env, "AGENT_WORKER_QUEUE": untraced_queue, "OTEL_SDK_DISABLED": "true"}
        )
        m = measure_api(url, redis_url, queue, args)
        off = measure_api(untraced_url, redis_url, untraced_queue, args)
    print(f"# task message: {int(m['size'])} bytes (the LPUSH value has the same size)")
    print(f"{'':28s} {'p50 ms':>8s} {'p99 ms':>8s}   p50 spread")
    print(f"{'POST /v1/tasks':28s} {m['t50']:8.3f} {m['t99']:8.3f}   {m['t50_spread']:.3f}")
    print(
        f"{'GET /healthz (HTTP floor)':28s} {m['h50']:8.3f} {m['h99']:8.3f}   {m['h50_spread']:.3f}"
    )
    name = "overhead (tasks - healthz)"
    print(f"{name:28s} {m['o50']:8.3f} {m['o99']:8.3f}   {m['o50_spread']:.3f}")
    print(
        f"{'redis-py LPUSH (baseline)':28s} {m['r50']:8.3f} {m['r99']:8.3f}   {m['r50_spread']:.3f}"
    )
    name = "overhead, tracing off"
    print(f"{name:28s} {off['o50']:8.3f} {off['o99']:8.3f}   {off['o50_spread']:.3f}")
    r50, r99 = m["o50"] / m["r50"], m["o99"] / m["r99"]
    print(
        f"overhead / LPUSH: p50 {r50:.2f}x (issue 17 C6 target <= 4x: "
        f"{'met' if r50 <= 4 else 'MISSED'}), p99 {r99:.2f}x"
    )
    print(
        f"overhead / LPUSH with tracing off: p50 {off['o50'] / off['r50']:.2f}x, "
        f"p99 {off['o99'] / off['r99']:.2f}x (tracing is {1 - off['o50'] / m['o50']:.0%} "
        f"of the p50 overhead)"
    )
    footer()


if __name__ == "__main__":
    main()
