"""Worker concurrency benchmark: runs in flight in ONE worker process, and throughput vs ideal.

Not a test: it prints figures. For each N it starts one worker process with N slots, warms it
(LiteLLM's lazy imports, the HTTP pool) on a warm-up queue, pre-loads ``rounds * N`` one-LLM-call
runs on a second queue and only then tells the worker to consume it (Celery's ``add_consumer``
control command), so the figure is the worker's and not the enqueuer's (they share the cores).
It reports runs/s from the first start to the last finish against the ideal N / latency, p50/p95
run latency, the most runs seen in flight at once, the worker's RSS and CPU per run, and that CPU
against a bare ``litellm.acompletion`` call on the same simulator measured in the same run. Each
N is repeated ``--repeat`` times; the median is reported.

``--journal-cost`` measures what the step journal costs in the same run: each repetition runs
two workers at once on the same workload, one with the journal (the default) and one without it
(``AGENT_WORKER_JOURNAL=false``, a setting for this measurement only), so that both see the same
machine, and reports each one's CPU per run and the per-pair ratio; then it measures the
journal's own work alone (appending real entries through ``JournalStore``, CPU per entry here and
in redis-server), which noise on a shared machine does not drown. ``--message`` sets what each
run asks (``{i}`` is its number): the default is one LLM call (one journal entry); ``'what is
{i}*7?'`` makes three steps (an LLM call, a calculator call, an LLM call: three entries).

    uv run python bench/worker_concurrency.py                 # N = 1 10 100 200
    uv run python bench/worker_concurrency.py --n 100 500 --repeat 3
    uv run python bench/worker_concurrency.py --n 100 --journal-cost --message 'what is {i}*7?'

``--profile DIR``: after the measured repetitions of each N, one more run under py-spy (from
``bench/peer_runtimes.py``'s own environment), its raw stacks written to DIR, with the share of
samples per package and per thread (the event loop's, Celery's consumer, Celery's pool).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported

from bench.common import cpu_seconds, rss_mb
from bench.pyspy import add_profile_arguments
from tests.procs import Proc, base_env, cli, free_port, redis_args, wait_http


async def enqueue(
    redis_url: str, queue: str, prefix: str, count: int, message: str = "hello number {i}"
) -> list[str]:
    from agent_service.domain.runs import RunRequest
    from agent_service.domain.tasks import TaskRecord, TaskStatus
    from agent_service.queue.celery_app import create_celery_app
    from agent_service.queue.producer import TaskQueue
    from agent_service.settings import Settings
    from agent_service.store.client import create_redis
    from agent_service.store.keys import Keys
    from agent_service.store.tasks import TaskStore

    settings = Settings.model_validate(
        {"redis": {"url": redis_url, "key_prefix": prefix}, "worker": {"queue": queue}}
    )
    client = create_redis(settings.redis)
    store = TaskStore(client, Keys(prefix), 3600, 100)
    producer = TaskQueue(client, create_celery_app(settings, 120), store)
    ids = []
    for i in range(count):
        record = TaskRecord(
            task_id=uuid.uuid4().hex,
            status=TaskStatus.QUEUED,
            queue=queue,
            request=RunRequest(message=message.format(i=i)),
            created_at=time.time(),
        )
        await producer.submit(record)
        ids.append(record.task_id)
    await client.aclose()
    return ids


def consume(redis_url: str, queue: str, worker_pid: int | None = None) -> None:
    """Make the running worker (the one of ``worker_pid``, else every worker) consume ``queue``
    (Celery remote control, through Redis)."""
    from celery import Celery

    app = Celery(broker=redis_url, set_as_current=False)
    destination = None
    if worker_pid is not None:  # worker.main names each worker agent-worker-<pid>@<host>
        destination = [f"agent-worker-{worker_pid}@{socket.gethostname()}"]
    replies = app.control.add_consumer(queue, reply=True, timeout=10, destination=destination)
    if not replies:
        raise RuntimeError("the worker did not answer add_consumer")


def wait_done(
    redis_url: str, prefix: str, ids: list[str], timeout: float
) -> list[dict[str, float]]:
    import redis

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    pending = set(ids)
    records = {}
    while pending and time.monotonic() < deadline:
        pipe = client.pipeline(transaction=False)
        batch = list(pending)
        for task_id in batch:
            pipe.hmget(f"{prefix}task:{task_id}", "status", "started_at", "finished_at")
        for task_id, (status, started, finished) in zip(batch, pipe.execute(), strict=True):
            if status in (b"succeeded", b"failed"):
                if status != b"succeeded":
                    raise RuntimeError(f"task {task_id} failed")
                records[task_id] = {"started": float(started), "finished": float(finished)}
                pending.discard(task_id)
        time.sleep(0.05)
    if pending:
        raise TimeoutError(f"{len(pending)} tasks not done")
    return list(records.values())


BASELINE_MESSAGES = [
    {"role": "system", "content": "You are helpful."},
    {"role": "user", "content": "hello"},
]


def _baseline_request() -> dict[str, Any]:
    """What both baselines send: the worker's tools, one short conversation."""
    from agent_service.agent.tools.calculator import CALCULATOR_SPEC
    from agent_service.agent.tools.clock import CURRENT_TIME_SPEC

    tools = [CALCULATOR_SPEC.to_openai(), CURRENT_TIME_SPEC.to_openai()]
    return {"tools": tools, "messages": BASELINE_MESSAGES, "max_tokens": 1024, "timeout": 30}


