"""Probing the MCPServers in the background, so a reconcile never waits for a server.

``McpProber`` runs its own event loop on a daemon thread. After each reconcile the renderer
hands it the MCP servers being served (``request``); a server with no fresh result (none yet,
its spec changed, or older than ``max_age``) is probed there with the pods' own client
(``mcptools.probe.list_server_tools``), and when a probe ends ``on_result`` is called on a
worker thread, so the renderer reconciles again and the status shows the tool count or
``MCPUnreachable``. A reconcile reads the latest result (``result``) and never blocks on one.

Header secrets are read through ``resolve`` (the controller may read the Secrets mounted into
the pods: ``kube.KubeCluster.secret_value``) before the probe is scheduled; a header from an
environment variable or a file exists only in the pods, so such a server is not probed and its
status says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

from agent_service.agentconfig.mcp import McpServerSpec
from agent_service.agentconfig.spec import SecretKeyRef, SecretRef
from agent_service.controller.ports import ProbeResult
from agent_service.mcptools.probe import list_server_tools

log = logging.getLogger(__name__)

SecretReader = Callable[[SecretKeyRef], str | None]


def _key(spec: McpServerSpec) -> str:
    return spec.model_dump_json()


def _unreadable(spec: McpServerSpec) -> str | None:
    """Why the controller cannot send ``spec``'s headers (a source only the pods have)."""
    for name, ref in spec.headers.items():
        if ref.env is not None:
            where = f"the environment variable {ref.env}"
        elif ref.file is not None:
            where = f"the file {ref.file}"
        else:
            continue
        return (
            f"not probed: header {name} comes from {where}, which only the api and worker pods have"
        )
    return None


class McpProber:
    """Background probes of MCP servers; ``start`` once, ``close`` at exit."""

    def __init__(
        self,
        *,
        resolve: SecretReader,
        max_age: float,
        on_result: Callable[[], object],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolve = resolve
        self._max_age = max_age
        self._on_result = on_result
        self._clock = clock
        self._lock = threading.Lock()
        self._results: dict[str, tuple[float, ProbeResult]] = {}
        self._pending: set[str] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="mcp-prober", daemon=True
        )

    def start(self) -> McpProber:
        self._thread.start()
        return self

    def close(self) -> None:
        """Cancel the probes in flight, stop the loop and close it."""
        if self._thread.is_alive():
            done = asyncio.run_coroutine_threadsafe(_cancel_others(), self._loop)
            with contextlib.suppress(Exception):
                done.result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()

    def result(self, spec: McpServerSpec) -> ProbeResult | None:
        """The latest result for exactly this spec (None: not probed yet)."""
        with self._lock:
            found = self._results.get(_key(spec))
        return found[1] if found is not None else None

    def request(self, specs: Sequence[McpServerSpec]) -> None:
        """Keep ``specs`` probed: schedule those without a fresh result; forget the others."""
        wanted = {_key(spec): spec for spec in specs}
        now = self._clock()
        due: list[tuple[str, McpServerSpec]] = []
        with self._lock:
            for key in set(self._results) - set(wanted):
                del self._results[key]
            for key, spec in wanted.items():
                found = self._results.get(key)
                fresh = found is not None and now - found[0] < self._max_age
                if key not in self._pending and not fresh:
                    self._pending.add(key)
                    due.append((key, spec))
        for key, spec in due:
            self._schedule(key, spec)

    def _schedule(self, key: str, spec: McpServerSpec) -> None:
        reason = _unreadable(spec)
        if reason is not None:
            self._store(key, ProbeResult(None, (), reason))
            return
        try:
            values = {ref: self._resolve(key) for ref, key in _secret_refs(spec)}
        except Exception as exc:  # the API failed: try again at the next request
            log.warning("MCP server %s: cannot read its header secrets: %s", spec.name, exc)
            with self._lock:
                self._pending.discard(key)
            return
        asyncio.run_coroutine_threadsafe(self._probe(key, spec, values), self._loop)

    async def _probe(
        self, key: str, spec: McpServerSpec, values: dict[SecretRef, str | None]
    ) -> None:
        try:
            listing = await list_server_tools(spec, values.get)
            result = ProbeResult(listing.reachable, listing.tools, listing.error or "")
        except Exception as exc:  # a probe must never take the loop down
            log.exception("MCP server %s: probe failed", spec.name)
            result = ProbeResult(False, (), f"probe failed: {type(exc).__name__}")
        self._store(key, result)

    def _store(self, key: str, result: ProbeResult) -> None:
        with self._lock:
            self._pending.discard(key)
            self._results[key] = (self._clock(), result)
        # The renderer talks to the API server: never on this loop, which other probes share.
        threading.Thread(target=self._notify, name="mcp-prober-result", daemon=True).start()

    def _notify(self) -> None:
        try:
            self._on_result()
        except Exception:  # the next resync tries again
            log.exception("reconcile after an MCP probe failed")


async def _cancel_others() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _secret_refs(spec: McpServerSpec) -> list[tuple[SecretRef, SecretKeyRef]]:
    return [(ref, ref.secret_key_ref) for ref in spec.headers.values() if ref.secret_key_ref]
