"""The SSRF guard applied to MCP servers: the one place ``mcptools`` uses the egress policy.

The MCP SDK speaks HTTP through ``httpx2``, not aiohttp, so the guard of ``egress.guard`` is
fitted in at httpx2's lowest seam: a network backend that resolves the host itself, drops every
address the policy refuses and connects to an allowed one. The address checked is the address
connected to, so DNS rebinding cannot slip past; TLS still verifies the host name (SNI). A literal
IP host is checked on the URL before any connection (``check_server_url``).

``connection.ServerConnection`` calls ``guarded_http_client`` for each connection attempt.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping

import anyio
import httpcore2
import httpx2

from agent_service.egress.guard import AddressNotAllowedError, check_url, is_address_allowed

__all__ = ["AddressNotAllowedError", "check_server_url", "guarded_http_client"]

MAX_CONNECTIONS = 100


def check_server_url(url: str, allow_private: bool) -> None:
    """Raise ``AddressNotAllowedError`` unless ``url`` is http(s) with an allowed literal host.

    Host names are checked when they resolve, by the client of ``guarded_http_client``.
    """
    check_url(url, allow_private)


def guarded_http_client(
    *,
    allow_private: bool,
    headers: Mapping[str, str],
    connect_timeout: float,
    read_timeout: float,
) -> httpx2.AsyncClient:
    """An httpx2 client whose every connection goes through the SSRF-guarded backend.

    No proxy from the environment (it would connect on our behalf, unchecked) and no redirects
    (the MCP transport follows same-origin ones itself). ``read_timeout`` bounds one read on a
    socket, so it must exceed the longest tool call: the caller's own timeout is the real bound.
    """
    timeout = httpx2.Timeout(connect_timeout, read=read_timeout)
    return httpx2.AsyncClient(
        transport=_GuardedTransport(allow_private),
        headers=dict(headers),
        timeout=timeout,
        trust_env=False,
        follow_redirects=False,
    )


class _GuardedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport on a connection pool that connects through ``_GuardedBackend``."""

    def __init__(self, allow_private: bool) -> None:
        super().__init__(trust_env=False)
        # httpx2's transport has no network_backend argument; its pool is swapped for one with
        # the guarded backend (tests/integration/test_mcp_egress.py proves the swap holds).
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            max_connections=MAX_CONNECTIONS,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(allow_private),
        )


class _GuardedBackend(httpcore2.AsyncNetworkBackend):
    """Resolves a host, keeps the addresses the SSRF policy allows, connects to the first that
    answers. Unix sockets are refused: a server is reached over TCP only."""

    def __init__(self, allow_private: bool) -> None:
        self._allow_private = allow_private
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError:
            raise httpcore2.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:
            raise httpcore2.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses = _unique(str(info[4][0]) for info in infos)
        allowed = [a for a in addresses if is_address_allowed(a, self._allow_private)]
        if not allowed:
            raise AddressNotAllowedError(f"{host} resolves to no address the egress policy allows")
        failure: Exception | None = None
        for address in allowed:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore's interface
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise AddressNotAllowedError("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _unique(addresses: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(addresses))