async def _cpu_per_call(call: Callable[[], Awaitable[object]], calls: int) -> float:
    """CPU ms per ``call()``, ``calls`` at once after a warm-up, background work included."""
    import resource

    await asyncio.gather(*[call() for _ in range(20)])  # warm the lazy imports and the pool
    usage = resource.getrusage(resource.RUSAGE_SELF)
    before = usage.ru_utime + usage.ru_stime
    await asyncio.gather(*[call() for _ in range(calls)])
    # LiteLLM finishes each call's bookkeeping (cost, logging payload) in background tasks:
    # let them run so the baseline counts a call's whole CPU, as the worker's figure does.
    await asyncio.sleep(1.0)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime - before) / calls * 1000


async def openai_baseline(sim_url: str, calls: int) -> float:
    """CPU ms per bare ``openai`` SDK call (``AsyncOpenAI``, same simulator, same tools)."""
    import openai

    client = openai.AsyncOpenAI(base_url=sim_url, api_key="x", max_retries=0)
    request = _baseline_request()

    async def call() -> object:
        return await client.chat.completions.create(model="sim-agent", **request)

    try:
        return await _cpu_per_call(call, calls)
    finally:
        await client.close()


async def litellm_baseline(sim_url: str, calls: int) -> float:
    """CPU ms per bare ``litellm.acompletion`` (same simulator, same tools, N at once)."""
    import litellm

    request = _baseline_request()

    async def call() -> object:
        return await litellm.acompletion(
            model="openai/sim-agent",
            api_base=sim_url,
            api_key="x",
            num_retries=0,
            max_retries=0,
            _skip_mcp_handler=True,
            **request,
        )

    return await _cpu_per_call(call, calls)


def max_in_flight(records: list[dict[str, float]]) -> int:
    edges = sorted([(r["started"], 1) for r in records] + [(r["finished"], -1) for r in records])
    current = peak = 0
    for _, delta in edges:
        current += delta
        peak = max(peak, current)
    return peak


@dataclass
class Bench:
    """What every measurement shares: the workload and the servers."""

    n: int
    rounds: int
    latency: float
    redis_url: str
    sim_url: str
    log_dir: Path
    message: str = "hello number {i}"


@dataclass
class Loaded:
    """A warm worker with its measured runs pre-loaded on a queue it does not consume yet."""

    worker: Proc
    prefix: str
    measured: str
    ids: list[str]


def load(bench: Bench, journal: bool = True, transport: str = "auto") -> Loaded:
    """Start a worker (``journal`` on or off, LLM ``transport``), warm it, pre-load
    ``rounds * n`` runs."""
    queue = f"bench-{uuid.uuid4().hex[:6]}"
    prefix = f"{queue}:"
    ready = bench.log_dir / f"ready-{queue}"
    env = base_env(
        {
            "AGENT_WORKER_READY_FILE": str(ready),
            "AGENT_METRICS_PORT": "0",
            "AGENT_REDIS_URL": bench.redis_url,
            "AGENT_SIM_URL": bench.sim_url,
            "AGENT_WORKER_QUEUE": queue,
            "AGENT_REDIS_KEY_PREFIX": prefix,
            "AGENT_WORKER_CONCURRENCY": str(bench.n),
            "AGENT_LOG_LEVEL": "WARNING",
            "AGENT_WORKER_JOURNAL": "true" if journal else "false",
            "AGENT_LLM_TRANSPORT": transport,
        }
    )
    worker = Proc(f"worker-{bench.n}", cli("worker"), env, bench.log_dir)
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    warm = asyncio.run(enqueue(bench.redis_url, queue, prefix, min(bench.n, 10)))
    wait_done(bench.redis_url, prefix, warm, 60)  # the loop, the pools, the lazy imports
    measured = f"{queue}-measured"
    count = bench.rounds * bench.n
    ids = asyncio.run(enqueue(bench.redis_url, measured, prefix, count, bench.message))
    return Loaded(worker, prefix, measured, ids)


