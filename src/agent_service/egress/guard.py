"""The SSRF guard: which addresses outgoing HTTP may reach, checked on URLs and at connect time.

``check_url`` refuses bad schemes and literal IP hosts (aiohttp connects to those without asking
a resolver); ``GuardedResolver`` filters every DNS answer, so the address checked is the address
connected to and DNS rebinding cannot slip past. ``egress.session.create_guarded_session`` wires
both for HTTP tools and webhooks; the API and the controller call ``check_url`` on URLs they are
given (webhook URLs, tool and MCP server URLs).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult

from agent_service.domain.errors import ToolError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# Hosts such as 2130706433, 0x7f.1 or 127.1: legacy numeric IPv4 forms that getaddrinfo maps
# onto an address while ipaddress does not recognise them as one.
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*\.?$", re.IGNORECASE)


class AddressNotAllowedError(ToolError, OSError):
    """A URL or resolved address the SSRF policy refuses.

    An ``OSError`` too, so aiohttp treats it like any resolver failure (it wraps it in
    ``ClientConnectorDNSError``) instead of tripping over an unexpected exception type.
    """

    def __init__(self, message: str = "address not allowed") -> None:
        super().__init__(message)


def is_address_allowed(ip: str, allow_private: bool) -> bool:
    """Whether ``ip`` may be connected to: public unicast only, unless ``allow_private``.

    Refuses loopback, link-local (cloud metadata at 169.254.169.254 included), private,
    shared (100.64/10), unspecified, multicast and reserved addresses, also when embedded in an
    IPv6 address (IPv4-mapped, 6to4, NAT64). Text that is not an IP address is refused.
    """
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if allow_private:
        return True
    return all(_is_public(candidate) for candidate in _with_embedded(address))


def check_url(url: str, allow_private: bool) -> None:
    """Raise ``AddressNotAllowedError`` unless ``url`` is http(s) with an allowed host.

    A literal IP host is checked here; a host name is checked when it resolves
    (``GuardedResolver``), since only then is the address known.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise AddressNotAllowedError("invalid URL") from None
    if parts.scheme not in ("http", "https"):
        raise AddressNotAllowedError(f"URL scheme {parts.scheme!r} is not allowed (http or https)")
    if not host:
        raise AddressNotAllowedError("URL has no host")
    if _NUMERIC_HOST.match(host) and not _is_ip(host):
        raise AddressNotAllowedError(f"host {host!r} is not a canonical IP address")
    if _is_ip(host) and not is_address_allowed(host, allow_private):
        raise AddressNotAllowedError()


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that drops the addresses the SSRF policy refuses.

    Wraps another resolver (aiohttp's ``ThreadedResolver`` in ``create_tool_session``); raises
    ``AddressNotAllowedError`` when no resolved address is allowed.
    """

    def __init__(self, inner: AbstractResolver, allow_private: bool) -> None:
        self._inner = inner
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if is_address_allowed(r["host"], self._allow_private)]
        if not allowed:
            raise AddressNotAllowedError()
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _with_embedded(address: IPAddress) -> list[IPAddress]:
    """The addresses that decide where ``address`` routes: itself or the IPv4 address it carries.

    IPv4-mapped and NAT64 addresses are judged by their IPv4 address alone (NAT64's prefix is
    "reserved", yet a DNS64 resolver answers with it for every public IPv4 host).
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return [address.ipv4_mapped]
        if address in _NAT64:
            return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
        if address.sixtofour is not None:
            return [address, address.sixtofour]
    return [address]


def _is_public(address: IPAddress) -> bool:
    return address.is_global and not (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_unspecified
        or address.is_multicast
        or address.is_reserved
    )
