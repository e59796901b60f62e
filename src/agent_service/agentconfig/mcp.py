"""MCP tool servers in the agent config: where each server is and how to reach it.

A server is reached over Streamable HTTP by the ``mcptools`` package; its tools are discovered
with ``tools/list`` and offered to agents as ``<server>__<tool>``. Header values are secret
references (a bearer token, say), resolved at connect time and never logged.
"""

from __future__ import annotations

from pydantic import Field

from agent_service.agentconfig.spec import NAME_PATTERN, SecretRef, Spec

SERVER_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$"
"""Server names: short, no dots or underscores, so ``<server>__<tool>`` splits unambiguously."""
HEADER_NAME_PATTERN = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$"
"""An HTTP header name (RFC 9110 token)."""
TOOL_SEPARATOR = "__"


class McpServerSpec(Spec):
    """One MCP tool server (Streamable HTTP)."""

    name: str = Field(
        pattern=SERVER_NAME_PATTERN,
        description="Server name; its tools are offered to the model as <name>__<tool>.",
    )
    url: str = Field(
        pattern=r"^https?://",
        max_length=2048,
        description="The server's Streamable HTTP endpoint, e.g. http://orders-mcp:8000/mcp.",
    )
    headers: dict[str, SecretRef] = Field(
        default_factory=dict,
        max_length=32,
        description="Request headers whose values come from secrets (e.g. Authorization: a "
        "secretKeyRef holding 'Bearer ...'). The caller's own credentials are never forwarded.",
    )
    timeout_seconds: float = Field(
        default=30.0, gt=0, le=600, description="Timeout of one tools/call (and of discovery)."
    )
    include: list[str] = Field(
        default_factory=list,
        max_length=500,
        description="Tool names (as the server names them) to offer; empty: every tool.",
    )
    exclude: list[str] = Field(
        default_factory=list, max_length=500, description="Tool names never offered."
    )
    allow_private_networks: bool = Field(
        default=False,
        description="Let this server's URL reach loopback, link-local and private addresses "
        "(SSRF guard; in-cluster Services need it).",
    )


def mcp_tool_name(server: str, tool: str) -> str:
    """The name the model sees for ``tool`` of ``server``."""
    return f"{server}{TOOL_SEPARATOR}{tool}"


def offers(tool: str, include: list[str], exclude: list[str]) -> bool:
    """Whether an include/exclude filter lets ``tool`` through (empty include: all)."""
    return (not include or tool in include) and tool not in exclude


__all__ = ["NAME_PATTERN", "McpServerSpec", "mcp_tool_name", "offers"]
