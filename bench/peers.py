"""Peer benchmark: agent-service against LiteLLM Proxy (a gateway call) and LangGraph (queued runs).

Not a test: it prints figures and same-run ratios and asserts nothing. It installs the peers
into their own virtual environments on the first run (``bench/peer_runtimes.py``, under
``.cache/bench-peers``), starts everything on loopback against one LLM simulator, and
interleaves the sides round by round (ours, theirs, ours, theirs, ...) so both see the same
machine load; medians are shown.

(A) Gateway. One chit-chat call ("hello there": the simulator answers in text, no tool) through
    our ``POST /v1/chat/completions`` (one API process; auth, metrics, traces on) and through
    LiteLLM Proxy's (one process, no database, master key), and straight to the simulator as
    the baseline, each with ``wrk`` at the same concurrency for the same time. Per side:
    requests/s, p50/p95 latency and what the gateway adds over the direct call, CPU per request
    (user + system from /proc, every process of the side; Redis shown apart).
(B) Queued runs. ``--runs`` runs of the same agent (system prompt, calculator and clock tools;
    "what is 12*(3+4)?" makes 2 LLM calls and 1 tool call), ``--in-flight`` at once, the
    simulator spending ``--llm-seconds`` per run in total. Ours: ``POST /v1/tasks`` to one API
    process, one worker process with ``--in-flight`` slots, Redis. Theirs: ``langgraph dev``
    (in-memory runtime, ``--n-jobs-per-worker`` = ``--in-flight``), a background run per thread
    (``POST /threads/{id}/runs``). The client submits every run at once and polls each one
    every ``--poll-interval`` seconds from its submission until it ends, at most
    ``--client-concurrency`` requests in flight, the same way on both sides; latencies are
    the servers' own created-to-finished times. Per side: runs/s, p50/p95 latency, CPU per run
    and RSS of every process of the side (Redis apart: ours keeps its state there, LangGraph's
    in-memory runtime in its own process). The polls are real work for both servers, so they
    count; after each round every run is polled once more to price one poll, and CPU per run
    "without polls" subtracts polls per run x that price (the runtime's own cost).

`langgraph dev` is LangGraph's development runtime, not its licensed production server; see
``HONESTY`` below, which the output repeats.

    make bench-peers                                   # defaults: both comparisons, 3 rounds
    uv run python bench/peers.py --phase runs --runs 100 --rounds 1    # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import (
    Stack,
    footer,
    header,
    load,
    median,
    pct,
    session_cpu_seconds,
    session_rss_mb,
    stack,
    wrk_post,
)
from bench.peer_runtimes import (
    LANGGRAPH,
    LITELLM_PROXY,
    PY_SPY,
    ToolEnv,
    project_versions,
    start_langgraph_dev,
    start_litellm_proxy,
)
from bench.pyspy import add_profile_arguments, print_split, recording
from tests.procs import Proc

HONESTY = (
    "`langgraph dev` is LangGraph's development runtime (in-memory, one process), not its "
    "licensed production server (LangSmith Deployment / LangGraph Platform: API servers and "
    "queue workers on Postgres and Redis), which this benchmark does not run. Read (B) as a "
    "comparison with LangGraph's open runtime on this agent, not with its production server."
)
CHAT_MESSAGE = "hello there"  # simulator rule 5: a text answer, no tool call
AGENT_MESSAGE = "what is 12*(3+4)?"  # the calculator once, then the answer from its result


def cpu_of(procs: Mapping[str, Proc]) -> dict[str, float]:
    return {label: session_cpu_seconds(proc.pid) for label, proc in procs.items()}


def settled_cpu(procs: Mapping[str, Proc], limit: float = 15.0) -> dict[str, float]:
    """CPU seconds per process once the processes have gone quiet.

    Some work of a request runs after its answer (LiteLLM Proxy's logging and spend callbacks
    kept its process busy for seconds after a burst): it is the request's cost too, so CPU is
    read when half a second passes with at most 2 % of a core spent, or after ``limit`` s.
    """
    deadline = time.monotonic() + limit
    last = cpu_of(procs)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_of(procs)
        if sum(now.values()) - sum(last.values()) <= 0.01:
            return now
        last = now
    return last


def rss_of(procs: Mapping[str, Proc]) -> dict[str, float]:
    return {label: session_rss_mb(proc.pid) for label, proc in procs.items()}


def profiled(
    args: argparse.Namespace, tag: str, procs: Mapping[str, Proc], work: Callable[[], object]
) -> None:
    """With ``--profile``: one more, unmeasured pass of ``work`` under py-spy, and its split."""
    with recording(procs, args.profile, tag, args.profile_flags.split()) as outputs:
        work()
    for label, raw in outputs.items():
        print_split(f"{tag} {label}", raw)


def print_idle(groups: Mapping[str, Mapping[str, Proc]], seconds: float = 3.0) -> None:
    """CPU each side burns with no request at all (timers, reloaders), in ms per second."""
    before = {name: settled_cpu(procs) for name, procs in groups.items()}
    time.sleep(seconds)
    parts = []
    for name, procs in groups.items():
        after = cpu_of(procs)
        spent = sum(after.values()) - sum(before[name].values())
        parts.append(f"{name} {spent / seconds * 1000:.1f}")
    print(f"# idle CPU, ms per s (counted in the figures below): {'; '.join(parts)}", flush=True)


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs > 0 else "n/a"


def table_row(name: str, values: list[str], widths: tuple[int, ...]) -> None:
    cells = " ".join(f"{value:>{width}s}" for value, width in zip(values, widths, strict=True))
    print(f"{name:20s} {cells}")


@dataclass(frozen=True)
class OurStack:
    """What both comparisons start first: Redis, the simulator and one API process."""

    redis: Proc
    redis_url: str
    sim_url: str
    api: Proc
    api_url: str
    api_key: str


def start_ours(s: Stack, ttft: float) -> OurStack:
    """Redis, the simulator (answering after ``ttft`` s) and one API process with
    authentication on (its default) and a key for the benchmark."""
    redis_url, redis = s.redis_process()
    sim_url = s.sim("--ttft", str(ttft))
    api_key = f"ak_{secrets.token_urlsafe(32)}"
    keys = s.work / "keys.yaml"
    keys.write_text(json.dumps({"keys": [{"tenant": "bench", "key": api_key, "name": "bench"}]}))
    api_url, api = s.api_process(
        {
            "AGENT_REDIS_URL": redis_url,
            "AGENT_SIM_URL": sim_url,
            "AGENT_AUTH_ENABLED": "true",
            "AGENT_AUTH_KEYS_FILE": str(keys),
        }
    )
    return OurStack(redis, redis_url, sim_url, api, api_url, api_key)


# --- (A) gateway ---------------------------------------------------------------------------------


@dataclass
class Gateway:
    """One side of (A): where wrk sends the call, and whose CPU it costs."""

    name: str
    url: str
    model: str
    headers: dict[str, str]
    procs: dict[str, Proc]
    redis: Proc | None = None
    rounds: list[dict[str, float]] = field(default_factory=list)

    def body(self) -> str:
        messages = [{"role": "user", "content": CHAT_MESSAGE}]
        return json.dumps({"model": self.model, "messages": messages})

    def load(self, work: Path, seconds: int, connections: int) -> dict[str, float]:
        redis = {"Redis": self.redis} if self.redis else {}
        before, redis_before = cpu_of(self.procs), cpu_of(redis)
        result = wrk_post(
            self.url,
            self.body(),
            {"Content-Type": "application/json", **self.headers},
            seconds=seconds,
            connections=connections,
            script_dir=work,
        )
        after, redis_after = settled_cpu(self.procs), cpu_of(redis)
        served = max(result.requests, 1)
        cpu = sum(after.values()) - sum(before.values())
        return {
            "rate": result.rate,
            "p50": result.p50_ms,
            "p95": result.p95_ms,
            "cpu_ms": cpu / served * 1000,
            "redis_ms": (sum(redis_after.values()) - sum(redis_before.values())) / served * 1000,
            "errors": result.socket_errors + result.non_2xx,
        }


def gateway_phase(args: argparse.Namespace, litellm: ToolEnv) -> None:
    print(
        f"\n## (A) gateway: one chit-chat call ({CHAT_MESSAGE!r}, no tool) through "
        f"/v1/chat/completions; simulator answers in {args.gateway_ttft * 1000:.0f} ms; "
        f"wrk {args.gateway_seconds:g} s per side and round, {args.rounds} interleaved rounds",
        flush=True,
    )
    with stack("peers-gateway") as s:
        ours = start_ours(s, args.gateway_ttft)
        master_key = f"sk-{secrets.token_hex(24)}"
        proxy_url, proxy = start_litellm_proxy(s, litellm, ours.sim_url, master_key)
        sides = [
            Gateway("simulator, direct", f"{ours.sim_url}/chat/completions", "sim-agent", {}, {}),
            Gateway(
                "agent-service",
                f"{ours.api_url}/v1/chat/completions",
                "sim",
                {"Authorization": f"Bearer {ours.api_key}"},
                {"API": ours.api},
                ours.redis,
            ),
            Gateway(
                "LiteLLM Proxy",
                f"{proxy_url}/v1/chat/completions",
                "sim",
                {"Authorization": f"Bearer {master_key}"},
                {"proxy": proxy},
            ),
        ]
        for side in sides:  # warm-up: imports, pools, caches; also proves every side answers
            warm = side.load(s.work, 3, max(args.gateway_connections))
            if warm["errors"]:
                sys.exit(f"{side.name} answered {warm['errors']:.0f} errors during the warm-up")
        print_idle({side.name: side.procs for side in sides[1:]})
        for connections in args.gateway_connections:
            for side in sides:
                side.rounds = []
            for number in range(1, args.rounds + 1):
                for side in sides:
                    side.rounds.append(side.load(s.work, args.gateway_seconds, connections))
                print(f"#   c={connections} round {number} done, {load()}", flush=True)
            print_gateway(sides, connections)
            if args.profile:
                print(f"# py-spy, c={connections}, one more wrk pass per side:")
                for side in sides[1:]:
                    profiled(
                        args,
                        f"gateway-c{connections}-{side.name.split()[0]}",
                        side.procs,
                        partial(side.load, s.work, args.gateway_seconds, connections),
                    )


def print_gateway(sides: list[Gateway], connections: int) -> None:
    direct, ours, theirs = sides

    def med(side: Gateway, key: str) -> float:
        return median([r[key] for r in side.rounds])

    def added(side: Gateway, key: str) -> float:  # per round against that round's direct call
        return median([r[key] - d[key] for r, d in zip(side.rounds, direct.rounds, strict=True)])

    widths = (8, 8, 8, 10, 10, 11, 13, 7)
    print(f"\nc = {connections} connections")
    titles = ["req/s", "p50 ms", "p95 ms", "added p50", "added p95", "CPU ms/req"]
    table_row("", [*titles, "Redis ms/req", "errors"], widths)
    for side in sides:
        values = [f"{med(side, 'rate'):.1f}", f"{med(side, 'p50'):.2f}", f"{med(side, 'p95'):.2f}"]
        if side is not direct:
            values += [f"{added(side, 'p50'):.2f}", f"{added(side, 'p95'):.2f}"]
            values += [f"{med(side, 'cpu_ms'):.2f}", f"{med(side, 'redis_ms'):.3f}"]
        else:
            values += ["", "", "", ""]
        if side.redis is None:
            values[6] = ""
        table_row(side.name, [*values, f"{sum(r['errors'] for r in side.rounds):.0f}"], widths)
    values = [ratio(med(ours, key), med(theirs, key)) for key in ("rate", "p50", "p95")]
    values += [ratio(added(ours, key), added(theirs, key)) for key in ("p50", "p95")]
    values += [ratio(med(ours, "cpu_ms"), med(theirs, "cpu_ms"))]
    table_row("ours / LiteLLM", values, widths[:6])
    spread = [f"{r['cpu_ms']:.2f}" for r in ours.rounds]
    theirs_spread = [f"{r['cpu_ms']:.2f}" for r in theirs.rounds]
    print(f"# CPU ms/req per round: ours {' '.join(spread)}; LiteLLM {' '.join(theirs_spread)}")


# --- (B) queued runs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Finished:
    """A run as its server reports it: when it was accepted and when it ended (epoch s)."""

    created: float
    finished: float
    ok: bool


class OurRuns:
    """Runs through our API: ``POST /v1/tasks``, then ``GET /v1/tasks/{id}`` until it ends."""

    name = "agent-service"

    def __init__(self, url: str, api_key: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {api_key}"}

    async def submit(self, client: httpx.AsyncClient) -> str:
        resp = await client.post(
            f"{self.url}/v1/tasks", json={"message": AGENT_MESSAGE}, headers=self.headers
        )
        resp.raise_for_status()
        return str(resp.json()["task_id"])

    async def poll(self, client: httpx.AsyncClient, handle: str) -> Finished | None:
        resp = await client.get(f"{self.url}/v1/tasks/{handle}", headers=self.headers)
        resp.raise_for_status()
        record = resp.json()
        if record["status"] in ("queued", "running"):
            return None
        ok = record["status"] == "succeeded"
        return Finished(record["created_at"], record["finished_at"], ok)

    async def work_done(self, client: httpx.AsyncClient, handle: str) -> list[str]:
        """The steps of a finished run: ["llm", "tool", "llm"] for the benchmark's message."""
        resp = await client.get(f"{self.url}/v1/tasks/{handle}", headers=self.headers)
        return [step["kind"] for step in resp.json()["result"]["steps"]]