def figures(
    bench: Bench, loaded: Loaded, records: list[dict[str, float]], cpu: float, redis_cpu: float
) -> dict[str, float]:
    span = max(r["finished"] for r in records) - min(r["started"] for r in records)
    runs = [r["finished"] - r["started"] for r in records]
    qs = statistics.quantiles(runs, n=20) if len(runs) > 1 else [runs[0]] * 19
    ideal = bench.n / bench.latency
    return {
        "runs_per_s": len(records) / span,
        "ideal": ideal,
        "ratio": len(records) / span / ideal,
        "p50": statistics.median(runs),
        "p95": qs[18],
        "in_flight": max_in_flight(records),
        "rss_mb": rss_mb(loaded.worker.pid),
        "cpu_ms_per_run": cpu / len(records) * 1000,
        "redis_ms_per_run": redis_cpu / len(records) * 1000,
    }


def measure(
    bench: Bench, redis_pid: int | None = None, transport: str = "auto"
) -> dict[str, float]:
    """One worker: its runs from the first start to the last finish, CPU per run."""
    loaded = load(bench, transport=transport)
    try:
        cpu_before = cpu_seconds(loaded.worker.pid)
        redis_before = cpu_seconds(redis_pid) if redis_pid is not None else 0.0
        consume(bench.redis_url, loaded.measured)
        timeout = 60 + bench.rounds * bench.latency * 10
        records = wait_done(bench.redis_url, loaded.prefix, loaded.ids, timeout)
        cpu = cpu_seconds(loaded.worker.pid) - cpu_before
        redis_cpu = cpu_seconds(redis_pid) - redis_before if redis_pid is not None else 0.0
        return figures(bench, loaded, records, cpu, redis_cpu)
    finally:
        loaded.worker.stop()


def measure_pair(bench: Bench) -> dict[bool, dict[str, float]]:
    """Two workers at once, one with the journal and one without, on the same runs: both see
    the same machine (the same other load), so their CPU per run compares."""
    pair = {journal: load(bench, journal) for journal in (True, False)}
    try:
        before = {journal: cpu_seconds(p.worker.pid) for journal, p in pair.items()}
        for loaded in pair.values():
            consume(bench.redis_url, loaded.measured, loaded.worker.pid)
        timeout = 60 + bench.rounds * bench.latency * 20
        records = {
            journal: wait_done(bench.redis_url, p.prefix, p.ids, timeout)
            for journal, p in pair.items()
        }
        return {
            journal: figures(
                bench, p, records[journal], cpu_seconds(p.worker.pid) - before[journal], 0.0
            )
            for journal, p in pair.items()
        }
    finally:
        for loaded in pair.values():
            loaded.worker.stop()


WORKER_THREADS = {
    "Celery consumer thread": ["asynloop"],
    "Celery pool threads": ["_WorkItem.run", "apply_target"],
}
"""What identifies a worker thread's samples; the rest is the event loop thread, whose resumed
coroutines py-spy shows without their thread's bottom frames."""


