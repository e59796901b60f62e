"""Every MCP server of a process: the connections of the config in force, and their tools.

The process runtime opens one ``McpToolset`` (an async context manager) and calls ``apply``
with the ``mcpServers`` of each config it loads: servers whose spec did not change keep their
connection and session, new ones are connected and their tools listed before ``apply``
returns, and removed or changed ones are closed. Agents take their tools from ``tools`` or
``tools_for`` when they are built; ``on_change`` tells the runtime when a refresh changed the
tools, so it can build the agents again. A process whose configs name no MCP server never
imports the ``mcp`` SDK (``base``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

from agent_service.agent.ports import Tool
from agent_service.agentconfig.mcp import McpServerSpec
from agent_service.mcptools.base import (
    Backoff,
    McpMetrics,
    NullMcpMetrics,
    SecretResolver,
    ServerStatus,
)

if TYPE_CHECKING:
    from agent_service.mcptools.connection import McpTool, ServerConnection

log = logging.getLogger(__name__)


class McpToolset:
    """The MCP servers of one process and their tools; ``apply`` a config's servers to it."""

    def __init__(
        self,
        *,
        resolve_secret: SecretResolver,
        metrics: McpMetrics | None = None,
        refresh_interval_seconds: float = 60.0,
        reconnect_initial_seconds: float = 0.5,
        reconnect_max_seconds: float = 30.0,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._resolve_secret = resolve_secret
        self._metrics: McpMetrics = metrics if metrics is not None else NullMcpMetrics()
        self._refresh = refresh_interval_seconds
        self._backoff = Backoff(reconnect_initial_seconds, reconnect_max_seconds)
        self._on_change = on_change
        self._connections: dict[str, ServerConnection] = {}
        self._lock = asyncio.Lock()
        self._closed = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def servers(self) -> list[str]:
        return list(self._connections)

    def status(self) -> dict[str, ServerStatus]:
        """Each server's state: up or not, tools offered, the last failure."""
        return {name: conn.status for name, conn in self._connections.items()}

    def tools(self) -> list[Tool]:
        """The tools of every server, in config order, each as ``<server>__<tool>``."""
        return [tool for conn in self._connections.values() for tool in conn.tools]

    def tools_for(
        self, server: str, include: Sequence[str] = (), exclude: Sequence[str] = ()
    ) -> list[Tool]:
        """One server's tools, filtered by their MCP names (an agent's own selection);
        ``KeyError`` for a server that is not configured."""
        selected: list[McpTool] = [
            tool
            for tool in self._connections[server].tools
            if (not include or tool.mcp_name in include) and tool.mcp_name not in exclude
        ]
        return list(selected)

    async def apply(self, specs: Sequence[McpServerSpec]) -> None:
        """Serve ``specs`` from now on: keep unchanged servers, connect new ones (waiting for
        their first ``tools/list``, bounded by their timeout), close the others.

        ``ValueError`` for duplicate server names (the config model refuses them first).
        """
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError("duplicate MCP server names")
        async with self._lock:
            if self._closed:
                raise RuntimeError("the MCP toolset is closed")
            wanted = {spec.name: spec for spec in specs}
            stale = [
                conn for name, conn in self._connections.items() if wanted.get(name) != conn.spec
            ]
            for conn in stale:
                del self._connections[conn.name]
            await asyncio.gather(*(conn.close() for conn in stale))
            fresh = [self._connection(spec) for spec in specs if spec.name not in self._connections]
            connections = self._connections | {conn.name: conn for conn in fresh}
            # Config order, kept connections included.
            self._connections = {name: connections[name] for name in wanted}
            await asyncio.gather(*(conn.start() for conn in fresh))
        if stale or fresh:
            log.info(
                "MCP servers applied: %s (new %d, closed %d)",
                ", ".join(self._connections) or "none",
                len(fresh),
                len(stale),
            )
            self._changed()

    async def close(self) -> None:
        """Close every session; the toolset cannot be used afterwards."""
        async with self._lock:
            self._closed = True
            connections, self._connections = list(self._connections.values()), {}
            await asyncio.gather(*(conn.close() for conn in connections))

    def _connection(self, spec: McpServerSpec) -> ServerConnection:
        # The SDK is imported with the first server a config names, not before.
        from agent_service.mcptools.connection import ServerConnection  # noqa: PLC0415

        return ServerConnection(
            spec,
            resolve_secret=self._resolve_secret,
            metrics=self._metrics,
            refresh_interval=self._refresh,
            backoff=self._backoff,
            on_tools_changed=self._changed,
        )

    def _changed(self) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change()
        except Exception:  # a listener's bug must not stop discovery
            log.exception("MCP tools changed: listener failed")
