"""Cost of tracing and of metrics on the enqueue path: ``POST /v1/tasks`` latency, on vs off.

Not a test: it prints figures. Starts Redis, the simulator and three API processes (no worker:
only the enqueue is measured): "tracing on" exports spans over OTLP/HTTP to a local sink;
"tracing off" has ``OTEL_SDK_DISABLED=true``; "metrics off" has that and
``AGENT_METRICS_ENABLED=false`` (every metric a no-op). Metrics are on in the first two.
It sends ``--requests`` sequential requests (one keep-alive connection) to each, in turn,
``--rounds`` times, and prints p50/p99 and the ratios: tracing = "tracing on" / "tracing off",
metrics = "tracing off" / "metrics off" (each pair differs in one thing only).

Because a 2 % difference is below the run-to-run noise of a p50 on a shared box, it also times
the metric operations one request performs, in-process, and prints them as a share of the p50.

Target for metrics: <= 2 % on p50.

    uv run python bench/observability_overhead.py --requests 500 --rounds 3
"""

from __future__ import annotations

import argparse
import http.server
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import footer, header, spread
from tests.procs import Proc, base_env, cli, free_port, redis_args, wait_http


class _Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return


def measure(url: str, path: str, count: int) -> list[float]:
    times = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(count):
            started = time.perf_counter()
            if path == "/healthz":
                client.get(path)
            else:
                client.post(path, json={"message": f"hello {i}"})
            times.append((time.perf_counter() - started) * 1000)
    return times


def metric_ops_us(repeat: int = 50_000) -> float:
    """Microseconds of the metric operations one POST /v1/tasks performs, in this process
    (the middleware's in-progress gauge, request counter and duration histogram, the route's
    submitted counter), on the service's own Metrics class: what the p50 ratio cannot resolve
    below its noise."""
    from prometheus_client import CollectorRegistry

    from agent_service.observability.metrics import Metrics

    metrics = Metrics(CollectorRegistry())
    route, queue = "/v1/tasks", "agent"
    started = time.perf_counter()
    for _ in range(repeat):
        in_progress = metrics.http_in_progress.labels(route)
        in_progress.inc()
        metrics.tasks_submitted.labels(queue).inc()
        in_progress.dec()
        metrics.http_requests.labels("POST", route, "202").inc()
        metrics.http_duration.labels("POST", route).observe(0.002)
    return (time.perf_counter() - started) / repeat * 1e6


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    header(
        f"observability overhead: POST /v1/tasks, {args.requests} sequential requests x "
        f"{args.rounds} rounds; medians of the rounds"
    )
    work = Path(tempfile.mkdtemp(prefix="bench-otel-"))
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    redis_port, sim_port = free_port(), free_port()
    procs = [
        Proc(
            "redis",
            redis_args(shutil.which("redis-server") or "redis-server", redis_port, work),
            base_env(),
            work,
        ),
        Proc("sim", cli("sim-llm", "--port", str(sim_port)), base_env(), work),
    ]
    common = {
        "AGENT_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "AGENT_LOG_LEVEL": "WARNING",
        "AGENT_SIM_URL": f"http://127.0.0.1:{sim_port}/v1",
        "AGENT_API_HOST": "127.0.0.1",
    }
    variants = {
        "tracing on": {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_port}"},
        "tracing off": {"OTEL_SDK_DISABLED": "true"},
        "metrics off": {"OTEL_SDK_DISABLED": "true", "AGENT_METRICS_ENABLED": "false"},
    }
    urls = {}
    try:
        for name, extra in variants.items():
            port = free_port()
            env = base_env(
                {
                    **common,
                    **extra,
                    "AGENT_API_PORT": str(port),
                    "AGENT_METRICS_PORT": str(free_port()),
                    "AGENT_WORKER_QUEUE": f"bench-{port}",
                }
            )
            procs.append(Proc(f"api-{port}", cli("api"), env, work))
            urls[name] = f"http://127.0.0.1:{port}"
            wait_http(f"{urls[name]}/readyz", procs[-1], timeout=90)
        results: dict[str, dict[str, list[float]]] = {
            n: {"p50": [], "p99": [], "h50": []} for n in urls
        }
        for url in urls.values():  # warm-up
            measure(url, "/v1/tasks", 100)
        for _ in range(args.rounds):
            for name, url in urls.items():
                tasks = measure(url, "/v1/tasks", args.requests)
                health = measure(url, "/healthz", args.requests)
                results[name]["p50"].append(pct(tasks, 50))
                results[name]["p99"].append(pct(tasks, 99))
                results[name]["h50"].append(pct(health, 50))
        for name, r in results.items():
            print(
                f"{name:12s} p50 {statistics.median(r['p50']):.3f} ms  "
                f"p99 {statistics.median(r['p99']):.3f} ms  (healthz p50 "
                f"{statistics.median(r['h50']):.3f} ms)  p50 spread {spread(r['p50'])}"
            )
        p50 = {n: statistics.median(r["p50"]) for n, r in results.items()}
        on, off, bare = p50["tracing on"], p50["tracing off"], p50["metrics off"]
        print(f"tracing on / off (p50): {on / off:.3f}x  (+{on - off:.3f} ms)")
        print(f"metrics on / off (p50): {off / bare:.3f}x  (+{off - bare:.3f} ms)")
        ops = metric_ops_us()
        share = ops / 1000 / bare
        verdict = "met" if share <= 0.02 else "MISSED"
        print(
            f"metric operations of one request, timed in-process: {ops:.2f} us = "
            f"{100 * share:.2f} % of the metrics-off p50 (target <= 2 %: {verdict})"
        )
        footer()
    finally:
        for proc in reversed(procs):
            proc.stop()
        sink.shutdown()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