class LangGraphRuns:
    """Background runs on ``langgraph dev``: one thread per run, created with the run."""

    name = "langgraph dev"

    def __init__(self, url: str) -> None:
        self.url = url

    async def submit(self, client: httpx.AsyncClient) -> str:
        thread_id = str(uuid.uuid4())
        body = {
            "assistant_id": "agent",
            "input": {"messages": [{"role": "user", "content": AGENT_MESSAGE}]},
            "if_not_exists": "create",
        }
        resp = await client.post(f"{self.url}/threads/{thread_id}/runs", json=body)
        resp.raise_for_status()
        return f"{thread_id}/runs/{resp.json()['run_id']}"

    async def poll(self, client: httpx.AsyncClient, handle: str) -> Finished | None:
        resp = await client.get(f"{self.url}/threads/{handle}")
        resp.raise_for_status()
        run = resp.json()
        if run["status"] in ("pending", "running"):
            return None
        created = datetime.fromisoformat(run["created_at"]).timestamp()
        finished = datetime.fromisoformat(run["updated_at"]).timestamp()
        return Finished(created, finished, run["status"] == "success")

    async def work_done(self, client: httpx.AsyncClient, handle: str) -> list[str]:
        """The message kinds after the human's: LLM calls ("ai") and tool results ("tool")."""
        thread_id = handle.split("/", 1)[0]
        resp = await client.get(f"{self.url}/threads/{thread_id}/state")
        kinds = [message["type"] for message in resp.json()["values"]["messages"]]
        return ["llm" if kind == "ai" else kind for kind in kinds if kind != "human"]


