"""Capacity plan: replicas and Redis headroom per daily volume, and the worker autoscaler replayed.

Not a test: it prints figures and writes ``docs/capacity-timeline.png``. Three parts:

1. **Redis and Postgres cost per run, measured now**: a real stack (Redis, simulator, API, one
   worker), first without run history, then with it (a private Postgres, the worker's drainer
   archiving), runs ``--probe-runs`` queued two-call runs, each followed to its end over SSE.
   Redis' ``total_commands_processed`` delta gives commands per run (the drainer's idle polling
   subtracted), ``MEMORY USAGE`` of a task's keys the bytes Redis keeps per finished task, and
   the growth of the history tables (``pg_total_relation_size``) the bytes Postgres keeps per
   archived run.
2. **Sizing table** for 1k, 10k, 100k and 1M runs/day, from the per-pod figures
   measured by the benchmarks (``--api-cpu-ms-per-request``: bench/gateway_throughput.py;
   ``--worker-cpu-ms-per-call``: bench/worker_cpu.py; ``--redis-ops``: redis-benchmark),
   the LLM latency and calls per run, a peak factor, and the chart's values (requests, targets,
   slots, ``listLength``, min/max replicas, task TTL).
3. **Autoscaler replay** over the queue timeline of a load run (``--timeline``: the
   ``*_service.csv`` that ``make loadtest`` writes): the chart's KEDA ScaledObject
   (``backlog + inflight`` over ``listLength``, AverageValue) through the HPA algorithm
   (10 % tolerance, stabilization windows, scale-up/down policies, every 15 s), first over the
   measured metric (what KEDA would have asked for), then closed-loop: the run's arrivals served
   by the replicas the replay starts (each ready ``--pod-start`` s after it is asked for), to
   show how fast workers come and the backlog drains.

    make loadtest LOCUST_SHAPE=burst   # writes loadtest/out/loadtest_service.csv
    uv run python bench/capacity.py     # or: make capacity
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import redis
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, footer, header, stack
from tests.postgres import start_postgres

VALUES = ROOT / "charts" / "agent-service" / "values.yaml"
HPA_SYNC_SECONDS = 15  # kube-controller-manager --horizontal-pod-autoscaler-sync-period
HPA_TOLERANCE = 0.1  # --horizontal-pod-autoscaler-tolerance
DAILY = (1_000, 10_000, 100_000, 1_000_000)


# --- 1. Redis and Postgres cost per run ------------------------------------------------------


@dataclass(frozen=True)
class RunCost:
    """What one finished run costs: Redis commands (with and without history), the bytes its
    record and events take in Redis, the bytes its archive row takes in Postgres."""

    commands: float
    commands_with_history: float
    redis_bytes: float
    postgres_bytes: float


def probe_cost(runs: int) -> RunCost:
    with stack("capacity") as s:
        redis_url = s.redis()
        sim_url = s.sim("--ttft", "0.01")
        client = redis.Redis.from_url(redis_url)
        base = {"AGENT_REDIS_URL": redis_url, "AGENT_SIM_URL": sim_url}
        plain, done = _probe(s, client, base, "plain", runs)
        # What a finished task keeps in Redis until its TTL: its record and its event stream.
        sample = done[:: max(1, len(done) // 20)]
        kept = [
            sum(
                client.memory_usage(key, samples=0) or 0
                for key in client.scan_iter(f"plain:*{task_id}*")
            )
            for task_id in sample
        ]
        pg = start_postgres(s.work)
        if pg is None:
            raise SystemExit("Postgres is not installed (Debian: apt-get install postgresql)")
        try:
            pg.execute("CREATE DATABASE capacity")
            env = {**base, "AGENT_HISTORY_URL": pg.url("capacity")}
            with_history, _ = _probe(s, client, env, "history", runs, pg_url=pg.url("capacity"))
            pg_bytes = with_history.pop()
        finally:
            pg.remove()
        client.close()
    return RunCost(plain[0], with_history[0], sum(kept) / len(kept), pg_bytes)


def _probe(
    s: Any,
    client: redis.Redis,
    env: dict[str, str],
    name: str,
    runs: int,
    pg_url: str | None = None,
) -> tuple[list[float], list[str]]:
    """[commands per run (, Postgres bytes per run)] and the task ids, for one stack."""
    env = {**env, "AGENT_WORKER_QUEUE": name, "AGENT_REDIS_KEY_PREFIX": f"{name}:"}
    url = s.api(env)
    s.worker(env)
    outbox = f"{name}:history:outbox"
    with httpx.Client(base_url=url, timeout=30) as http:
        ids = [_submit(http) for _ in range(20)]  # warm-up (and, with history, the migration)
        for task_id in ids:
            http.get(f"/v1/tasks/{task_id}/events")
        _wait_drained(client, outbox)
        pg_before = _history_bytes(pg_url) if pg_url else 0
        # The idle rate: the drainer looks at the outbox every second whatever the load.
        idle_start = client.info("stats")["total_commands_processed"]
        time.sleep(5)
        idle = (client.info("stats")["total_commands_processed"] - idle_start - 1) / 5
        started = time.monotonic()
        before = client.info("stats")["total_commands_processed"]
        done = []
        for _ in range(runs):
            task_id = _submit(http)
            http.get(f"/v1/tasks/{task_id}/events")  # follows the run to its end
            done.append(task_id)
        _wait_drained(client, outbox)
        time.sleep(1)
        after = client.info("stats")["total_commands_processed"]
        elapsed = time.monotonic() - started
    figures = [(after - before - idle * elapsed) / runs]
    if pg_url:
        figures.append((_history_bytes(pg_url) - pg_before) / runs)
    return figures, done


def _wait_drained(client: redis.Redis, outbox: str, timeout: float = 120) -> None:
    """Until the history outbox is empty (at once without history)."""
    deadline = time.monotonic() + timeout
    while client.zcard(outbox) and time.monotonic() < deadline:
        time.sleep(0.2)


def _history_bytes(pg_url: str) -> int:
    with psycopg.connect(pg_url) as conn:
        conn.execute("CHECKPOINT")
        row = conn.execute(
            "SELECT pg_total_relation_size('history_runs') + "
            "pg_total_relation_size('history_run_tools')"
        ).fetchone()
    return int(row[0]) if row else 0


def _submit(http: httpx.Client) -> str:
    resp = http.post("/v1/tasks", json={"message": "what is 12*(3+4)?"})
    resp.raise_for_status()
    return str(resp.json()["task_id"])


# --- 2. sizing ----------------------------------------------------------------------------


def cpu_millicores(text: str) -> float:
    text = str(text)
    return float(text[:-1]) if text.endswith("m") else float(text) * 1000


@dataclass
class Inputs:
    calls_per_run: float
    llm_latency: float
    peak_factor: float
    api_requests_per_run: float
    api_cpu_ms: float
    worker_cpu_ms: float
    redis_ops: float
    cost: RunCost
    ttl_days: float
    archived_ttl_hours: float
    retention_days: float
    values: dict[str, Any]


def size(daily: int, inp: Inputs) -> dict[str, float]:
    api, worker = inp.values["api"], inp.values["worker"]
    peak = daily / 86_400 * inp.peak_factor  # runs/s at peak
    run_seconds = inp.calls_per_run * inp.llm_latency
    in_flight = peak * run_seconds  # Little's law
    # API: the CPU HPA keeps utilisation of the CPU request near its target.
    api_request = cpu_millicores(api["resources"]["requests"]["cpu"]) / 1000
    api_target = api["autoscaling"]["targetCPUUtilizationPercentage"] / 100
    api_cores = peak * inp.api_requests_per_run * inp.api_cpu_ms / 1000
    api_pods = max(
        api["autoscaling"]["minReplicas"], math.ceil(api_cores / (api_request * api_target))
    )
    # Workers: KEDA asks for ceil((waiting + in flight) / listLength); CPU and slots bound a pod.
    list_length = worker["autoscaling"]["keda"]["listLength"]
    slots = worker["concurrency"]
    worker_cores = peak * inp.calls_per_run * inp.worker_cpu_ms / 1000  # one process: <= 1 core
    worker_pods = max(
        worker["autoscaling"]["minReplicas"],
        math.ceil(in_flight / list_length),
        math.ceil(in_flight / slots),
        math.ceil(worker_cores / 0.8),  # a process is GIL-bound: keep it under 80 % of a core
    )
    ops = peak * inp.cost.commands_with_history
    per_day = daily * inp.cost.redis_bytes / 2**30  # GiB of finished records a day brings
    return {
        "peak": peak,
        "in_flight": in_flight,
        "api_pods": api_pods,
        "api_cores": api_cores,
        "worker_pods": worker_pods,
        "worker_cores": worker_cores,
        "redis_ops": ops,
        "redis_headroom": inp.redis_ops / ops if ops else math.inf,
        # Without history finished records stay the task TTL; with it, the archived TTL.
        "redis_gib": per_day * inp.ttl_days,
        "redis_history_gib": per_day * inp.archived_ttl_hours / 24,
        "outage_gib_per_hour": per_day / 24,
        "postgres_gib": daily * inp.retention_days * inp.cost.postgres_bytes / 2**30,
    }


# --- 3. autoscaler replay -----------------------------------------------------------------


@dataclass
class Autoscaler:
    """The HPA that KEDA creates, with the chart's worker.autoscaling values."""

    target: float
    min_replicas: int
    max_replicas: int
    behavior: dict[str, Any]
    replicas: int = 0
    history: list[tuple[float, int]] = field(default_factory=list)
    events: list[tuple[float, int]] = field(default_factory=list)  # (time, +added/-removed)

    def __post_init__(self) -> None:
        self.replicas = self.min_replicas

    def step(self, now: float, metric: float) -> int:
        current = self.replicas
        ratio = metric / (self.target * current) if current else math.inf
        desired = current if abs(ratio - 1) <= HPA_TOLERANCE else math.ceil(metric / self.target)
        desired = min(max(desired, self.min_replicas), self.max_replicas)
        desired = self._stabilize(now, current, desired)
        desired = self._rate_limit(now, current, desired)
        if desired != current:
            self.events.append((now, desired - current))
            self.replicas = desired
        return self.replicas

    def _stabilize(self, now: float, current: int, desired: int) -> int:
        up = self.behavior["scaleUp"].get("stabilizationWindowSeconds", 0)
        down = self.behavior["scaleDown"].get("stabilizationWindowSeconds", 300)
        self.history.append((now, desired))
        up_rec = min([r for t, r in self.history if t > now - up] + [desired])
        down_rec = max([r for t, r in self.history if t > now - down] + [desired])
        self.history = [(t, r) for t, r in self.history if t > now - max(up, down)]
        recommendation = max(current, up_rec)
        return min(recommendation, down_rec)

    def _period_change(self, now: float, seconds: float) -> tuple[int, int]:
        added = sum(d for t, d in self.events if d > 0 and t > now - seconds)
        removed = -sum(d for t, d in self.events if d < 0 and t > now - seconds)
        return added, removed

    def _rate_limit(self, now: float, current: int, desired: int) -> int:
        if desired > current:
            rules = self.behavior["scaleUp"]
            pick, limit = (
                (max, -math.inf) if rules.get("selectPolicy", "Max") == "Max" else (min, math.inf)
            )
            for policy in rules["policies"]:
                added, removed = self._period_change(now, policy["periodSeconds"])
                start = current - added + removed
                if policy["type"] == "Pods":
                    proposed = start + policy["value"]
                else:
                    proposed = math.ceil(start * (1 + policy["value"] / 100))
                limit = pick(limit, proposed)
            return int(min(desired, limit, self.max_replicas))
        if desired < current:
            rules = self.behavior["scaleDown"]
            pick, limit = (
                (max, -math.inf) if rules.get("selectPolicy", "Max") == "Min" else (min, math.inf)
            )
            for policy in rules["policies"]:
                added, removed = self._period_change(now, policy["periodSeconds"])
                start = current + removed - added
                if policy["type"] == "Pods":
                    proposed = start - policy["value"]
                else:
                    proposed = math.ceil(start * (1 - policy["value"] / 100))
                limit = pick(limit, proposed)
            return int(max(desired, limit, self.min_replicas))
        return desired


