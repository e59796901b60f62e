"""``ConfigHolder``: the config snapshot in force, swapped on a hot reload.

Built by ``open_runtime``; its ``apply`` is what the config reloader calls with each valid new
version. Runs read ``current`` once when they start: a run in flight keeps its snapshot, whose
HTTP sessions close only once no run can still be using them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from agent_service.agentconfig.model import ConfigVersion
from agent_service.mcptools import McpToolset
from agent_service.runtime.snapshot import Snapshot, SnapshotBuilder, close_later, close_sessions

RETIRE_MARGIN_SECONDS = 30.0
"""Added to the run timeout before a retired snapshot's sessions are closed."""


class ConfigHolder:
    """The config snapshot in force. ``apply`` (on the event loop) swaps in a new one; runs in
    flight keep theirs, whose sessions close after the run timeout. Build it with ``open``."""

    def __init__(
        self,
        build: SnapshotBuilder,
        first: Snapshot,
        on_applied: Callable[[Snapshot], None],
        mcp: McpToolset,
    ) -> None:
        self._build = build
        self._on_applied = on_applied
        self._mcp = mcp
        self._current = first
        self._retiring: set[asyncio.Task[None]] = set()
        on_applied(first)

    @classmethod
    async def open(
        cls,
        build: SnapshotBuilder,
        first: ConfigVersion,
        on_applied: Callable[[Snapshot], None],
        mcp: McpToolset,
    ) -> ConfigHolder:
        """The holder of ``first``, its MCP servers connected (or being retried) first."""
        await mcp.apply(first.config.mcp_servers)
        return cls(build, build(first), on_applied, mcp)

    @property
    def current(self) -> Snapshot:
        return self._current

    async def apply(self, version: ConfigVersion) -> None:
        """Serve new runs with ``version`` (called by the reloader on the event loop): its MCP
        servers first (unchanged ones keep their session), then its agents."""
        await self._mcp.apply(version.config.mcp_servers)
        previous, self._current = self._current, self._build(version)
        self._on_applied(self._current)
        if previous.sessions:
            grace = previous.config.limits.run_timeout_seconds + RETIRE_MARGIN_SECONDS
            task = asyncio.get_running_loop().create_task(close_later(previous.sessions, grace))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def close(self) -> None:
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        await close_sessions(self._current.sessions)
