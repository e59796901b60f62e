"""Gateway throughput: ``POST /v1/tasks`` per second from one API process, against Redis itself.

Not a test: it prints figures. Starts Redis, the simulator and one API process
(``--api-workers``: 1 is what one chart pod runs by default; no worker: only the enqueue is
measured). Each round drives ``POST /v1/tasks`` for ``--seconds`` with ``wrk`` (``--connections``
keep-alive connections, 2 threads), then measures the baseline on the same Redis in the same
round: ``redis-benchmark -t lpush -c 50 -P 1``. The ratio is API requests/s over Redis LPUSH/s.
Medians of ``--rounds`` rounds. wrk, redis-benchmark, Redis and the API share the cores, so
the figures are lower bounds for a dedicated box; the split is stated, not hidden.

Target: API rate >= 1/20 of redis-benchmark's LPUSH rate.

    scripts/bootstrap.sh wrk redis-tools && uv run python bench/gateway_throughput.py
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import footer, header, median, spread, stack, wrk_post

BODY = '{"message": "what is 12*(3+4)?"}'


def run_wrk(url: str, seconds: int, connections: int, work: Path) -> tuple[float, str]:
    headers = {"Content-Type": "application/json"}
    result = wrk_post(url, BODY, headers, seconds=seconds, connections=connections, script_dir=work)
    detail = f"p99 {result.p99_ms:.0f}ms"
    if result.non_2xx:
        detail += f", {result.non_2xx} non-2xx"
    return result.rate, detail


def run_redis_benchmark(url: str, requests: int) -> float:
    port = redis.Redis.from_url(url).connection_pool.connection_kwargs["port"]
    out = subprocess.run(
        [
            "redis-benchmark",
            "-p",
            str(port),
            "-t",
            "lpush",
            "-c",
            "50",
            "-P",
            "1",
            "-n",
            str(requests),
            "-q",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(re.search(r"LPUSH: ([\d.]+) requests per second", out).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per round")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--lpush-requests", type=int, default=200_000)
    args = parser.parse_args()
    for tool in ("wrk", "redis-benchmark"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: scripts/bootstrap.sh wrk redis-tools")
    header(
        f"gateway throughput: wrk -c{args.connections} {args.seconds}s on POST /v1/tasks, "
        f"{args.api_workers} API process(es), vs redis-benchmark -t lpush -c 50 -P 1; "
        f"median of {args.rounds}"
    )
    with stack("gateway") as s:
        redis_url = s.redis()
        sim_url = s.sim()
        queue = "bench-gateway"
        url = s.api(
            {
                "AGENT_REDIS_URL": redis_url,
                "AGENT_SIM_URL": sim_url,
                "AGENT_WORKER_QUEUE": queue,
                "AGENT_API_WORKERS": str(args.api_workers),
            }
        )
        with httpx.Client(base_url=url) as client:  # warm-up
            for _ in range(200):
                client.post("/v1/tasks", json={"message": "warm up"})
        api_rates, redis_rates, details = [], [], []
        broker = redis.Redis.from_url(redis_url)
        for _ in range(args.rounds):
            rate, detail = run_wrk(f"{url}/v1/tasks", args.seconds, args.connections, s.work)
            api_rates.append(rate)
            details.append(detail)
            broker.flushdb()  # records and messages of the round: keep memory flat
            redis_rates.append(run_redis_benchmark(redis_url, args.lpush_requests))
            broker.flushdb()
        broker.close()
    api, base = median(api_rates), median(redis_rates)
    extra = "; ".join(details)
    print(f"POST /v1/tasks        {api:9.0f} req/s   spread {spread(api_rates)}   ({extra})")
    print(f"redis-benchmark LPUSH {base:9.0f} req/s   spread {spread(redis_rates)}")
    ratio = api / base
    verdict = "met" if ratio >= 1 / 20 else "MISSED"
    print(f"ratio: 1/{1 / ratio:.1f} of Redis (target >= 1/20: {verdict})")
    footer()


if __name__ == "__main__":
    main()
