"""One MCP server: its client session, tool discovery, reconnection, and the calls of its tools.

``toolset.McpToolset`` owns one ``ServerConnection`` per configured server. A connection runs
one supervisor task that holds the SDK ``Client`` open: the SDK builds on anyio task groups,
which must be entered and left by the same task, so runs never open or close it; they only send
requests through it, concurrently. The supervisor lists the tools when it connects and again
every refresh interval. When the server fails (a refused connection, a dropped stream, a
refresh that errors), the SDK tears the session down; the supervisor marks the server down
(``agent_mcp_server_up`` 0), keeps the last known tools, whose calls now fail as tool errors,
and reconnects with exponential backoff until it answers again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any, cast

import httpx2
import mcp_types
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from opentelemetry import propagate
from pydantic import ValidationError

from agent_service import __version__
from agent_service.agentconfig.mcp import McpServerSpec
from agent_service.agentconfig.spec import SecretRef
from agent_service.domain.errors import ToolError
from agent_service.domain.messages import ToolSpec
from agent_service.mcptools.base import (
    IDEMPOTENCY_META_KEY,
    Backoff,
    McpMetrics,
    SecretResolver,
    ServerStatus,
)
from agent_service.mcptools.egress import (
    AddressNotAllowedError,
    check_server_url,
    guarded_http_client,
)
from agent_service.mcptools.tools import DiscoveredTool, result_text, select_tools

log = logging.getLogger(__name__)

MAX_LIST_PAGES = 50
# A call's own deadline is the SDK's read timeout; this much more bounds the whole call in case
# the transport never answers at all (a torn-down stream is meant to answer, but a run must not
# depend on it).
CALL_GRACE_SECONDS = 5.0
# Socket reads wait for the slowest tool; the call's deadline is enforced above the socket.
READ_TIMEOUT_MARGIN_SECONDS = 30.0
CONNECT_TIMEOUT_CAP_SECONDS = 10.0
_CLIENT_INFO = mcp_types.Implementation(name="agent-service", version=__version__)
NOT_CONNECTED = "not connected yet"
"""The error of a server whose first connection attempt has not ended."""


class _RefreshFailedError(Exception):
    """The session must be rebuilt (a call found the connection closed)."""


class ServerConnection:
    """The client side of one MCP server, for one spec; ``start`` once, ``close`` once."""

    def __init__(
        self,
        spec: McpServerSpec,
        *,
        resolve_secret: SecretResolver,
        metrics: McpMetrics,
        refresh_interval: float,
        backoff: Backoff,
        on_tools_changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.spec = spec
        self._resolve_secret = resolve_secret
        self._metrics = metrics
        self._refresh_interval = refresh_interval
        self._backoff = backoff
        self._on_tools_changed = on_tools_changed
        self._client: Client | None = None
        self._tools: tuple[McpTool, ...] = ()
        self._error: str | None = NOT_CONNECTED
        self._closing = asyncio.Event()
        self._wake = asyncio.Event()
        self._broken: str | None = None
        self._first_attempt = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def tools(self) -> tuple[McpTool, ...]:
        """The tools last discovered (kept while the server is down: their calls fail)."""
        return self._tools

    @property
    def status(self) -> ServerStatus:
        return ServerStatus(up=self._client is not None, tools=len(self._tools), error=self._error)

    async def start(self) -> None:
        """Start the supervisor and wait for its first attempt to connect and list the tools.

        The wait is bounded (the spec's timeout, plus a margin): a server that does not answer
        leaves the process serving without its tools, and the supervisor keeps trying.
        """
        self._metrics.mcp_server_up(self.name, False)
        self._metrics.mcp_tools(self.name, 0)
        self._task = asyncio.get_running_loop().create_task(
            self._supervise(), name=f"mcp-{self.name}"
        )
        wait = self.spec.timeout_seconds + CONNECT_TIMEOUT_CAP_SECONDS
        with suppress(TimeoutError):
            await asyncio.wait_for(self._first_attempt.wait(), wait)

    async def close(self) -> None:
        """Close the session (from the supervisor, which opened it) and forget the server."""
        self._closing.set()
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), CALL_GRACE_SECONDS)
            except TimeoutError:
                self._task.cancel()
                with suppress(asyncio.CancelledError):
                    await self._task
        self._client = None
        self._metrics.mcp_server_removed(self.name)

    async def call(
        self, tool: str, arguments: dict[str, Any], meta: Mapping[str, Any] | None = None
    ) -> str:
        """``tools/call`` on this server; the result as text, or ``ToolError``."""
        client = self._client
        if client is None:
            raise ToolError(f"MCP server {self.name!r} is unavailable ({self._error})")
        timeout = self.spec.timeout_seconds
        request_meta = dict(meta or {})
        # The run's trace context (the execute_tool span) travels as W3C traceparent in _meta;
        # the SDK re-injects it from its own client span, a child of that one.
        propagate.inject(request_meta)
        try:
            async with asyncio.timeout(timeout + CALL_GRACE_SECONDS):
                result = await client.call_tool(
                    tool,
                    arguments,
                    read_timeout_seconds=timeout,
                    meta=cast(mcp_types.RequestParamsMeta, request_meta),
                )
        except TimeoutError:
            raise ToolError(self._no_answer(timeout)) from None
        except MCPError as exc:
            raise ToolError(self._refusal(exc, client, timeout)) from None
        except ValidationError:
            raise ToolError(f"MCP server {self.name!r} sent an invalid result") from None
        return result_text(result)

    def _refusal(self, exc: MCPError, client: Client, timeout: float) -> str:
        if exc.code == mcp_types.REQUEST_TIMEOUT:
            return self._no_answer(timeout)
        if exc.code == mcp_types.CONNECTION_CLOSED or "session terminated" in exc.message.lower():
            if client is self._client:  # not a late answer of a session already replaced
                self._break(exc.message)
            return f"MCP server {self.name!r} is unavailable ({exc.message})"
        return f"MCP server {self.name!r} refused the call: {exc.message}"

    def _no_answer(self, timeout: float) -> str:
        return f"no answer from MCP server {self.name!r} within {timeout:g} s"

    def _break(self, reason: str) -> None:
        """Have the supervisor rebuild the session now (a session the server forgot after a
        restart answers every request with an error instead of failing the transport)."""
        self._broken = reason
        self._wake.set()

    async def _supervise(self) -> None:
        attempt = 0
        while not self._closing.is_set():
            try:
                await self._session()
            except Exception as exc:  # every failure ends this session; the next one may work
                self._mark_down(describe_failure(exc))
            finally:
                was_up = self._client is not None
                self._client = None
                self._first_attempt.set()
            if self._closing.is_set():
                return
            # After a session that worked, reconnecting starts again from the shortest wait.
            attempt = 0 if was_up else attempt + 1
            await self._sleep(self._backoff.delay(attempt))

    async def _session(self) -> None:
        """One session: connect, list, then refresh on the interval until closed (returns) or
        failed (raises)."""
        spec = self.spec
        check_server_url(spec.url, spec.allow_private_networks)
        http = guarded_http_client(
            allow_private=spec.allow_private_networks,
            headers=self._headers(),
            connect_timeout=min(spec.timeout_seconds, CONNECT_TIMEOUT_CAP_SECONDS),
            read_timeout=spec.timeout_seconds + READ_TIMEOUT_MARGIN_SECONDS,
        )
        transport = streamable_http_client(spec.url, http_client=http)
        # cache=None: a refresh must reach the server, not the SDK's response cache.
        client = Client(
            transport,
            read_timeout_seconds=spec.timeout_seconds,
            client_info=_CLIENT_INFO,
            cache=None,
        )
        async with http, client:
            await self._discover(client)
            self._broken = None
            self._client = client
            self._mark_up()
            self._first_attempt.set()
            while True:
                await self._sleep(self._refresh_interval)
                if self._closing.is_set():
                    return
                if self._broken is not None:
                    raise _RefreshFailedError(self._broken)
                await self._discover(client)

    async def _discover(self, client: Client) -> None:
        listed: list[mcp_types.Tool] = []
        cursor: str | None = None
        for _ in range(MAX_LIST_PAGES):
            page = await client.list_tools(cursor=cursor)
            listed.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        offered, skipped = select_tools(self.name, listed, self.spec.include, self.spec.exclude)
        for reason in skipped:
            log.warning("MCP server %s: tool not offered: %s", self.name, reason)
        self._set_tools(offered)

    def _set_tools(self, offered: list[DiscoveredTool]) -> None:
        current = {tool.spec.name: tool for tool in self._tools}
        tools = tuple(
            current[d.spec.name] if _same(current.get(d.spec.name), d) else McpTool(self, d)
            for d in offered
        )
        changed = [t.spec for t in tools] != [t.spec for t in self._tools]
        self._tools = tools
        self._metrics.mcp_tools(self.name, len(tools))
        if changed:
            log.info(
                "MCP server %s offers %d tools: %s",
                self.name,
                len(tools),
                ", ".join(t.spec.name for t in tools) or "none",
            )
            self._on_tools_changed()

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, ref in self.spec.headers.items():
            value = self._resolve_secret(ref)
            if not value:
                # Never the secret itself: where it should come from.
                raise LookupError(f"header {name}: secret not found ({_where(ref)})")
            headers[name] = ref.prefix + value
        return headers

    def _mark_up(self) -> None:
        if self._error is not None:
            log.info("MCP server %s is up (%d tools)", self.name, len(self._tools))
        self._error = None
        self._metrics.mcp_server_up(self.name, True)

    def _mark_down(self, reason: str) -> None:
        if self._error != reason:
            log.warning("MCP server %s is unavailable: %s", self.name, reason)
        self._error = reason
        self._client = None
        self._metrics.mcp_server_up(self.name, False)

    async def _sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` unless woken (closing, or a call found the session broken)."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()
        if self._closing.is_set():
            self._wake.set()


class McpTool:
    """One MCP tool as an agent tool (``agent.ports.Tool``), named ``<server>__<tool>``.

    Calls go through the server's current session, so a tool keeps working across reconnects;
    while the server is down its calls fail with a tool error the model reads.
    """

    def __init__(self, connection: ServerConnection, discovered: DiscoveredTool) -> None:
        self._connection = connection
        self.server = discovered.server
        self.mcp_name = discovered.name
        self._spec = discovered.spec

    @property
    def spec(self) -> ToolSpec:
        return self._spec

    async def invoke(
        self,
        arguments: dict[str, Any],
        *,
        meta: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Call the tool. ``meta`` adds entries to the request's ``_meta``; ``idempotency_key``
        (e.g. ``<task_id>:<step>``) is sent as ``_meta["io.agent-service/idempotency-key"]``."""
        request_meta = dict(meta or {})
        if idempotency_key is not None:
            request_meta[IDEMPOTENCY_META_KEY] = idempotency_key
        return await self._connection.call(self.mcp_name, arguments, request_meta)


def _same(tool: McpTool | None, discovered: DiscoveredTool) -> bool:
    return tool is not None and tool.spec == discovered.spec


def _where(ref: SecretRef) -> str:
    if ref.env is not None:
        return f"environment variable {ref.env}"
    if ref.secret_key_ref is not None:
        return f"Secret {ref.secret_key_ref.name} key {ref.secret_key_ref.key}"
    return f"file {ref.file}"


def describe_failure(exc: BaseException) -> str:
    """A short, secret-free reason for a failed session, from the SDK's exception (group).

    The transport fails as an exception group wrapping httpx2 errors, which wrap the error that
    says what happened; an egress refusal is named first, since retrying cannot fix it.
    """
    causes = _causes(exc)
    for cause in causes:
        if isinstance(cause, AddressNotAllowedError):
            return f"egress refused: {cause}"
    for cause in causes:
        if isinstance(cause, MCPError):
            return cause.message
        if isinstance(cause, LookupError | _RefreshFailedError):
            return str(cause)
        if isinstance(cause, httpx2.ConnectError):
            return f"cannot connect ({cause})"
        if isinstance(cause, TimeoutError | httpx2.TimeoutException):
            return "timed out"
    first = causes[0]
    text = str(first).strip()
    return f"{type(first).__name__}: {text}" if text else type(first).__name__


def _causes(exc: BaseException) -> list[BaseException]:
    """The leaves of an exception group, each followed by the errors that caused it."""
    if isinstance(exc, BaseExceptionGroup):
        return [cause for inner in exc.exceptions for cause in _causes(inner)]
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
