"""MCP tool servers: the only package that imports the ``mcp`` SDK.

``McpToolset`` (``toolset``) connects to the configured servers (``spec.McpServerSpec``) over
Streamable HTTP through the SSRF guard (``egress``), lists their tools and offers them to the
agent as ``<server>__<tool>`` (``tools``, ``connection.McpTool``). ``demo`` is the demo server
of ``agent-service mcp-demo``. The SDK is imported only once a config names a server.
"""

from typing import TYPE_CHECKING, Any

from agent_service.agentconfig.mcp import McpHeader, McpServerSpec
from agent_service.mcptools.base import IDEMPOTENCY_META_KEY, ServerStatus
from agent_service.mcptools.toolset import McpToolset

if TYPE_CHECKING:
    from agent_service.mcptools.connection import McpTool

__all__ = [
    "IDEMPOTENCY_META_KEY",
    "McpHeader",
    "McpServerSpec",
    "McpTool",
    "McpToolset",
    "ServerStatus",
]


def __getattr__(name: str) -> Any:
    # ``McpTool`` lives with the SDK-backed connection: imported on first use only (PEP 562).
    if name == "McpTool":
        from agent_service.mcptools.connection import McpTool  # noqa: PLC0415

        return McpTool
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
