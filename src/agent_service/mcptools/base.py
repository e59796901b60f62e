"""What the MCP toolset needs before any server is connected: no ``mcp`` SDK import here.

``toolset.McpToolset`` is built by every process; the SDK (~40 MB of RSS, ~0.8 s of import) is
imported by ``connection`` only when a config names an MCP server (``McpToolset.apply``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from agent_service.agentconfig.spec import SecretRef

SecretResolver = Callable[[SecretRef], str | None]
"""Reads a secret reference (``config.resolve_secret`` bound to the secrets directory)."""

IDEMPOTENCY_META_KEY = "io.agent-service/idempotency-key"
"""The ``_meta`` key carrying a call's idempotency key, for servers that deduplicate."""


class McpMetrics(Protocol):
    """What a connection reports (``observability.metrics.Metrics`` implements it)."""

    def mcp_server_up(self, server: str, up: bool) -> None: ...

    def mcp_tools(self, server: str, count: int) -> None: ...

    def mcp_server_removed(self, server: str) -> None: ...


class NullMcpMetrics:
    """Records nothing (tools built without a metrics registry)."""

    def mcp_server_up(self, server: str, up: bool) -> None:
        return None

    def mcp_tools(self, server: str, count: int) -> None:
        return None

    def mcp_server_removed(self, server: str) -> None:
        return None


@dataclass(frozen=True)
class Backoff:
    """Waits between reconnection attempts: doubling from ``initial`` up to ``maximum``, each
    drawn between half and all of it so that many processes do not retry in step."""

    initial: float = 0.5
    maximum: float = 30.0

    def delay(self, attempt: int) -> float:
        ceiling: float = min(self.maximum, self.initial * 2.0 ** min(attempt, 30))
        return ceiling / 2 + random.random() * ceiling / 2  # noqa: S311  # jitter, not crypto


@dataclass(frozen=True)
class ServerStatus:
    """A server as a process sees it now (for logs, status conditions and tests)."""

    up: bool
    tools: int
    error: str | None
