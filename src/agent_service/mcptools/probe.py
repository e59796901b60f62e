"""One look at an MCP server: connect as the pods would, list its tools, disconnect.

Called by the controller (``controller.probe.McpProber``) to fill an MCPServer's status: the
tools it offers, or why it cannot be reached. The connection is the pods' own
(``connection.ServerConnection``: the SSRF guard, the spec's headers and timeout, every page of
``tools/list``, the include/exclude filter), held only for the one listing.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_service.agentconfig.mcp import McpServerSpec
from agent_service.mcptools.base import Backoff, NullMcpMetrics, SecretResolver
from agent_service.mcptools.connection import NOT_CONNECTED, ServerConnection

# The supervisor would refresh after this; the probe closes long before.
_NO_REFRESH_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class Listing:
    """What one probe found: the tools offered (their MCP names), or why there are none."""

    reachable: bool
    tools: tuple[str, ...]
    error: str | None


async def list_server_tools(spec: McpServerSpec, resolve_secret: SecretResolver) -> Listing:
    """Connect to ``spec``'s server, list the tools it offers, disconnect.

    Bounded by the spec's ``timeoutSeconds`` (plus the connection's margin); never raises for
    what the server or the network does: an unreachable server is ``reachable=False`` with a
    short, secret-free reason.
    """
    connection = ServerConnection(
        spec,
        resolve_secret=resolve_secret,
        metrics=NullMcpMetrics(),
        refresh_interval=_NO_REFRESH_SECONDS,
        backoff=Backoff(),
    )
    try:
        await connection.start()
        status = connection.status
        names = tuple(tool.mcp_name for tool in connection.tools)
    finally:
        await connection.close()
    if status.up:
        return Listing(True, names, None)
    error = status.error
    if error in (None, NOT_CONNECTED):  # the first attempt did not end within the wait
        error = f"no answer within {spec.timeout_seconds:g} s"
    return Listing(False, (), error)
