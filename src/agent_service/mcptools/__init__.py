"""MCP tool servers: the only package that imports the ``mcp`` SDK.

``McpToolset`` (``toolset``) connects to the configured servers (``spec.McpServerSpec``) over
Streamable HTTP through the SSRF guard (``egress``), lists their tools and offers them to the
agent as ``<server>__<tool>`` (``tools``, ``connection.McpTool``). ``demo`` is the demo server
of ``agent-service mcp-demo``.
"""

from agent_service.agentconfig.mcp import McpHeader, McpServerSpec
from agent_service.mcptools.connection import IDEMPOTENCY_META_KEY, McpTool, ServerStatus
from agent_service.mcptools.toolset import McpToolset

__all__ = [
    "IDEMPOTENCY_META_KEY",
    "McpHeader",
    "McpServerSpec",
    "McpTool",
    "McpToolset",
    "ServerStatus",
]
