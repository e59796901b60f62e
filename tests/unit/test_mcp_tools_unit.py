"""MCP tool names, filters and results as text, the reason of a failed session, the backoff.

Pure functions over the SDK's types (no server): ``mcptools.tools`` and parts of
``mcptools.connection``.
"""

from __future__ import annotations

from typing import Any

import httpcore2
import httpx2
import mcp_types
import pytest
from mcp import MCPError
from prometheus_client import CollectorRegistry

from agent_service.domain.errors import ToolError
from agent_service.mcptools.base import Backoff
from agent_service.mcptools.connection import describe_failure
from agent_service.mcptools.egress import AddressNotAllowedError
from agent_service.mcptools.tools import result_text, select_tools
from agent_service.observability.metrics import Metrics


def tool(name: str, schema: dict[str, Any] | None = None, description: str | None = "d") -> Any:
    return mcp_types.Tool(
        name=name,
        description=description,
        input_schema=schema if schema is not None else {"type": "object", "properties": {}},
    )


def test_tools_are_named_server__tool_and_keep_their_schema() -> None:
    schema = {"type": "object", "properties": {"order_id": {"type": "string"}}}
    offered, skipped = select_tools("orders", [tool("lookup_order", schema, "Find an order.")])
    assert skipped == []
    (found,) = offered
    assert (found.server, found.name) == ("orders", "lookup_order")
    assert found.spec.name == "orders__lookup_order"
    assert found.spec.description == "Find an order."
    assert found.spec.parameters == schema


def test_include_then_exclude_apply_to_server_names() -> None:
    listed = [tool("a"), tool("b"), tool("c")]
    names = lambda include, exclude: [  # noqa: E731
        t.name for t in select_tools("s", listed, include, exclude)[0]
    ]
    assert names([], []) == ["a", "b", "c"]
    assert names(["a", "c"], []) == ["a", "c"]
    assert names([], ["b"]) == ["a", "c"]
    assert names(["a", "b"], ["b"]) == ["a"]


def test_unusable_tools_are_skipped_with_a_reason() -> None:
    listed = [
        tool("dotted.name"),
        tool("x" * 70),
        tool("scalar", {"type": "string"}),
        tool("twice"),
        tool("twice"),
        tool("ok", {}),
    ]
    offered, skipped = select_tools("s", listed)
    assert [t.name for t in offered] == ["twice", "ok"]
    assert offered[1].spec.parameters == {"type": "object", "properties": {}}
    assert skipped == [
        "dotted.name: 's__dotted.name' has characters a function name cannot have",
        f"{'x' * 70}: 's__{'x' * 70}' is longer than 64 characters",
        "scalar: its input schema is not an object",
        "twice: listed twice",
    ]


def test_a_missing_description_falls_back_to_the_name() -> None:
    (found,), _ = select_tools("s", [tool("plain", description=None)])
    assert found.spec.description == "plain"


def text(value: str) -> mcp_types.TextContent:
    return mcp_types.TextContent(type="text", text=value)


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (mcp_types.CallToolResult(content=[text("a"), text("b")]), "a\nb"),
        (
            mcp_types.CallToolResult(
                content=[text('{\n  "status": "shipped"\n}')],
                structured_content={"status": "shipped"},
            ),
            '{"status": "shipped"}',
        ),
        (mcp_types.CallToolResult(content=[], structured_content={"n": 1}), '{"n": 1}'),
        (
            mcp_types.CallToolResult(content=[text("a summary")], structured_content={"n": 1}),
            "a summary",
        ),
        (
            mcp_types.CallToolResult(
                content=[
                    mcp_types.ImageContent(type="image", data="AAAA", mime_type="image/png"),
                    mcp_types.EmbeddedResource(
                        type="resource",
                        resource=mcp_types.TextResourceContents(uri="file:///a.txt", text="inside"),
                    ),
                    mcp_types.ResourceLink(type="resource_link", name="r", uri="file:///b.txt"),
                ]
            ),
            "[image: image/png]\ninside\n[resource link: file:///b.txt]",
        ),
        (mcp_types.CallToolResult(content=[]), ""),
    ],
)
def test_results_become_text(result: mcp_types.CallToolResult, expected: str) -> None:
    assert result_text(result) == expected


def test_is_error_becomes_a_tool_error() -> None:
    with pytest.raises(ToolError, match=r"^out of stock$"):
        result_text(mcp_types.CallToolResult(content=[text("out of stock")], is_error=True))
    with pytest.raises(ToolError, match="the tool reported an error"):
        result_text(mcp_types.CallToolResult(content=[], is_error=True))


def _raised(exc: BaseException, cause: BaseException) -> BaseException:
    try:
        raise exc from cause
    except BaseException as raised:
        return raised


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (
            ExceptionGroup(
                "tg",
                [_raised(httpx2.ConnectError("All connection attempts failed"), OSError(111))],
            ),
            "cannot connect (All connection attempts failed)",
        ),
        (
            ExceptionGroup("tg", [AddressNotAllowedError("evil resolves to no address")]),
            "egress refused: evil resolves to no address",
        ),
        (
            _raised(httpcore2.ConnectError("x"), AddressNotAllowedError()),
            "egress refused: address not allowed",
        ),
        (MCPError(-32000, "Connection closed"), "Connection closed"),
        (
            LookupError("header X: secret not found (file /s)"),
            "header X: secret not found (file /s)",
        ),
        (TimeoutError(), "timed out"),
        (RuntimeError("odd"), "RuntimeError: odd"),
        (ValueError(), "ValueError"),
    ],
)
def test_a_failed_session_is_described_in_a_few_words(exc: BaseException, reason: str) -> None:
    assert describe_failure(exc) == reason


def test_backoff_doubles_up_to_its_maximum_with_jitter() -> None:
    backoff = Backoff(initial=0.5, maximum=4.0)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 4.0), (500, 4.0)]:
        for _ in range(20):
            assert ceiling / 2 <= backoff.delay(attempt) <= ceiling


def test_mcp_gauges_are_named_per_server_and_removed_with_it() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.mcp_server_up("orders", True)
    metrics.mcp_tools("orders", 3)
    value = metrics.registry.get_sample_value
    assert value("agent_mcp_server_up", {"server": "orders"}) == 1
    assert value("agent_mcp_tools", {"server": "orders"}) == 3
    metrics.mcp_server_up("orders", False)
    assert value("agent_mcp_server_up", {"server": "orders"}) == 0
    metrics.mcp_server_removed("orders")
    metrics.mcp_server_removed("never-seen")
    assert value("agent_mcp_server_up", {"server": "orders"}) is None
    assert value("agent_mcp_tools", {"server": "orders"}) is None
