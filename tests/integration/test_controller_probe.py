"""The controller's MCP probes against real MCP servers: the demo server run as a process, a
closed port, and a socket that accepts and never answers.

``McpProber`` lists a server's tools in the background with the pods' own client and calls
back when done; the renderer (over a fake cluster: no Kubernetes here) turns the result into
the MCPServer's status. A request never waits for a probe.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from agent_service.agentconfig.crd import CONFIG_LABEL, KIND, MCP_SERVER_KIND
from agent_service.agentconfig.mcp import McpServerSpec
from agent_service.agentconfig.spec import SecretKeyRef
from agent_service.controller.ports import Policy, ProbeResult
from agent_service.controller.probe import McpProber
from agent_service.controller.renderer import Renderer
from agent_service.observability.metrics import Metrics
from tests.controller.fakes import FakeCluster
from tests.mcp_processes import McpProcess, demo_process, started
from tests.procs import free_port

pytestmark = pytest.mark.integration

DEMO_TOOLS = ("lookup_order", "list_recent_orders", "track_shipment", "refund_order")


@pytest.fixture(scope="module")
def demo(log_dir: Path) -> Iterator[McpProcess]:
    yield from started(demo_process(log_dir))


@pytest.fixture
def silent() -> Iterator[str]:
    """A URL whose server accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/mcp"
    listener.close()


class Probes:
    """A started prober whose results are awaited by event, not by sleeping."""

    def __init__(self, resolve: Any = None, max_age: float = 300.0) -> None:
        self.resolved: list[SecretKeyRef] = []
        self.done = threading.Semaphore(0)
        self.now = 0.0

        def read(ref: SecretKeyRef) -> str | None:
            self.resolved.append(ref)
            return "t0ken"

        self.prober = McpProber(
            resolve=resolve or read,
            max_age=max_age,
            on_result=self.done.release,
            clock=lambda: self.now,
        ).start()

    def probe(self, spec: McpServerSpec) -> ProbeResult:
        self.prober.request([spec])
        assert self.done.acquire(timeout=60), "no probe result within 60 s"
        result = self.prober.result(spec)
        assert result is not None
        return result


@pytest.fixture
def probes() -> Iterator[Probes]:
    found = Probes()
    yield found
    found.prober.close()


def server(url: str, **fields: Any) -> McpServerSpec:
    return McpServerSpec.model_validate(
        {"name": "orders", "url": url, "allowPrivateNetworks": True, "timeoutSeconds": 5, **fields}
    )


def test_the_demo_servers_tools_are_listed(probes: Probes, demo: McpProcess) -> None:
    result = probes.probe(server(demo.url))
    assert result == ProbeResult(True, DEMO_TOOLS, "")


def test_the_filter_applies_as_in_the_pods(probes: Probes, demo: McpProcess) -> None:
    result = probes.probe(server(demo.url, exclude=["track_shipment"]))
    assert result.tools == ("lookup_order", "list_recent_orders", "refund_order")


def test_header_secrets_are_read_from_the_cluster(probes: Probes, demo: McpProcess) -> None:
    ref = {"secretKeyRef": {"name": "orders-mcp", "key": "token"}, "prefix": "Bearer "}
    result = probes.probe(server(demo.url, headers={"Authorization": ref}))
    assert result.reachable is True
    assert probes.resolved == [SecretKeyRef(name="orders-mcp", key="token")]


def test_a_closed_port_is_unreachable(probes: Probes) -> None:
    result = probes.probe(server(f"http://127.0.0.1:{free_port()}/mcp"))
    assert result.reachable is False and result.tools == ()
    assert result.message.startswith("cannot connect"), result.message


def test_a_server_that_never_answers_is_unreachable(probes: Probes, silent: str) -> None:
    result = probes.probe(server(silent, timeoutSeconds=1))
    assert result.reachable is False
    assert result.message in {"timed out", "no answer within 1 s"}, result.message


def test_the_egress_guard_applies(probes: Probes, demo: McpProcess) -> None:
    result = probes.probe(server(demo.url, allowPrivateNetworks=False))
    assert result == ProbeResult(False, (), "egress refused: address not allowed")


def test_a_header_only_the_pods_have_is_not_probed(probes: Probes, demo: McpProcess) -> None:
    result = probes.probe(server(demo.url, headers={"Authorization": {"env": "ORDERS_TOKEN"}}))
    assert result.reachable is None
    assert "header Authorization comes from the environment variable ORDERS_TOKEN" in (
        result.message
    )


def test_results_are_kept_until_stale_and_forgotten_with_their_server(
    probes: Probes, demo: McpProcess
) -> None:
    spec = server(demo.url)
    first = probes.probe(spec)
    probes.prober.request([spec])  # fresh: no new probe
    assert probes.prober._pending == set(), "a fresh result is not probed again"
    probes.now += 301  # older than max_age: probed again, the old result served meanwhile
    assert probes.probe(spec) == first
    probes.prober.request([])
    assert probes.prober.result(spec) is None, "a server no longer served is forgotten"


def test_the_renderer_shows_the_probe_in_the_mcp_servers_status(demo: McpProcess) -> None:
    """The whole loop: the first reconcile serves the MCPServer and asks for a probe (its Ready
    is Unknown meanwhile); the probe's end reconciles again, and the status has the tools."""
    cluster = FakeCluster()
    cluster.apply(
        KIND, "demo", {"defaultModel": "m", "models": [{"name": "m", "model": "openai/m"}]}
    )
    labels = {CONFIG_LABEL: "demo"}
    cluster.apply(MCP_SERVER_KIND, "orders", {"url": demo.url, "allowPrivateNetworks": True},
                  labels=labels)  # fmt: skip
    policy = Policy(
        configmap="demo-config",
        allow_private_networks=True,
        agentconfig="demo",
        label=(CONFIG_LABEL, "demo"),
    )
    renderer = Renderer(cluster, policy, Metrics(CollectorRegistry()))
    reconciled = threading.Event()

    def after_probe() -> None:
        renderer.request()
        reconciled.set()

    prober = McpProber(resolve=lambda ref: None, max_age=300, on_result=after_probe).start()
    renderer.prober = prober
    try:
        renderer.request()
        assert cluster.condition(MCP_SERVER_KIND, "orders", "Ready")["reason"] == "Probing"
        assert reconciled.wait(60), "the probe's end reconciles"
    finally:
        prober.close()
    status = cluster.status(MCP_SERVER_KIND, "orders")
    assert status["toolCount"] == len(DEMO_TOOLS) and tuple(status["tools"]) == DEMO_TOOLS
    ready = cluster.condition(MCP_SERVER_KIND, "orders", "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Reachable")
