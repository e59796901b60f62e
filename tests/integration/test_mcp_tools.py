"""MCP tools through the real SDK client against real MCP servers run as processes.

The demo server (``agent-service mcp-demo``) and the test server (``tests/mcp_server.py``:
a call-counting, a slow and a failing tool, and ``GET /calls``, the server's own record of
every call) run on free loopback ports (``tests/mcp_processes.py``). ``McpToolset`` connects to
them as in production (``allowPrivateNetworks`` on, since loopback is private). The last test
runs the agent loop on the LLM simulator with the demo server's tools.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry

from agent_service.agent.loop import Agent
from agent_service.agent.ports import Tool
from agent_service.agentconfig.model import default_agent_config
from agent_service.agentconfig.secrets import resolve_secret
from agent_service.domain.errors import ToolError
from agent_service.domain.runs import RunRequest, RunResult
from agent_service.llm import LiteLLMClient, close_llm_clients
from agent_service.mcptools import McpServerSpec, McpTool, McpToolset
from agent_service.observability.metrics import Metrics
from tests.conftest import Sim
from tests.mcp_processes import McpProcess, counting_process, demo_process, started

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo(log_dir: Path) -> Iterator[McpProcess]:
    yield from started(demo_process(log_dir))


@pytest.fixture
def test_server(log_dir: Path) -> Iterator[McpProcess]:
    yield from started(counting_process(log_dir))


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def toolset(registry: CollectorRegistry) -> AsyncIterator[McpToolset]:
    async with McpToolset(
        resolve_secret=lambda ref: resolve_secret(ref, Path("/nonexistent")),
        metrics=Metrics(registry),
        refresh_interval_seconds=0.5,
        reconnect_initial_seconds=0.1,
        reconnect_max_seconds=0.5,
    ) as tools:
        yield tools


def spec(name: str, url: str, **fields: Any) -> McpServerSpec:
    return McpServerSpec.model_validate(
        {"name": name, "url": url, "allowPrivateNetworks": True, **fields}
    )


def by_name(tools: list[Tool]) -> dict[str, McpTool]:
    found: dict[str, McpTool] = {}
    for tool in tools:
        assert isinstance(tool, McpTool)
        found[tool.spec.name] = tool
    return found


def gauge(registry: CollectorRegistry, name: str, server: str) -> float | None:
    return registry.get_sample_value(name, {"server": server})


async def eventually(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait until ``condition()`` holds (a deadline against hanging, not a speed check)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        await asyncio.sleep(0.05)


async def test_demo_tools_are_discovered_with_their_schemas(
    toolset: McpToolset, demo: McpProcess, registry: CollectorRegistry
) -> None:
    await toolset.apply([spec("orders", demo.url)])

    tools = by_name(toolset.tools())
    assert sorted(tools) == [
        "orders__list_recent_orders",
        "orders__lookup_order",
        "orders__refund_order",
        "orders__track_shipment",
    ]
    lookup = tools["orders__lookup_order"].spec
    assert lookup.parameters["type"] == "object"
    assert lookup.parameters["required"] == ["order_id"]
    assert "OD-20240502" in lookup.description
    assert gauge(registry, "agent_mcp_server_up", "orders") == 1
    assert gauge(registry, "agent_mcp_tools", "orders") == 4


async def test_a_call_sends_the_model_arguments_and_returns_the_result_as_text(
    toolset: McpToolset, demo: McpProcess
) -> None:
    await toolset.apply([spec("orders", demo.url)])
    tools = by_name(toolset.tools())

    text = await tools["orders__lookup_order"].invoke({"order_id": "OD-20240502"})

    order = json.loads(text)
    assert order["status"] == "shipped"
    assert order["tracking_number"] == "JD014600003828"
    assert "\n" not in text  # structured content, sent compact
    recent = json.loads(
        await tools["orders__list_recent_orders"].invoke(
            {"customer_email": "bob@example.com", "limit": 1}
        )
    )
    assert [o["order_id"] for o in recent["orders"]] == ["OD-20240611"]


async def test_a_tool_error_reaches_the_model_as_a_tool_error(
    toolset: McpToolset, demo: McpProcess, registry: CollectorRegistry
) -> None:
    await toolset.apply([spec("orders", demo.url)])
    lookup = by_name(toolset.tools())["orders__lookup_order"]

    with pytest.raises(ToolError, match="no order 'OD-1'"):
        await lookup.invoke({"order_id": "OD-1"})
    with pytest.raises(ToolError, match="order_id"):
        await lookup.invoke({})  # the server validates the arguments against its schema
    assert gauge(registry, "agent_mcp_server_up", "orders") == 1


async def test_include_and_exclude_select_tools_by_their_server_names(
    toolset: McpToolset, demo: McpProcess
) -> None:
    await toolset.apply(
        [
            spec("a", demo.url, include=["lookup_order", "track_shipment"]),
            spec("b", demo.url, exclude=["track_shipment", "refund_order"]),
        ]
    )
    assert sorted(by_name(toolset.tools())) == [
        "a__lookup_order",
        "a__track_shipment",
        "b__list_recent_orders",
        "b__lookup_order",
    ]
    assert [t.spec.name for t in toolset.tools_for("b", exclude=["lookup_order"])] == [
        "b__list_recent_orders"
    ]


async def test_each_call_runs_exactly_once_on_the_server(
    toolset: McpToolset, test_server: McpProcess
) -> None:
    await toolset.apply([spec("test", test_server.url)])
    count = by_name(toolset.tools())["test__count_calls"]

    answers = await asyncio.gather(*(count.invoke({"label": f"c{i}"}) for i in range(20)))

    ran = [call["arguments"]["label"] for call in test_server.calls()]
    assert sorted(ran) == sorted(f"c{i}" for i in range(20))
    assert sorted(json.loads(a)["calls"] for a in answers) == list(range(1, 21))


async def test_meta_carries_trace_context_and_idempotency_key_headers_come_from_secrets(
    registry: CollectorRegistry, test_server: McpProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_TEST_TOKEN", "s3cret-token")
    monkeypatch.setenv("MCP_TEST_TENANT", "acme")
    headers = {
        "Authorization": {"env": "MCP_TEST_TOKEN", "prefix": "Bearer "},
        "X-Tenant": {"env": "MCP_TEST_TENANT"},
    }
    tracer = TracerProvider().get_tracer("test")
    async with McpToolset(resolve_secret=lambda ref: resolve_secret(ref, Path("/none"))) as tools:
        await tools.apply([spec("test", test_server.url, headers=headers)])
        echo = by_name(tools.tools())["test__echo"]
        with tracer.start_as_current_span("execute_tool test__echo") as span:
            await echo.invoke({"text": "hi"}, idempotency_key="task-1:3", meta={"x-note": "n"})
        trace_id = trace.format_trace_id(span.get_span_context().trace_id)

    (call,) = test_server.calls()
    assert call["meta"]["traceparent"].split("-")[1] == trace_id
    assert call["meta"]["io.agent-service/idempotency-key"] == "task-1:3"
    assert call["meta"]["x-note"] == "n"
    assert call["headers"]["authorization"] == "Bearer s3cret-token"
    assert call["headers"]["x-tenant"] == "acme"
    assert "x-api-key" not in call["headers"]


async def test_a_missing_secret_keeps_the_server_down_without_naming_the_value(
    toolset: McpToolset, test_server: McpProcess, registry: CollectorRegistry
) -> None:
    headers = {"Authorization": {"env": "MCP_TEST_UNSET_VARIABLE", "prefix": "Bearer "}}
    await toolset.apply([spec("test", test_server.url, headers=headers)])

    status = toolset.status()["test"]
    assert not status.up
    assert status.error == (
        "header Authorization: secret not found (environment variable MCP_TEST_UNSET_VARIABLE)"
    )
    assert toolset.tools() == []
    assert gauge(registry, "agent_mcp_server_up", "test") == 0
    assert test_server.calls() == []


async def test_a_slow_tool_times_out_and_the_server_stays_usable(
    toolset: McpToolset, test_server: McpProcess, registry: CollectorRegistry
) -> None:
    await toolset.apply([spec("test", test_server.url, timeoutSeconds=1)])
    tools = by_name(toolset.tools())

    with pytest.raises(ToolError, match=r"no answer from MCP server 'test' within 1 s"):
        await tools["test__slow"].invoke({"seconds": 30})

    assert json.loads(await tools["test__count_calls"].invoke({}))["calls"] == 1
    assert toolset.status()["test"].up
    assert gauge(registry, "agent_mcp_server_up", "test") == 1


async def test_a_failing_tool_is_a_tool_error(
    toolset: McpToolset, test_server: McpProcess, registry: CollectorRegistry
) -> None:
    await toolset.apply([spec("test", test_server.url)])

    with pytest.raises(ToolError, match="out of stock"):
        await by_name(toolset.tools())["test__fail"].invoke({})

    assert [call["tool"] for call in test_server.calls()] == ["fail"]
    assert gauge(registry, "agent_mcp_server_up", "test") == 1


async def test_a_killed_server_gives_tool_errors_and_its_tools_work_again_after_a_restart(
    toolset: McpToolset, test_server: McpProcess, registry: CollectorRegistry
) -> None:
    await toolset.apply([spec("test", test_server.url, timeoutSeconds=5)])
    count = by_name(toolset.tools())["test__count_calls"]
    assert json.loads(await count.invoke({}))["calls"] == 1

    test_server.kill()
    with pytest.raises(ToolError, match="MCP server 'test'"):
        await count.invoke({})
    await eventually(lambda: gauge(registry, "agent_mcp_server_up", "test") == 0)
    # Still offered, the same object: its calls fail as tool errors until the server is back.
    assert by_name(toolset.tools())["test__count_calls"] is count
    with pytest.raises(ToolError, match="MCP server 'test' is unavailable"):
        await count.invoke({})

    test_server.start()
    await eventually(lambda: gauge(registry, "agent_mcp_server_up", "test") == 1)
    assert json.loads(await count.invoke({}))["calls"] == 1  # the new process counts afresh
    assert by_name(toolset.tools())["test__count_calls"] is count


async def test_an_unreachable_server_is_used_once_it_answers(
    registry: CollectorRegistry, log_dir: Path
) -> None:
    server = counting_process(log_dir)  # not started: nothing listens on its port yet
    changes: list[list[str]] = []
    async with McpToolset(
        resolve_secret=lambda ref: None,
        metrics=Metrics(registry),
        reconnect_initial_seconds=0.1,
        reconnect_max_seconds=0.3,
        on_change=lambda: changes.append(sorted(t.spec.name for t in tools.tools())),
    ) as tools:
        await tools.apply([spec("late", server.url, timeoutSeconds=2)])
        assert tools.tools() == []
        assert "cannot connect" in (tools.status()["late"].error or "")
        assert gauge(registry, "agent_mcp_server_up", "late") == 0
        try:
            server.start()
            await eventually(lambda: gauge(registry, "agent_mcp_tools", "late") == 4)
            assert gauge(registry, "agent_mcp_server_up", "late") == 1
            assert changes[-1] == [
                "late__count_calls",
                "late__echo",
                "late__fail",
                "late__slow",
            ]
        finally:
            server.stop()


async def test_apply_keeps_unchanged_servers_and_closes_removed_ones(
    toolset: McpToolset, demo: McpProcess, test_server: McpProcess, registry: CollectorRegistry
) -> None:
    await toolset.apply([spec("orders", demo.url), spec("test", test_server.url)])
    before = by_name(toolset.tools())

    await toolset.apply([spec("orders", demo.url), spec("test", test_server.url, timeoutSeconds=9)])
    after = by_name(toolset.tools())
    assert after["orders__lookup_order"] is before["orders__lookup_order"]
    assert after["test__echo"] is not before["test__echo"]

    await toolset.apply([spec("test", test_server.url, timeoutSeconds=9)])
    assert toolset.servers == ["test"]
    assert gauge(registry, "agent_mcp_server_up", "orders") is None
    with pytest.raises(ToolError, match="unavailable"):
        await before["orders__lookup_order"].invoke({"order_id": "OD-20240502"})
    assert await after["test__echo"].invoke({"text": "still here"}) == "still here"


async def run_agent(toolset: McpToolset, sim: Sim, message: str) -> RunResult:
    """One run of the agent loop on the simulator with the toolset's tools."""
    config = default_agent_config(sim.url)
    profile = config.profiles()[config.default_agent_name]
    # A toolbox is a mapping by name, read at each run's start (MCP tools come and go).
    agent = Agent(
        profile, config, LiteLLMClient.for_config(config), lambda: by_name(toolset.tools())
    )
    try:
        return await agent.run(RunRequest(message=message))
    finally:
        await close_llm_clients()


