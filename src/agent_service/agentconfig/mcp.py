"""MCP tool servers in the agent config: where each is, how to authenticate, which tools to offer.

camelCase on the wire, frozen, unknown fields refused, every field described with its bounds,
because it becomes the ``mcpServers`` entries of the config file and the schema of the
``MCPServer`` resource. ``mcptools.McpToolset.apply`` takes a list of them; the model sees a
server's tools as ``<server>__<tool>``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from agent_service.agentconfig.spec import SecretRef, Spec

# A DNS label (the name of an MCPServer resource) without dots, short enough that
# "<server>__<tool>" leaves room for a tool name within the 64 characters of a function name.
SERVER_NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$"
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,128}$"
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
# Headers the transport sets itself (or that would change what a request means): a config may
# not override them.
RESERVED_HEADERS = frozenset(
    {
        "accept",
        "connection",
        "content-length",
        "content-type",
        "host",
        "last-event-id",
        "mcp-protocol-version",
        "mcp-session-id",
        "transfer-encoding",
        "upgrade",
    }
)


class McpHeader(SecretRef):
    """A request header's value, read from a secret (never written in the config itself).

    ``prefix`` is put before the secret, so a Secret holding only a token can give
    ``Authorization: Bearer <token>``.
    """

    prefix: str = Field(
        default="",
        max_length=64,
        pattern=r"^[\x20-\x7e]*$",
        description="Text put before the secret's value, e.g. `Bearer ` (printable ASCII).",
    )


class McpServerSpec(Spec):
    """An MCP tool server reached over Streamable HTTP; its tools are offered as
    ``<name>__<tool>``."""

    name: str = Field(
        pattern=SERVER_NAME_PATTERN,
        description="Server name: lowercase letters, digits and `-`, at most 32 characters. "
        "The model sees its tools as `<name>__<tool>`.",
    )
    url: str = Field(
        pattern=r"^https?://",
        max_length=2048,
        description="The Streamable HTTP endpoint, e.g. `http://orders-mcp:8000/mcp`.",
    )
    headers: dict[str, McpHeader] = Field(
        default_factory=dict,
        max_length=32,
        description="Request headers whose values come from secrets, e.g. `Authorization` from "
        "a Secret key with prefix `Bearer `. The caller's own API key is never sent.",
    )
    timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="Longest wait for one tool call, for connecting and for listing tools.",
    )
    include: list[str] = Field(
        default_factory=list,
        max_length=256,
        description="Tool names (as the server names them) to offer; empty: every tool.",
    )
    exclude: list[str] = Field(
        default_factory=list,
        max_length=256,
        description="Tool names (as the server names them) never offered, applied after `include`.",
    )
    allow_private_networks: bool = Field(
        default=False,
        description="Let this server be reached on loopback, link-local and private addresses "
        "(SSRF guard); needed for a server inside the cluster.",
    )

    @field_validator("url")
    @classmethod
    def _no_credentials_in_url(cls, url: str) -> str:
        # The URL shows up in logs, status and `kubectl get`: credentials go in headers.
        if "@" in urlsplit(url).netloc:
            raise ValueError("the URL must not hold credentials: use headers from a secret")
        return url

    @field_validator("headers")
    @classmethod
    def _header_names(cls, headers: dict[str, McpHeader]) -> dict[str, McpHeader]:
        for name in headers:
            if not _HEADER_NAME.match(name):
                raise ValueError(f"header {name!r} is not a valid HTTP header name")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by the MCP transport itself")
        lowered = [name.lower() for name in headers]
        if len(set(lowered)) != len(lowered):
            raise ValueError("header names must be unique (ignoring case)")
        return headers

    @field_validator("include", "exclude")
    @classmethod
    def _tool_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not re.match(TOOL_NAME_PATTERN, name):
                raise ValueError(f"{name!r} is not a valid MCP tool name")
        return names

    @model_validator(mode="after")
    def _filters_overlap(self) -> McpServerSpec:
        both = sorted(set(self.include) & set(self.exclude))
        if both:
            raise ValueError(f"tools both included and excluded: {', '.join(both)}")
        return self


def offers(tool: str, include: list[str], exclude: list[str]) -> bool:
    """Whether an include/exclude filter lets ``tool`` through (empty include: all)."""
    return (not include or tool in include) and tool not in exclude
