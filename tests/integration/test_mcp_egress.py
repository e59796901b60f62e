"""The SSRF guard on MCP servers, against the real test server on loopback.

Loopback is private, so without ``allowPrivateNetworks`` a server there must be refused: a
literal IP on the URL, and a host name (``localhost``) when it resolves, which proves the
guarded connection pool is the one the SDK's HTTP client uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agent_service.mcptools import McpServerSpec, McpToolset
from tests.mcp_processes import McpProcess, counting_process, started

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(log_dir: Path) -> Iterator[McpProcess]:
    yield from started(counting_process(log_dir))


@pytest.fixture
async def toolset() -> AsyncIterator[McpToolset]:
    async with McpToolset(resolve_secret=lambda ref: None, reconnect_initial_seconds=5) as tools:
        yield tools


def spec(url: str, allow_private: bool) -> McpServerSpec:
    return McpServerSpec(name="guarded", url=url, allow_private_networks=allow_private)


async def test_a_literal_loopback_address_is_refused(
    toolset: McpToolset, server: McpProcess
) -> None:
    await toolset.apply([spec(server.url, allow_private=False)])

    status = toolset.status()["guarded"]
    assert not status.up
    assert status.error == "egress refused: address not allowed"
    assert toolset.tools() == []


async def test_a_name_resolving_to_loopback_is_refused_at_connect_time(
    toolset: McpToolset, server: McpProcess
) -> None:
    url = f"http://localhost:{server.port}/mcp"
    await toolset.apply([spec(url, allow_private=False)])

    status = toolset.status()["guarded"]
    assert not status.up
    assert status.error == (
        "egress refused: localhost resolves to no address the egress policy allows"
    )
    assert server.calls() == []


async def test_private_networks_can_be_allowed_per_server(
    toolset: McpToolset, server: McpProcess
) -> None:
    await toolset.apply([spec(f"http://localhost:{server.port}/mcp", allow_private=True)])

    assert toolset.status()["guarded"].up
    assert len(toolset.tools()) == 4
