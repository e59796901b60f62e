"""MCP tool-call overhead: a call through our tool wrapper minus the same call through the SDK.

Not a test: it prints figures. Starts the demo MCP server (``agent-service mcp-demo``) and, in
one asyncio process, two clients of it: ``McpToolset`` (what the agent calls: the SSRF-guarded
connection, ``_meta`` with the trace context, the result turned into text) and the SDK's own
``mcp.Client`` on the same URL. Each round makes ``--calls`` sequential pairs of
``lookup_order("OD-20240502")`` calls, one through each client (c=1: latency, not throughput),
which goes first alternating, so both see the same moment of a shared, noisy machine. The
overhead is the median of the paired differences ``wrapper - SDK``; p50 and p99 of each client
are shown too, and the ratio is ``wrapper / SDK`` at p50. Medians of ``--rounds`` rounds.

    uv run python bench/mcp_overhead.py --calls 300 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import footer, header, median, pct, spread, stack
from mcp import Client

from agent_service.mcptools import McpServerSpec, McpTool, McpToolset

ARGUMENTS = {"order_id": "OD-20240502"}


async def once(call: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await call()
    return (time.perf_counter() - started) * 1000


async def paired(
    ours: Callable[[], Awaitable[object]], theirs: Callable[[], Awaitable[object]], count: int
) -> tuple[list[float], list[float], list[float]]:
    """``count`` pairs of calls, alternating which goes first: (ours, theirs, differences)."""
    mine, sdk, differences = [], [], []
    for index in range(count):
        if index % 2 == 0:
            a, b = await once(ours), await once(theirs)
        else:
            b, a = await once(theirs), await once(ours)
        mine.append(a)
        sdk.append(b)
        differences.append(a - b)
    return mine, sdk, differences


async def measure(url: str, calls: int, rounds: int) -> dict[str, list[float]]:
    spec = McpServerSpec(name="orders", url=url, allow_private_networks=True)
    rows: dict[str, list[float]] = {k: [] for k in ("w50", "w99", "s50", "s99", "o50")}
    async with McpToolset(resolve_secret=lambda ref: None) as toolset, Client(url) as sdk:
        await toolset.apply([spec])
        (tool,) = [t for t in toolset.tools() if t.spec.name == "orders__lookup_order"]
        assert isinstance(tool, McpTool)

        async def wrapper() -> object:
            return await tool.invoke(dict(ARGUMENTS))

        async def sdk_alone() -> object:
            result = await sdk.call_tool("lookup_order", dict(ARGUMENTS))
            assert not result.is_error
            return result.content

        await paired(wrapper, sdk_alone, 50)  # warm-up: connections, imports, caches
        for _ in range(rounds):
            ours, theirs, differences = await paired(wrapper, sdk_alone, calls)
            for name, values in (("w", ours), ("s", theirs)):
                rows[f"{name}50"].append(pct(values, 50))
                rows[f"{name}99"].append(pct(values, 99))
            rows["o50"].append(pct(differences, 50))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300, help="pairs of calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    header(f"MCP tool-call overhead: {args.calls} call pairs x {args.rounds} rounds, c=1")
    with stack("mcp") as s:
        url = s.mcp_demo()
        rows = asyncio.run(measure(url, args.calls, args.rounds))
    m = {k: median(v) for k, v in rows.items()}
    print(f"{'':30s} {'p50 ms':>8s} {'p99 ms':>8s}   p50 spread")
    for label, key in (("McpTool.invoke (ours)", "w"), ("mcp.Client.call_tool (SDK)", "s")):
        p50, p99 = m[f"{key}50"], m[f"{key}99"]
        print(f"{label:30s} {p50:8.3f} {p99:8.3f}   {spread(rows[f'{key}50'])}")
    name = "overhead (paired ours - SDK)"
    print(f"{name:30s} {m['o50']:8.3f} {'':>8s}   {spread(rows['o50'])}")
    print(f"ours / SDK: p50 {m['w50'] / m['s50']:.3f}x, p99 {m['w99'] / m['s99']:.3f}x")
    footer()


if __name__ == "__main__":
    main()