def load_timeline(path: Path) -> list[dict[str, float]]:
    with path.open() as f:
        rows = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    for before, row in itertools.pairwise(rows):
        dt = max(row["t"] - before["t"], 1e-6)
        row["arrivals"] = max(0.0, (row["submitted"] - before["submitted"]) / dt)
        row["done"] = max(0.0, (row["finished"] - before["finished"]) / dt)
    rows[0]["arrivals"] = rows[0]["done"] = 0.0
    return rows


def autoscaler_for(values: dict[str, Any], target: float | None = None) -> Autoscaler:
    auto = values["worker"]["autoscaling"]
    return Autoscaler(
        target=target or float(auto["keda"]["listLength"]),
        min_replicas=auto["minReplicas"] or 1,
        max_replicas=auto["maxReplicas"],
        behavior=auto["behavior"],
    )


def replay(
    rows: list[dict[str, float]],
    values: dict[str, Any],
    pod_start: float,
    target: float | None,
    scale: float,
) -> dict[str, list[float]]:
    """Open loop over the measured metric; closed loop over the measured arrivals x ``scale``."""
    open_loop = autoscaler_for(values, target)
    closed = autoscaler_for(values, target)
    window = 5
    rates = [sum(r["done"] for r in rows[i : i + window]) / window for i in range(len(rows))]
    per_pod = max(rates) or 1.0  # the one local worker's best sustained rate in this run
    slots = values["worker"]["concurrency"]
    busy = sorted(r["in_progress"] for r in rows if r["in_progress"] > 0)
    run_seconds = max(0.1, busy[len(busy) // 2] / per_pod) if busy else 1.0
    ready: list[float] = [0.0] * closed.replicas
    keys = ("t", "measured_depth", "measured_metric", "open_replicas", "sim_depth",
            "sim_replicas", "sim_ready", "sim_wait")  # fmt: skip
    out: dict[str, list[float]] = {k: [] for k in keys}
    backlog, next_sync = 0.0, 0.0
    for row in rows:
        now = row["t"]
        measured = row["queue_depth"] + row["in_progress"]
        pods = sum(1 for at in ready if at <= now)
        capacity = min(pods * per_pod, pods * slots / run_seconds)
        started = min(backlog + row["arrivals"] * scale, capacity)
        backlog = backlog + row["arrivals"] * scale - started
        in_flight = started * run_seconds
        if now >= next_sync:
            open_loop.step(now, measured)
            wanted = closed.step(now, backlog + in_flight)
            while len(ready) < wanted:
                ready.append(now + pod_start)
            del ready[wanted:]
            next_sync = now + HPA_SYNC_SECONDS
        out["t"].append(now)
        out["measured_depth"].append(row["queue_depth"])
        out["measured_metric"].append(measured)
        out["open_replicas"].append(open_loop.replicas)
        out["sim_depth"].append(backlog)
        out["sim_replicas"].append(closed.replicas)
        out["sim_ready"].append(pods)
        out["sim_wait"].append(backlog / capacity if capacity else math.nan)
    out["per_pod"] = [per_pod]
    out["run_seconds"] = [run_seconds]
    return out


def task_latency(history: Path | None) -> tuple[list[float], list[float], list[float]]:
    """(t, p50 s, p95 s) of queued tasks' whole life (submit to the SSE stream's end), per
    second, from Locust's history CSV."""
    if history is None or not history.exists():
        return [], [], []
    ts, p50, p95 = [], [], []
    start = None
    with history.open() as f:
        for row in csv.DictReader(f):
            if row["Name"] != "task (sse)" or row["50%"] in ("N/A", ""):
                continue
            stamp = float(row["Timestamp"])
            start = start if start is not None else stamp
            ts.append(stamp - start)
            p50.append(float(row["50%"]) / 1000)
            p95.append(float(row["95%"]) / 1000)
    return ts, p50, p95


def plot(
    out: dict[str, list[float]],
    latency: tuple[list[float], list[float], list[float]],
    path: Path,
    title: str,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (depth, reps, lat) = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    fig.suptitle(title, fontsize=10)
    depth.plot(out["t"], out["measured_depth"], label="measured queue depth (1 worker)")
    depth.plot(out["t"], out["measured_metric"], label="measured waiting + in flight", alpha=0.6)
    depth.plot(
        out["t"],
        out["sim_depth"],
        label="replayed queue depth (autoscaled, demand x scale)",
        ls="--",
    )
    depth.set_ylabel("runs")
    depth.legend(fontsize=8)
    reps.step(out["t"], out["open_replicas"], where="post", label="KEDA/HPA over measured metric")
    reps.step(out["t"], out["sim_replicas"], where="post", label="closed loop: asked", ls="--")
    reps.step(out["t"], out["sim_ready"], where="post", label="closed loop: ready", ls=":")
    reps.set_ylabel("worker replicas")
    reps.legend(fontsize=8)
    if latency[0]:
        lat.plot(latency[0], latency[1], label="measured task p50, submit to done (Locust)")
        lat.plot(latency[0], latency[2], label="measured task p95 (Locust)")
    lat.plot(out["t"], out["sim_wait"], label="replayed queue wait (autoscaled)", ls="--")
    lat.set_ylabel("seconds")
    lat.set_xlabel("seconds since the load run started")
    lat.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def print_replay(out: dict[str, list[float]], args: argparse.Namespace) -> None:
    t = out["t"]
    print(
        f"# replay over {args.timeline.name} ({t[-1]:.0f} s); per-pod rate "
        f"{out['per_pod'][0]:.0f} runs/s and run time {out['run_seconds'][0]:.2f} s measured "
        f"in the run; closed loop at {args.demand_scale:g}x its arrivals, pods ready "
        f"{args.pod_start:g} s after they are asked for"
    )
    print(
        f"{'t s':>6s} {'depth':>6s} {'wait+run':>8s} {'KEDA asks':>9s} | {'sim backlog':>11s} "
        f"{'asked':>5s} {'ready':>5s} {'sim wait s':>10s}"
    )
    next_row = 0.0
    for i, now in enumerate(t):
        if now + 1e-9 < next_row:
            continue
        next_row = now + HPA_SYNC_SECONDS
        print(
            f"{now:6.0f} {out['measured_depth'][i]:6.0f} {out['measured_metric'][i]:8.0f} "
            f"{out['open_replicas'][i]:9.0f} | {out['sim_depth'][i]:11.0f} "
            f"{out['sim_replicas'][i]:5.0f} {out['sim_ready'][i]:5.0f} {out['sim_wait'][i]:10.2f}"
        )
    peak = max(range(len(t)), key=lambda i: out["sim_depth"][i])
    drained = next((t[i] for i in range(peak, len(t)) if out["sim_depth"][i] < 1), None)
    more = next((t[i] for i, r in enumerate(out["sim_ready"]) if r > out["sim_ready"][0]), None)
    print(
        f"# closed loop: first extra worker ready at t={more} s; backlog peak "
        f"{out['sim_depth'][peak]:.0f} at t={t[peak]:.0f} s, drained by t={drained} s; "
        f"plot: {args.plot}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--timeline", type=Path, default=ROOT / "loadtest/out/loadtest_service.csv")
    parser.add_argument("--history", type=Path, default=None, help="Locust *_stats_history.csv")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs/capacity-timeline.png")
    parser.add_argument("--calls-per-run", type=float, default=2.0)
    parser.add_argument("--llm-latency", type=float, default=2.0, help="seconds per LLM call")
    parser.add_argument("--peak-factor", type=float, default=4.0, help="peak rate / mean rate")
    parser.add_argument(
        "--api-requests-per-run",
        type=float,
        default=3.0,
        help="submit + reads (an SSE follow or a few polls)",
    )
    parser.add_argument("--api-cpu-ms-per-request", type=float, default=1.5)
    parser.add_argument("--worker-cpu-ms-per-call", type=float, default=8.3)
    parser.add_argument("--redis-ops", type=float, default=90_000, help="redis-benchmark LPUSH/s")
    parser.add_argument("--probe-runs", type=int, default=200)
    parser.add_argument("--ttl-days", type=float, default=7.0, help="AGENT_TASKS_TTL_SECONDS")
    parser.add_argument(
        "--archived-ttl-hours",
        type=float,
        default=1.0,
        help="AGENT_HISTORY_ARCHIVED_RECORD_TTL_SECONDS, in hours",
    )
    parser.add_argument(
        "--retention-days", type=float, default=90.0, help="AGENT_HISTORY_RETENTION_DAYS"
    )
    parser.add_argument("--pod-start", type=float, default=20.0, help="s from asked to consuming")
    parser.add_argument(
        "--demand-scale",
        type=float,
        default=3.0,
        help="closed loop: the run's arrivals times this (one local worker kept up with them)",
    )
    parser.add_argument(
        "--list-length",
        type=float,
        default=None,
        help="replay with another listLength than the chart's",
    )
    args = parser.parse_args()
    values = yaml.safe_load(VALUES.read_text())
    header("capacity plan")
    cost = probe_cost(args.probe_runs)
    overhead = cost.commands_with_history / cost.commands
    print(
        f"# measured: {cost.commands:.1f} Redis commands per run without history, "
        f"{cost.commands_with_history:.1f} with it (x{overhead:.2f} same run); "
        f"{cost.redis_bytes / 1024:.1f} KiB kept in Redis per finished task "
        f"(MEMORY USAGE of its keys), {cost.postgres_bytes / 1024:.1f} KiB in Postgres per "
        f"archived run (tables, indexes, TOAST; x{cost.postgres_bytes / cost.redis_bytes:.2f}); "
        f"two LLM calls + calculator, followed over SSE, {args.probe_runs} runs each"
    )
    inp = Inputs(
        args.calls_per_run,
        args.llm_latency,
        args.peak_factor,
        args.api_requests_per_run,
        args.api_cpu_ms_per_request,
        args.worker_cpu_ms_per_call,
        args.redis_ops,
        cost,
        args.ttl_days,
        args.archived_ttl_hours,
        args.retention_days,
        values,
    )
    print(
        f"# inputs: {args.calls_per_run:g} LLM calls/run x {args.llm_latency:g} s, peak = "
        f"{args.peak_factor:g}x mean, API {args.api_requests_per_run:g} req/run at "
        f"{args.api_cpu_ms_per_request:g} ms CPU, worker {args.worker_cpu_ms_per_call:g} ms CPU "
        f"per call, Redis {args.redis_ops:,.0f} ops/s, task TTL {args.ttl_days:g} days, "
        f"archived TTL {args.archived_ttl_hours:g} h, retention {args.retention_days:g} days"
    )
    print(
        f"{'runs/day':>10s} {'peak/s':>7s} {'in flight':>9s} {'api pods':>8s} {'api cores':>9s} "
        f"{'workers':>7s} {'wkr cores':>9s} {'redis ops/s':>11s} {'headroom':>9s} "
        f"{'redis GiB':>9s} {'+history':>9s} {'outage/h':>9s} {'pg GiB':>9s}"
    )
    for daily in DAILY:
        r = size(daily, inp)
        print(
            f"{daily:>10,d} {r['peak']:7.2f} {r['in_flight']:9.1f} {r['api_pods']:8d} "
            f"{r['api_cores']:9.3f} {r['worker_pods']:7d} {r['worker_cores']:9.3f} "
            f"{r['redis_ops']:11.1f} {r['redis_headroom']:8.0f}x {r['redis_gib']:9.2f} "
            f"{r['redis_history_gib']:9.3f} {r['outage_gib_per_hour']:9.3f} "
            f"{r['postgres_gib']:9.1f}"
        )
    if args.timeline.exists():
        rows = load_timeline(args.timeline)
        out = replay(rows, values, args.pod_start, args.list_length, args.demand_scale)
        history = args.history or args.timeline.with_name(
            args.timeline.name.replace("_service.csv", "_stats_history.csv")
        )
        latency = task_latency(history)
        target = args.list_length or values["worker"]["autoscaling"]["keda"]["listLength"]
        title = (
            f"{args.timeline.name}: KEDA listLength {target:g}, HPA every 15 s, pod start "
            f"{args.pod_start:g} s,\nper-pod rate {out['per_pod'][0]:.0f} runs/s (measured), "
            f"closed loop at {args.demand_scale:g}x the run's arrivals"
        )
        plot(out, latency, args.plot, title)
        print_replay(out, args)
    else:
        print(
            f"# no load-run timeline at {args.timeline}: run `make loadtest` first for the replay"
        )
    footer()


if __name__ == "__main__":
    main()