Runtime = OurRuns | LangGraphRuns


@dataclass
class Batch:
    """What the client saw of one batch of runs."""

    started: float
    handles: list[str]
    finished: list[Finished]
    polls: int


async def run_batch(
    runtime: Runtime, runs: int, concurrency: int, poll_interval: float, give_up_after: float
) -> Batch:
    """Submit ``runs`` runs and poll each every ``poll_interval`` s from its submission until it
    ends, at most ``concurrency`` requests (submissions and polls) in flight at once."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def follow() -> tuple[str, Finished, int]:
            async with gate:
                handle = await runtime.submit(client)
            polls = 0
            while True:
                await asyncio.sleep(poll_interval)
                async with gate:
                    answer = await runtime.poll(client, handle)
                polls += 1
                if answer is not None:
                    return handle, answer, polls

        started = time.time()
        try:
            async with asyncio.timeout(give_up_after):
                done = await asyncio.gather(*(follow() for _ in range(runs)))
        except TimeoutError:
            raise TimeoutError(
                f"{runtime.name}: runs not done after {give_up_after:.0f} s"
            ) from None
        return Batch(
            started,
            [handle for handle, _, _ in done],
            [finished for _, finished, _ in done],
            sum(polls for _, _, polls in done),
        )


async def poll_each(runtime: Runtime, handles: list[str], concurrency: int) -> None:
    """One status request per run, ``concurrency`` at a time (the runs have ended)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def one(handle: str) -> None:
            async with gate:
                await runtime.poll(client, handle)

        await asyncio.gather(*(one(handle) for handle in handles))


