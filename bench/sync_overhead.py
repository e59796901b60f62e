"""Sync overhead: ``POST /v1/chat`` latency minus the simulated LLM time, for a two-call run.

Not a test: it prints figures. "what is 12*(3+4)?" makes the simulator call the calculator,
then answer: two LLM calls and one tool call per run. The simulator answers each call after
``--ttft`` seconds, so a run's simulated LLM time is ``2 * ttft``; the overhead is the rest
(API, agent loop, LiteLLM, tool, metrics, tracing). Sequential requests on one keep-alive
connection (c=1). The baseline, in the same round: the same two calls made with bare
``litellm.acompletion`` (and the calculator in between) from this process, minus the same
simulated time: what LiteLLM alone costs. Medians of ``--rounds`` rounds.

Target: overhead p50 <= 15 ms.

    uv run python bench/sync_overhead.py --requests 200 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import footer, header, median, pct, spread, stack

QUESTION = "what is 12*(3+4)?"


def chat_times(client: httpx.Client, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        resp = client.post("/v1/chat", json={"message": QUESTION})
        times.append((time.perf_counter() - started) * 1000)
        assert resp.status_code == 200, resp.text
        assert len(resp.json()["steps"]) == 3, resp.json()["steps"]
    return times


async def bare_times(sim_url: str, count: int) -> list[float]:
    import litellm

    from agent_service.agent.tools.calculator import CALCULATOR_SPEC, CalculatorTool
    from agent_service.agent.tools.clock import CURRENT_TIME_SPEC

    tools = [CALCULATOR_SPEC.to_openai(), CURRENT_TIME_SPEC.to_openai()]
    calculator = CalculatorTool()

    async def call(messages: list[dict[str, object]]) -> object:
        return await litellm.acompletion(
            model="openai/sim-agent", api_base=sim_url, api_key="x", tools=tools,
            messages=messages, num_retries=0, max_retries=0, max_tokens=1024, timeout=30,
            _skip_mcp_handler=True,
        )  # fmt: skip

    async def run() -> None:
        messages: list[dict[str, object]] = [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": QUESTION},
        ]
        first = await call(messages)
        tool_call = first.choices[0].message.tool_calls[0]  # type: ignore[attr-defined]
        result = await calculator.invoke(json.loads(tool_call.function.arguments))
        messages.append(first.choices[0].message.model_dump())  # type: ignore[attr-defined]
        messages.append(
            {"role": "tool", "tool_call_id": tool_call.id, "name": "calculator", "content": result}
        )
        await call(messages)

    for _ in range(20):
        await run()  # warm-up
    times = []
    for _ in range(count):
        started = time.perf_counter()
        await run()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200, help="runs per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ttft", type=float, default=0.05, help="simulated seconds per call")
    args = parser.parse_args()
    simulated = 2 * args.ttft * 1000
    header(
        f"sync overhead: POST /v1/chat {QUESTION!r} (2 LLM calls + calculator), "
        f"{args.requests} sequential x {args.rounds} rounds, simulated LLM time {simulated:.0f} ms"
    )
    with stack("sync") as s:
        redis_url = s.redis()
        sim_url = s.sim("--ttft", str(args.ttft))
        url = s.api({"AGENT_REDIS_URL": redis_url, "AGENT_SIM_URL": sim_url})
        api50, api99, bare50, bare99 = [], [], [], []
        with httpx.Client(base_url=url, timeout=30) as client:
            chat_times(client, 20)  # warm-up
            for _ in range(args.rounds):
                api = chat_times(client, args.requests)
                bare = asyncio.run(bare_times(sim_url, args.requests))
                api50.append(pct(api, 50) - simulated)
                api99.append(pct(api, 99) - simulated)
                bare50.append(pct(bare, 50) - simulated)
                bare99.append(pct(bare, 99) - simulated)
    print(f"{'':34s} {'p50 ms':>8s} {'p99 ms':>8s}   p50 spread")
    print(f"{'/v1/chat overhead':34s} {median(api50):8.2f} {median(api99):8.2f}   {spread(api50)}")
    print(
        f"{'bare LiteLLM x2 + calculator':34s} {median(bare50):8.2f} {median(bare99):8.2f}   "
        f"{spread(bare50)}"
    )
    print(f"service above bare LiteLLM (p50)   {median(api50) - median(bare50):8.2f}")
    verdict = "met" if median(api50) <= 15 else "MISSED"
    print(f"overhead p50 {median(api50):.2f} ms (target <= 15 ms: {verdict})")
    footer()


if __name__ == "__main__":
    main()
