"""Worker CPU per LLM call against a bare ``litellm.acompletion`` on the same simulator.

Not a test: it prints figures. Reuses ``bench/worker_concurrency.py``'s measurement: one worker
process with ``--n`` slots consumes a pre-loaded backlog of one-LLM-call runs; its CPU
(user + sys from /proc) divided by the runs is the CPU per LLM call, everything included
(Celery, the task record, events, metrics, tracing). The baseline, measured in the same run on
the same simulator with the same tools: the CPU of a bare ``litellm.acompletion`` call, its
background bookkeeping included. Medians of ``--repeat`` repetitions.

Target: worker CPU per call <= 1.5x the bare LiteLLM call.

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
    with stack("worker-cpu") as s:
        redis_url = s.redis()
        sim_url = s.sim("--ttft", str(args.latency))
        baselines, workers, rates = [], [], []
        for _ in range(args.repeat):
            # Interleaved: the baseline and the worker see the same machine load.
            baselines.append(asyncio.run(wc.litellm_baseline(sim_url, 200)))
            result = wc.measure(n=args.n, rounds=args.rounds, latency=args.latency,
                                redis_url=redis_url, sim_url=sim_url, log_dir=s.work)  # fmt: skip
            workers.append(result["cpu_ms_per_run"])
            rates.append(result["runs_per_s"])
    base, worker = median(baselines), median(workers)
    print(f"bare litellm.acompletion   {base:7.2f} ms CPU per call   spread {spread(baselines)}")
    print(f"worker, per run (1 call)   {worker:7.2f} ms CPU per call   spread {spread(workers)}")
    print(f"worker throughput          {median(rates):7.1f} runs/s (one process)")
    ratio = worker / base
    print(f"ratio: {ratio:.2f}x (target <= 1.5x: {'met' if ratio <= 1.5 else 'MISSED'})")
    footer()


if __name__ == "__main__":
    main()