@dataclass
class RunSide:
    """One side of (B): its client, the processes whose CPU and memory count, its rounds."""

    runtime: Runtime
    procs: dict[str, Proc]
    redis: Proc | None = None
    rounds: list[dict[str, float]] = field(default_factory=list)

    def measure(self, args: argparse.Namespace) -> dict[str, float]:
        before = cpu_of(self.procs)
        redis_before = session_cpu_seconds(self.redis.pid) if self.redis else 0.0
        timeout = 60 + args.runs / args.in_flight * args.llm_seconds * 10
        batch = asyncio.run(
            run_batch(self.runtime, args.runs, args.client_concurrency, args.poll_interval, timeout)
        )
        after = settled_cpu(self.procs)
        redis_after = session_cpu_seconds(self.redis.pid) if self.redis else 0.0
        # What one status poll costs the side, to show its CPU per run without the polling.
        asyncio.run(poll_each(self.runtime, batch.handles, args.client_concurrency))
        polled = settled_cpu(self.procs)
        failed = sum(not f.ok for f in batch.finished)
        if failed:
            raise RuntimeError(f"{self.runtime.name}: {failed} of {args.runs} runs failed")
        latencies = [f.finished - f.created for f in batch.finished]
        span = max(f.finished for f in batch.finished) - batch.started
        result = {
            "rate": args.runs / span,
            "p50": pct(latencies, 50),
            "p95": pct(latencies, 95),
            "cpu_ms": (sum(after.values()) - sum(before.values())) / args.runs * 1000,
            "polls": batch.polls / args.runs,
            "poll_ms": (sum(polled.values()) - sum(after.values())) / args.runs * 1000,
            "rss": sum(rss_of(self.procs).values()),
        }
        result["net_ms"] = result["cpu_ms"] - result["polls"] * result["poll_ms"]
        for label in self.procs:
            result[f"cpu_ms {label}"] = (after[label] - before[label]) / args.runs * 1000
            result[f"rss {label}"] = session_rss_mb(self.procs[label].pid)
        if self.redis:
            result["redis_ms"] = (redis_after - redis_before) / args.runs * 1000
            result["redis_rss"] = session_rss_mb(self.redis.pid)
        return result

    def check_agent(self, args: argparse.Namespace) -> None:
        """Warm the side up and check its agent made 2 LLM calls and 1 tool call per run."""
        batch = asyncio.run(run_batch(self.runtime, args.warmup, args.client_concurrency, 0.5, 120))
        if not all(f.ok for f in batch.finished):
            raise RuntimeError(f"{self.runtime.name}: warm-up runs failed")

        async def steps() -> list[str]:
            async with httpx.AsyncClient(timeout=30) as client:
                return await self.runtime.work_done(client, batch.handles[0])

        done = asyncio.run(steps())
        if done != ["llm", "tool", "llm"]:
            raise RuntimeError(f"{self.runtime.name}: a run did {done}, not llm, tool, llm")


