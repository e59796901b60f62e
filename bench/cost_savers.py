"""What the cost savers save: the response cache and the cheap-model router, on vs off.

Not a test: it prints figures. Starts Redis, the simulator and one API process per variant
(each with a fresh key prefix, so no cache carries over), sends the same seeded workload of
sync runs to each, and reports the USD spent (the runs' own `usage.cost_usd`, priced by the
config), LLM calls, and p50/p95 latency, with each variant's ratio to the baseline measured in
the same run. The workload mixes repeated FAQ questions (what a cache is for), short chit-chat
(what the router is for) and tool questions (which neither may touch).

    uv run python bench/cost_savers.py --requests 300 --seed 7
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import stack
from tests.procs import Proc, base_env, cli, free_port, wait_http

FAQ = [f"What does plan {name} include?" for name in ("basic", "team", "pro", "enterprise")] + [
    "How do I reset my password?",
    "Where can I download my invoices?",
]
CHAT = ["hi", "hello there", "thanks!", "good morning", "ok, bye"]
TOOLS = ["what is 12*(3+4)?", "what is 2**10 - 24?", "what time is it in UTC?"]

# Prices of a large and a small hosted model (USD per 1K tokens, input / output).
CONFIG = """
defaultModel: main
models:
  - name: main
    model: openai/main
    apiBase: "{sim}"
    inputCostPer1K: 0.0025
    outputCostPer1K: 0.01
  - name: mini
    model: openai/mini
    apiBase: "{sim}"
    inputCostPer1K: 0.00015
    outputCostPer1K: 0.0006
cache: {{enabled: {cache}, ttlSeconds: 600}}
router: {{enabled: {router}, model: mini, maxChars: 40}}
"""

VARIANTS = {
    "baseline": {"cache": "false", "router": "false"},
    "cache": {"cache": "true", "router": "false"},
    "router": {"cache": "false", "router": "true"},
    "cache+router": {"cache": "true", "router": "true"},
}


def workload(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pools = [(FAQ, 0.4), (CHAT, 0.3), (TOOLS, 0.3)]
    return [
        rng.choice(rng.choices([p for p, _ in pools], [w for _, w in pools])[0])
        for _ in range(count)
    ]


def run_variant(
    name: str, flags: dict[str, str], messages: list[str], env: dict[str, str], work: Path
) -> dict[str, float]:
    config = work / f"{name}.yaml"
    config.write_text(CONFIG.format(sim=env["AGENT_SIM_URL"], **flags))
    port = free_port()
    api = Proc(
        f"api-{name}",
        cli("api"),
        {
            **env,
            "AGENT_CONFIG_FILE": str(config),
            "AGENT_API_PORT": str(port),
            "AGENT_API_HOST": "127.0.0.1",
            "AGENT_METRICS_PORT": "0",
            "AGENT_REDIS_KEY_PREFIX": f"bench-{name}-{time.time_ns()}:",
            "AGENT_LOG_LEVEL": "WARNING",
        },
        work,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/readyz", api, timeout=60)
        cost = 0.0
        calls = 0
        cached = 0
        latencies = []
        with httpx.Client(base_url=url, timeout=30, trust_env=False) as client:
            for message in messages:
                started = time.perf_counter()
                resp = client.post("/v1/chat", json={"message": message})
                latencies.append((time.perf_counter() - started) * 1000)
                resp.raise_for_status()
                body = resp.json()
                cost += body["usage"]["cost_usd"]
                calls += sum(1 for step in body["steps"] if step["kind"] == "llm")
                cached += bool(body.get("cached"))
        q = statistics.quantiles(latencies, n=20)
        return {
            "cost": cost,
            "calls": calls,
            "cached": cached,
            "p50": statistics.median(latencies),
            "p95": q[18],
        }
    finally:
        api.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with stack("savers") as s:
        env = base_env({"AGENT_REDIS_URL": s.redis(), "AGENT_SIM_URL": s.sim("--ttft", "0.05")})
        messages = workload(args.requests, args.seed)
        load = os.getloadavg()[0]
        print(
            f"# cost savers: {args.requests} sync runs (seed {args.seed}: 40% repeated FAQ, "
            f"30% chit-chat, 30% tool questions), simulator at 50 ms, load {load:.2f}"
        )
        print(
            f"{'variant':>13} {'USD':>10} {'vs base':>8} {'LLM calls':>9} {'cached':>6} "
            f"{'p50 ms':>7} {'p95 ms':>7}"
        )
        base: dict[str, float] | None = None
        for name, flags in VARIANTS.items():
            result = run_variant(name, flags, messages, env, s.work)
            base = base or result
            print(
                f"{name:>13} {result['cost']:>10.5f} {result['cost'] / base['cost']:>7.2f}x "
                f"{result['calls']:>9.0f} {result['cached']:>6.0f} {result['p50']:>7.1f} "
                f"{result['p95']:>7.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