def profile_once(bench: Bench, directory: Path, flags: list[str]) -> None:
    """One more, unmeasured run of ``bench`` under py-spy; prints its split."""
    from bench.pyspy import print_split, recording, thread_split

    loaded = load(bench)
    try:
        with recording({"worker": loaded.worker}, directory, f"worker-n{bench.n}", flags) as out:
            consume(bench.redis_url, loaded.measured)
            wait_done(bench.redis_url, loaded.prefix, loaded.ids, 60 + bench.rounds * 10)
    finally:
        loaded.worker.stop()
    print(f"# py-spy, N = {bench.n}, one more run:")
    print_split("worker", out["worker"])
    shares = thread_split(out["worker"], WORKER_THREADS)
    shares["event loop thread"] = shares.pop("other")
    print("#   by thread: " + "; ".join(f"{k} {v * 100:.1f} %" for k, v in shares.items()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=[1, 10, 100, 200])
    parser.add_argument(
        "--rounds", type=int, default=20, help="tasks per slot (N * rounds runs, pre-loaded)"
    )
    parser.add_argument("--latency", type=float, default=1.0, help="simulated LLM latency (s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per N; the median is shown")
    parser.add_argument(
        "--message", default="hello number {i}", help="what each run asks ({i}: its number)"
    )
    parser.add_argument(
        "--journal-cost",
        action="store_true",
        help="per N, with and without the step journal in the same run (CPU per run, ratio)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=1,
        help="journal entries a run of --message makes (1: one LLM call; 3 for 'what is {i}*7?')",
    )
    add_profile_arguments(parser, "after each N, one more run under py-spy, its split printed")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    redis_port = free_port()
    redis = Proc(
        "redis",
        redis_args(shutil.which("redis-server") or "redis-server", redis_port, work),
        base_env(),
        work,
    )
    sim_port = free_port()
    sim = Proc(
        "sim",
        cli("sim-llm", "--port", str(sim_port), "--ttft", str(args.latency)),
        base_env(),
        work,
    )
    try:
        wait_http(f"http://127.0.0.1:{sim_port}/v1/models", sim)
        time.sleep(0.3)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        sim_url = f"http://127.0.0.1:{sim_port}/v1"
        print(
            f"# worker concurrency: {platform.node()} {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, latency {args.latency} s, {args.rounds} runs per slot, "
            f"median of {args.repeat}"
        )
        if args.journal_cost:
            for n in args.n:
                bench = Bench(n, args.rounds, args.latency, redis_url, sim_url, work, args.message)
                journal_cost(bench, args, redis.pid)
            return
        print(
            f"{'N':>5} {'runs/s':>8} {'ideal':>7} {'ratio':>6} {'p50 s':>7} {'p95 s':>7} "
            f"{'in flight':>9} {'RSS MB':>7} {'CPU ms/run':>10}"
        )
        baseline = statistics.median(
            asyncio.run(litellm_baseline(sim_url, 200)) for _ in range(args.repeat)
        )
        print(
            f"# baseline: bare litellm.acompletion {baseline:.2f} ms CPU per call "
            f"(one core caps a process at {1000 / baseline:.0f} calls/s)"
        )
        for n in args.n:
            bench = Bench(n, args.rounds, args.latency, redis_url, sim_url, work, args.message)
            results = [measure(bench) for _ in range(args.repeat)]
            med = {k: statistics.median(r[k] for r in results) for k in results[0]}
            spread = max(r["ratio"] for r in results) - min(r["ratio"] for r in results)
            print(
                f"{n:>5} {med['runs_per_s']:>8.1f} {med['ideal']:>7.1f} {med['ratio']:>6.2f} "
                f"{med['p50']:>7.3f} {med['p95']:>7.3f} {med['in_flight']:>9.0f} "
                f"{med['rss_mb']:>7.0f} {med['cpu_ms_per_run']:>10.2f} "
                f"{med['cpu_ms_per_run'] / baseline:>9.1f}x   (ratio spread {spread:.2f})",
                flush=True,
            )
            if args.profile:
                profile_once(bench, args.profile, args.profile_flags.split())
    finally:
        sim.stop()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


async def append_cost(
    redis_url: str, redis_pid: int, runs: int, concurrency: int
) -> dict[str, float]:
    """The journal's own work, without a worker around it: ``runs`` three-step runs' entries (an
    LLM step with a tool call, the tool result, the answer) appended through the real
    ``JournalStore`` by ``concurrency`` runs at once, as the worker's loop does. CPU ms per
    entry in this process (serialising, the script call) and in redis-server; since issue 17
    an entry's write also publishes its step event and reads the cancel flag, which a run
    without the journal pays for separately."""
    import resource

    from agent_service.agent.journal import llm_entry, tool_entry
    from agent_service.domain.messages import LLMCompletion, TokenUsage, ToolCall
    from agent_service.domain.runs import RunRequest, Step, Usage
    from agent_service.domain.tasks import TaskRecord, TaskStatus
    from agent_service.settings import Settings
    from agent_service.store.client import create_redis
    from agent_service.store.journal import JournalStore
    from agent_service.store.keys import Keys
    from agent_service.store.limits import CancelFlag
    from agent_service.store.tasks import TaskStore

    settings = Settings.model_validate({"redis": {"url": redis_url}})
    client = create_redis(settings.redis)
    keys = Keys(f"journal-{uuid.uuid4().hex[:6]}:")
    tasks = TaskStore(client, keys, 3600, 100)
    journals = JournalStore(client, keys, 3600, 100)
    usage = TokenUsage(input_tokens=120, output_tokens=20, cost_usd=0.0001)
    asks = LLMCompletion(
        content=None,
        tool_calls=[ToolCall(id="call_1", name="calculator", arguments='{"expression": "6*7"}')],
        usage=usage, model="sim", requested_model="sim", provider="openai", duration_ms=1000.0,
    )  # fmt: skip
    answers = asks.model_copy(update={"content": "The answer is 42.", "tool_calls": []})

    def step(index: int, kind: str) -> Step:
        return Step(
            index=index, kind=kind, name="sim" if kind == "llm" else "calculator",
            started_at=time.time(), duration_ms=1000.0, output="42",
            usage=Usage.from_tokens(usage) if kind == "llm" else None,
        )  # fmt: skip

    def new_record() -> TaskRecord:
        return TaskRecord(
            task_id=uuid.uuid4().hex,
            status=TaskStatus.QUEUED,
            queue="q",
            request=RunRequest(message="what is 6*7?"),
            created_at=time.time(),
        )

    async def started(record: TaskRecord) -> int:
        """Create the record and count its first attempt, as submission and a worker do."""
        async with client.pipeline(transaction=True) as pipe:
            tasks.add_create(pipe, record)
            await pipe.execute()
        attempt = await tasks.start_attempt(record.task_id)
        assert attempt is not None
        return attempt.attempts

    async def one_run(journaled: bool) -> None:
        record = new_record()
        attempt = await started(record)
        if not journaled:
            return
        cancel = CancelFlag(client, keys.cancel(record.task_id))
        journal = await journals.open(record.task_id, attempt, 0, cancel)
        await journal.append(llm_entry(step(0, "llm"), asks, None))
        await journal.append(tool_entry(step(1, "tool"), "call_1", "42", True))
        await journal.append(llm_entry(step(2, "llm"), answers, None))

    async def batch(count: int, journaled: bool) -> None:
        for start in range(0, count, concurrency):
            size = min(concurrency, count - start)
            await asyncio.gather(*(one_run(journaled) for _ in range(size)))

    def cpu() -> tuple[float, float]:
        usage_now = resource.getrusage(resource.RUSAGE_SELF)
        return usage_now.ru_utime + usage_now.ru_stime, cpu_seconds(redis_pid)

    await batch(200, journaled=True)  # warm the scripts and the pool
    results: dict[str, float] = {}
    for name, journaled in (("without", False), ("with", True)):
        before = cpu()
        await batch(runs, journaled)
        after = cpu()
        results[f"{name}_client_ms"] = (after[0] - before[0]) * 1000
        results[f"{name}_redis_ms"] = (after[1] - before[1]) * 1000
    await client.aclose()
    entries = runs * 3
    return {
        "client_ms_per_entry": (results["with_client_ms"] - results["without_client_ms"]) / entries,
        "redis_ms_per_entry": (results["with_redis_ms"] - results["without_redis_ms"]) / entries,
    }


def journal_cost(bench: Bench, args: argparse.Namespace, redis_pid: int) -> None:
    """Worker CPU per run with and without the step journal: two workers at once, each pair
    repeated; and the journal's own cost per entry, measured alone."""
    pairs = [measure_pair(bench) for _ in range(args.repeat)]
    med = {
        journal: {k: statistics.median(p[journal][k] for p in pairs) for k in pairs[0][journal]}
        for journal in (True, False)
    }
    ratios = [p[True]["cpu_ms_per_run"] / p[False]["cpu_ms_per_run"] for p in pairs]
    n, message = bench.n, bench.message
    print(f"# journal cost, N={n} each, message {message!r}, {args.repeat} pairs run at once")
    for journal in (False, True):
        m = med[journal]
        each = ", ".join(f"{p[journal]['cpu_ms_per_run']:.2f}" for p in pairs)
        print(
            f"  {'with' if journal else 'without':>7} journal: worker {m['cpu_ms_per_run']:.2f} ms "
            f"CPU/run ({each}), {m['runs_per_s']:.1f} runs/s, p50 {m['p50']:.3f} s",
            flush=True,
        )
    ratio = statistics.median(ratios)
    spread = ", ".join(f"{r:.3f}" for r in ratios)
    print(
        f"  with/without, per pair: median {ratio:.3f}x worker CPU per run ({spread})", flush=True
    )
    # The journal's own work, measured alone in this process (less noise than two workers).
    appends = [
        asyncio.run(append_cost(bench.redis_url, redis_pid, 2000, n)) for _ in range(args.repeat)
    ]
    client = statistics.median(a["client_ms_per_entry"] for a in appends)
    server = statistics.median(a["redis_ms_per_entry"] for a in appends)
    per_run = client * args.steps
    print(
        f"  the journal alone: {client:.3f} ms CPU per entry in the appending process, "
        f"{server:.3f} ms in redis-server (median of {args.repeat}); {args.steps} entries a run: "
        f"{per_run:.2f} ms = {per_run / med[False]['cpu_ms_per_run'] * 100:.1f} % of the "
        f"worker's CPU per run without the journal",
        flush=True,
    )


if __name__ == "__main__":
    main()