def runs_phase(args: argparse.Namespace, langgraph: ToolEnv) -> None:
    per_call = args.llm_seconds / 2
    print(
        f"\n## (B) queued runs: {args.runs} runs of the agent ({AGENT_MESSAGE!r}: 2 LLM calls of "
        f"{per_call:g} s + 1 tool call), {args.in_flight} in flight; all submitted at once, "
        f"each polled every {args.poll_interval:g} s until it ends, at most "
        f"{args.client_concurrency} requests at a time; {args.rounds} interleaved rounds",
        flush=True,
    )
    with stack("peers-runs") as s:
        ours = start_ours(s, per_call)
        worker = s.worker(
            {
                "AGENT_REDIS_URL": ours.redis_url,
                "AGENT_SIM_URL": ours.sim_url,
                "AGENT_WORKER_CONCURRENCY": str(args.in_flight),
            }
        )
        graph_url, graph = start_langgraph_dev(s, langgraph, ours.sim_url, args.in_flight)
        sides = [
            RunSide(
                OurRuns(ours.api_url, ours.api_key), {"API": ours.api, "worker": worker}, ours.redis
            ),
            RunSide(LangGraphRuns(graph_url), {"langgraph dev": graph}),
        ]
        for side in sides:
            side.check_agent(args)
        print_idle({side.runtime.name: side.procs for side in sides})
        for number in range(1, args.rounds + 1):
            for side in sides:
                r = side.measure(args)
                side.rounds.append(r)
                print(
                    f"#   round {number} {side.runtime.name}: {r['rate']:.1f} runs/s, "
                    f"p50 {r['p50']:.3f} s, {r['cpu_ms']:.2f} ms CPU/run, {r['rss']:.0f} MB; "
                    f"{load()}",
                    flush=True,
                )
        print_runs(sides, args)
        if args.profile:
            print("# py-spy, one more batch per side:")
            for side in sides:
                tag = f"runs-{side.runtime.name.split()[0]}"
                profiled(args, tag, side.procs, partial(side.measure, args))


