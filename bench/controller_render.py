"""The controller's cost per reconcile with many Agent and MCPServer resources.

Not a test: it prints figures. The renderer runs over the fake cluster of the controller's tests
(no Kubernetes API here, so API round trips are not in the figures: each reconcile adds three
list/get calls and one write per change on a real cluster). For each size, one AgentConfig, 20
MCPServers and N Agents; each round times a resync where nothing changed (the same-run baseline)
and a render after one Agent's edit (compose, check, write the ConfigMap, then read it back at
the next resync), one after the other, so both see the same moment of a shared machine. Medians
of the rounds; the ratio is edit / resync.

    uv run python bench/controller_render.py --rounds 9
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import footer, header, median, spread
from prometheus_client import CollectorRegistry
from tests.controller.fakes import FakeCluster

from agent_service.agentconfig.crd import AGENT_KIND, CONFIG_LABEL, KIND, MCP_SERVER_KIND
from agent_service.agentconfig.render import CONFIG_KEY
from agent_service.controller.ports import Policy
from agent_service.controller.renderer import Renderer
from agent_service.observability.metrics import Metrics

LABELS = {CONFIG_LABEL: "demo"}
AGENTCONFIG = {
    "defaultModel": "main",
    "models": [{"name": "main", "model": "openai/gpt-4o-mini"}],
}
SERVERS = 20


def release(agents: int) -> tuple[FakeCluster, Renderer]:
    cluster = FakeCluster()
    cluster.apply(KIND, "demo", AGENTCONFIG)
    for index in range(SERVERS):
        spec = {"url": f"https://mcp{index}.example.com/mcp"}
        cluster.apply(MCP_SERVER_KIND, f"s{index}", spec, labels=LABELS)
    for index in range(agents):
        tools = {"calculator": True, "mcp": [{"server": f"s{index % SERVERS}"}]}
        spec = {"description": f"agent {index}", "tools": tools}
        cluster.apply(AGENT_KIND, f"a{index:03}", spec, labels=LABELS)
    policy = Policy(configmap="cm", agentconfig="demo", label=(CONFIG_LABEL, "demo"))
    return cluster, Renderer(cluster, policy, Metrics(CollectorRegistry()))


def timed(renderer: Renderer, times: int = 1) -> float:
    started = time.perf_counter()
    for _ in range(times):
        renderer.reconcile_once()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 499])
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # every refused or new resource logs a line
    header("controller: reconcile with N Agents and 20 MCPServers (fake cluster, no API time)")
    for size in args.sizes:
        cluster, renderer = release(size)
        timed(renderer, 2)  # the first render and the first read of it
        resync, edit = [], []
        for index in range(args.rounds):
            resync.append(timed(renderer))
            spec = {"description": f"edit {index}", "tools": {"calculator": True}}
            cluster.apply(AGENT_KIND, "a000", spec, labels=LABELS)
            edit.append(timed(renderer, 2))
        size_kib = len(cluster.configmaps["cm"].data[CONFIG_KEY]) // 1024
        print(
            f"{size:4} Agents: resync (nothing changed) median {median(resync):7.1f} ms "
            f"({spread(resync)}); one Agent edited median {median(edit):7.1f} ms "
            f"({spread(edit)}); ratio {median(edit) / median(resync):4.1f}; "
            f"config.yaml {size_kib} KiB",
            flush=True,
        )
    footer()


if __name__ == "__main__":
    main()
