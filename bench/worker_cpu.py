"""Worker CPU per LLM call against bare client calls on the same simulator (target C2).

Not a test: it prints figures. Reuses ``bench/worker_concurrency.py``'s measurement: one worker
process with ``--n`` slots consumes a pre-loaded backlog of one-LLM-call runs; its CPU
(user + sys from /proc) divided by the runs is the CPU per LLM call, everything included
(Celery, the task record, events, the journal, metrics, tracing). It is measured twice per
repetition, once per LLM transport (``AGENT_LLM_TRANSPORT``): ``auto`` (the simulator is an
OpenAI-compatible server, so the ``openai`` SDK is called directly) and ``litellm`` (every call
through ``litellm.acompletion``), with the worker's RSS at the end. The baselines, measured in
the same run on the same simulator with the same tools: the CPU of a bare
``litellm.acompletion`` call (its background bookkeeping included) and of a bare ``openai`` SDK
call. Everything is interleaved repetition by repetition; medians of ``--repeat``.

Target C2 (issue 17): service CPU per LLM call <= 1.3x a bare ``litellm.acompletion`` call.

    uv run python bench/worker_cpu.py --n 100 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import worker_concurrency as wc
from bench.common import footer, header, median, spread, stack

TRANSPORTS = ("auto", "litellm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100, help="worker slots (runs in flight)")
    parser.add_argument("--rounds", type=int, default=10, help="runs per slot")
    parser.add_argument("--latency", type=float, default=1.0, help="simulated LLM latency (s)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    header(
        f"worker CPU per LLM call: N={args.n} slots, {args.rounds} runs per slot, "
        f"{args.latency} s simulated latency, median of {args.repeat}"
    )
    bare: dict[str, list[float]] = {"litellm": [], "openai": []}
    cpu: dict[str, list[float]] = {t: [] for t in TRANSPORTS}
    rates: dict[str, list[float]] = {t: [] for t in TRANSPORTS}
    rss: dict[str, list[float]] = {t: [] for t in TRANSPORTS}
    with stack("worker-cpu") as s:
        redis_url = s.redis()
        sim_url = s.sim("--ttft", str(args.latency))
        bench = wc.Bench(n=args.n, rounds=args.rounds, latency=args.latency,
                         redis_url=redis_url, sim_url=sim_url, log_dir=s.work)  # fmt: skip
        for _ in range(args.repeat):
            # Interleaved: the baselines and both workers see the same machine load.
            bare["litellm"].append(asyncio.run(wc.litellm_baseline(sim_url, 200)))
            bare["openai"].append(asyncio.run(wc.openai_baseline(sim_url, 200)))
            for transport in TRANSPORTS:
                result = wc.measure(bench, transport=transport)
                cpu[transport].append(result["cpu_ms_per_run"])
                rates[transport].append(result["runs_per_s"])
                rss[transport].append(result["rss_mb"])
    base = median(bare["litellm"])
    print(f"bare litellm.acompletion     {base:7.2f} ms CPU per call   "
          f"spread {spread(bare['litellm'])}")  # fmt: skip
    print(f"bare openai SDK call         {median(bare['openai']):7.2f} ms CPU per call   "
          f"spread {spread(bare['openai'])}")  # fmt: skip
    for transport in TRANSPORTS:
        figure = median(cpu[transport])
        print(
            f"worker, transport={transport:<8} {figure:7.2f} ms CPU per call   "
            f"spread {spread(cpu[transport])}   {median(rates[transport]):6.1f} runs/s   "
            f"RSS {median(rss[transport]):5.0f} MB   "
            f"{figure / base:.2f}x bare litellm"
        )
    direct, via = median(cpu["auto"]), median(cpu["litellm"])
    print(f"direct / litellm transport: {direct / via:.2f}x CPU per call")
    ratio = direct / base
    print(f"C2 (default transport): {ratio:.2f}x bare litellm "
          f"(target <= 1.3x: {'met' if ratio <= 1.3 else 'MISSED'})")  # fmt: skip
    footer()


if __name__ == "__main__":
    main()
