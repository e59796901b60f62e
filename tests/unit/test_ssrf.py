"""The SSRF policy: the address table, URL checks and the filtering resolver (no network)."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from agent_service.agentconfig.model import HttpToolSpec
from agent_service.domain.errors import ToolError
from agent_service.egress.guard import (
    AddressNotAllowedError,
    GuardedResolver,
    check_url,
    is_address_allowed,
)
from agent_service.egress.session import create_guarded_session
from agent_service.httptools.client import build_http_tools

REFUSED = [
    "127.0.0.1",
    "127.255.0.9",
    "::1",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "169.254.169.254",
    "fe80::1",
    "fe80::1%eth0",
    "fd00::1",
    "fc00::1",
    "0.0.0.0",
    "::",
    "224.0.0.1",
    "ff02::1",
    "240.0.0.1",
    "255.255.255.255",
    "100.64.0.1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "64:ff9b::7f00:1",
    "2002:7f00:1::",
]
ALLOWED = ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("ip", REFUSED)
def test_private_and_special_addresses_refused(ip: str) -> None:
    assert not is_address_allowed(ip, allow_private=False)


@pytest.mark.parametrize("ip", REFUSED + ALLOWED)
def test_allow_private_allows_every_address(ip: str) -> None:
    assert is_address_allowed(ip, allow_private=True)


@pytest.mark.parametrize("ip", ALLOWED)
def test_public_addresses_allowed(ip: str) -> None:
    assert is_address_allowed(ip, allow_private=False)


@pytest.mark.parametrize("text", ["localhost", "", "999.1.1.1", "1.2.3"])
def test_text_that_is_no_address_is_refused(text: str) -> None:
    assert not is_address_allowed(text, allow_private=True)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/tool",
        "https://api.example.com:8443/x?y=1",
        "http://8.8.8.8/",
        "http://[2606:4700::1111]/",
        "http://localhost:8080/",  # names are checked when they resolve
    ],
)
def test_urls_passing_the_static_check(url: str) -> None:
    check_url(url, allow_private=False)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/", "address not allowed"),
        ("http://[::1]/", "address not allowed"),
        ("http://169.254.169.254/latest/meta-data/", "address not allowed"),
        ("http://[::ffff:10.0.0.1]/", "address not allowed"),
        ("http://2130706433/", "not a canonical IP address"),
        ("http://0x7f.1/", "not a canonical IP address"),
        ("http://127.1/", "not a canonical IP address"),
        ("ftp://example.com/", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("gopher://example.com/", "scheme 'gopher'"),
        ("http:///path", "no host"),
        ("http://[bad/", "invalid URL"),
    ],
)
def test_urls_refused(url: str, reason: str) -> None:
    with pytest.raises(AddressNotAllowedError, match=reason):
        check_url(url, allow_private=False)


def test_private_literal_allowed_when_private_networks_are() -> None:
    check_url("http://127.0.0.1:8080/", allow_private=True)


def test_refusal_is_a_tool_error_and_an_os_error() -> None:
    assert issubclass(AddressNotAllowedError, ToolError)
    assert issubclass(AddressNotAllowedError, OSError)


class FakeResolver(AbstractResolver):
    """Answers every name with fixed addresses, like a DNS server an attacker controls."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = addresses
        self.closed = False

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in self.addresses
        ]

    async def close(self) -> None:
        self.closed = True


async def test_resolver_drops_refused_addresses() -> None:
    resolver = GuardedResolver(
        FakeResolver("127.0.0.1", "8.8.8.8", "::1", "2606:4700::1111"), False
    )
    results = await resolver.resolve("rebind.example", 443)
    assert [r["host"] for r in results] == ["8.8.8.8", "2606:4700::1111"]


async def test_resolver_raises_when_nothing_is_allowed() -> None:
    resolver = GuardedResolver(FakeResolver("127.0.0.1", "169.254.169.254"), False)
    with pytest.raises(AddressNotAllowedError, match="address not allowed"):
        await resolver.resolve("metadata.example", 80)


async def test_resolver_keeps_everything_when_private_allowed() -> None:
    inner = FakeResolver("127.0.0.1", "10.0.0.1")
    resolver = GuardedResolver(inner, True)
    assert len(await resolver.resolve("internal.example", 80)) == 2
    await resolver.close()
    assert inner.closed


SPEC = HttpToolSpec(name="echo", description="Echo.", url="http://example.com/echo")


async def test_build_http_tools_needs_a_guarded_session_with_the_same_policy() -> None:
    guarded = create_guarded_session(allow_private_networks=False)
    try:
        tools = build_http_tools([SPEC], allow_private_networks=False, session=guarded)
        assert [t.spec.name for t in tools] == ["echo"]
        with pytest.raises(ValueError, match="create_guarded_session"):
            build_http_tools([SPEC], allow_private_networks=True, session=guarded)
    finally:
        await guarded.close()


async def test_build_http_tools_refuses_a_plain_session() -> None:
    plain = aiohttp.ClientSession()
    try:
        with pytest.raises(ValueError, match="create_guarded_session"):
            build_http_tools([SPEC], allow_private_networks=False, session=plain)
    finally:
        await plain.close()