async def test_the_agent_answers_from_an_mcp_tool_the_model_called(
    toolset: McpToolset, demo: McpProcess, sim: Sim
) -> None:
    await toolset.apply([spec("orders", demo.url)])

    result = await run_agent(toolset, sim, "where is order OD-20240502?")

    assert [(s.kind, s.name, s.status) for s in result.steps] == [
        ("llm", "sim", "ok"),
        ("tool", "orders__lookup_order", "ok"),
        ("llm", "sim", "ok"),
    ]
    assert result.steps[1].input == '{"order_id": "OD-20240502"}'
    assert result.answer == (
        "Order OD-20240502 is shipped: DHL tracking number JD014600003828, "
        "estimated delivery 2024-05-07."
    )


async def test_a_run_goes_on_with_a_tool_error_when_the_server_is_gone(
    toolset: McpToolset, sim: Sim, log_dir: Path, registry: CollectorRegistry
) -> None:
    server = demo_process(log_dir).start()
    try:
        await toolset.apply([spec("orders", server.url)])
    finally:
        server.kill()

    result = await run_agent(toolset, sim, "where is order OD-20240502?")

    assert [(s.kind, s.name, s.status) for s in result.steps] == [
        ("llm", "sim", "ok"),
        ("tool", "orders__lookup_order", "error"),
        ("llm", "sim", "ok"),
    ]
    assert result.answer.startswith(
        "I could not use the orders__lookup_order tool (error: MCP server 'orders' is "
    )
    await eventually(lambda: gauge(registry, "agent_mcp_server_up", "orders") == 0)