def print_runs(sides: list[RunSide], args: argparse.Namespace) -> None:
    def med(side: RunSide, key: str) -> float:
        return median([r[key] for r in side.rounds])

    def row(name: str, values: list[str]) -> None:
        table_row(name, values, (7, 7, 7, 11, 14, 7))

    ideal = args.in_flight / args.llm_seconds
    print(f"\nideal: {ideal:.1f} runs/s ({args.in_flight} in flight / {args.llm_seconds:g} s)")
    row("", ["runs/s", "p50 s", "p95 s", "CPU ms/run", "without polls", "RSS MB"])
    for side in sides:
        keys = (("rate", "7.1f"), ("p50", "7.3f"), ("p95", "7.3f"), ("cpu_ms", ".2f"))
        keys += (("net_ms", ".2f"), ("rss", ".0f"))
        row(side.runtime.name, [format(med(side, key), spec) for key, spec in keys])
    ours, theirs = sides
    keys = ("rate", "p50", "p95", "cpu_ms", "net_ms", "rss")
    row("ours / theirs", [ratio(med(ours, key), med(theirs, key)) for key in keys])
    if ours.redis:
        redis = [f"{med(ours, 'redis_ms'):.2f}", "", f"{med(ours, 'redis_rss'):.0f}"]
        row("Redis (ours)", ["", "", "", *redis])
    print("# the ratios leave Redis out; CPU per run is user + system time of every process")
    for side in sides:
        parts = [
            f"{label} {med(side, f'cpu_ms {label}'):.2f} ms, {med(side, f'rss {label}'):.0f} MB"
            for label in side.procs
        ]
        per_round = " ".join(f"{r['cpu_ms']:.2f}" for r in side.rounds)
        print(
            f"# {side.runtime.name}: {'; '.join(parts)}; {med(side, 'polls'):.1f} polls per run "
            f"at {med(side, 'poll_ms'):.2f} ms each; CPU ms/run per round: {per_round}"
        )
    print(f"# {HONESTY}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--phase", choices=["gateway", "runs", "all"], default="all")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per side")
    parser.add_argument(
        "--gateway-connections", type=int, nargs="+", default=[1, 64], metavar="C",
        help="wrk connections; one table per value (1: the latency floor; 64: the throughput)",
    )  # fmt: skip
    parser.add_argument("--gateway-seconds", type=int, default=10, help="wrk time per side")
    parser.add_argument("--gateway-ttft", type=float, default=0.05, help="simulated s per call")
    parser.add_argument("--runs", type=int, default=300, help="queued runs per side and round")
    parser.add_argument("--in-flight", type=int, default=100, help="runs executed at once")
    parser.add_argument("--llm-seconds", type=float, default=1.0, help="LLM time per run (2 calls)")
    parser.add_argument(
        "--client-concurrency", type=int, default=10, help="client requests in flight at most"
    )
    parser.add_argument("--poll-interval", type=float, default=1.0, help="s between polls of a run")
    parser.add_argument(
        "--warmup", type=int, default=None, help="unmeasured runs per side first (--in-flight)"
    )
    parser.add_argument("--latest", action="store_true", help="the peers' newest releases")
    add_profile_arguments(parser, "after the measured rounds, one more per side under py-spy")
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = args.in_flight  # every slot and pooled connection used once

    litellm = LITELLM_PROXY.unpinned() if args.latest else LITELLM_PROXY
    langgraph = LANGGRAPH.unpinned() if args.latest else LANGGRAPH
    peers = {"gateway": [litellm], "runs": [langgraph], "all": [litellm, langgraph]}[args.phase]
    for peer in peers:
        peer.ensure(upgrade=args.latest)
    if args.profile:
        PY_SPY.ensure()
    header("peers: agent-service against LiteLLM Proxy (A) and LangGraph (B); asserts nothing")
    print(f"# ours: {project_versions()}")
    for peer in peers:
        print(f"# {peer.name}: {peer.versions()}")
    print(f"# {HONESTY}", flush=True)
    if args.phase in ("gateway", "all"):
        gateway_phase(args, litellm)
    if args.phase in ("runs", "all"):
        runs_phase(args, langgraph)
    footer()


if __name__ == "__main__":
    main()
