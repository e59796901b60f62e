"""Scrape time of ``/metrics`` against the files dead processes leave in PROMETHEUS_MULTIPROC_DIR.

Not a test: it prints figures. Starts Redis and one API process whose metrics live in a
multiprocess directory (as under gunicorn, or after worker restarts in a pod). Then, step by
step, forks processes that record the metrics an API worker records (the service's own
``Metrics`` class: requests, durations, in-progress gauges, tasks submitted) and exit, and
marks each dead the way gunicorn's ``child_exit`` hook does (``mark_process_dead``: the
live-gauge files go, counter and histogram files stay, by design, to keep the counts). After
each step it times ``GET /metrics`` (``--scrapes`` times, median and p90). The baseline is the
scrape with no dead process (the same run, the same process).

What to read: scrape time grows with dead-process files, not with traffic, so process churn
(gunicorn ``max_requests``, crash loops) is the risk; the service removes dead processes'
files at start (``clean_multiprocess_dir``).

    uv run python bench/metrics_scrape.py --dead 0 10 100 500
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import footer, header, median, pct, stack

MULTIPROC = Path(tempfile.mkdtemp(prefix="bench-multiproc-"))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(MULTIPROC)  # before prometheus_client is imported


def leave_dead_processes(count: int) -> None:
    """``count`` processes that record metrics in MULTIPROC, exit, and are marked dead."""
    from prometheus_client import CollectorRegistry, multiprocess

    from agent_service.observability.metrics import Metrics

    for _ in range(count):
        pid = os.fork()
        if pid == 0:  # the child: an API worker's worth of series, then gone
            metrics = Metrics(CollectorRegistry())
            for route, status in (("/v1/tasks", "202"), ("/v1/chat", "200"), ("/healthz", "200")):
                method = "GET" if route == "/healthz" else "POST"
                metrics.http_requests.labels(method, route, status).inc()
                metrics.http_duration.labels(method, route).observe(0.004)
                metrics.http_in_progress.labels(route).inc()
                metrics.http_in_progress.labels(route).dec()
            metrics.tasks_submitted.labels("agent").inc()
            os._exit(0)
        os.waitpid(pid, 0)
        multiprocess.mark_process_dead(pid, str(MULTIPROC))


def scrape_times(url: str, count: int) -> tuple[list[float], int]:
    times, size = [], 0
    with httpx.Client(base_url=url, timeout=60) as client:
        client.get("/metrics")
        for _ in range(count):
            started = time.perf_counter()
            resp = client.get("/metrics")
            times.append((time.perf_counter() - started) * 1000)
            size = len(resp.content)
    return times, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dead", type=int, nargs="+", default=[0, 10, 100, 500])
    parser.add_argument("--scrapes", type=int, default=20)
    args = parser.parse_args()
    header(f"/metrics scrape time vs dead processes' files; {args.scrapes} scrapes per step")
    with stack("scrape") as s:
        redis_url = s.redis()
        url = s.api({"AGENT_REDIS_URL": redis_url, "PROMETHEUS_MULTIPROC_DIR": str(MULTIPROC)})
        with httpx.Client(base_url=url) as client:  # the live process's own series
            for _ in range(50):
                client.post("/v1/tasks", json={"message": "hello"})
        print(f"{'dead processes':>14s} {'files':>6s} {'p50 ms':>8s} {'p90 ms':>8s} {'bytes':>8s}")
        base, done = None, 0
        for target in sorted(args.dead):
            leave_dead_processes(target - done)
            done = target
            times, size = scrape_times(url, args.scrapes)
            files = len(list(MULTIPROC.glob("*.db")))
            p50 = median(times)
            base = p50 if base is None else base
            per_pid = f"  (+{(p50 - base) / target:.3f} ms per dead process)" if target else ""
            print(f"{target:>14d} {files:>6d} {p50:8.2f} {pct(times, 90):8.2f} {size:>8d}{per_pid}")
    footer()


if __name__ == "__main__":
    main()
