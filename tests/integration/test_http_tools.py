"""HTTP tools against a real aiohttp tool service on 127.0.0.1 (never any other address).

Covers JSON and query arguments, headers, retries, the per-attempt timeout, refused redirects
and 4xx, and the SSRF guard both for a literal IP and for a name going through the resolver.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent_service.agent.ports import Tool
from agent_service.agentconfig.model import HttpToolSpec
from agent_service.domain.errors import ToolError
from agent_service.egress.session import create_guarded_session
from agent_service.httptools.client import build_http_tools
from tests.procs import free_port

pytestmark = pytest.mark.integration


@dataclass
class ToolService:
    port: int
    hits: Counter[str] = field(default_factory=Counter)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


def make_app(service: ToolService) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {"body": await request.json(), "auth": request.headers.get("Authorization")}
        )

    async def query(request: web.Request) -> web.Response:
        return web.json_response(dict(request.query))

    async def flaky(request: web.Request) -> web.Response:
        if service.hits["/flaky"] == 1:
            return web.Response(status=500, text="try again")
        return web.json_response({"ok": True, "attempt": service.hits["/flaky"]})

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down for maintenance")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.wait_for(service.release.wait(), timeout=10)
        return web.Response(text="late")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/echo")

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no such thing\n" + "x" * 5000)

    async def big(request: web.Request) -> web.Response:
        return web.Response(text="y" * 20_000)

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        service.hits[request.path] += 1
        response: web.StreamResponse = await handler(request)
        return response

    app = web.Application(middlewares=[count])
    app.router.add_post("/echo", echo)
    app.router.add_get("/query", query)
    app.router.add_post("/flaky", flaky)
    app.router.add_post("/broken", broken)
    app.router.add_post("/slow", slow)
    app.router.add_post("/redirect", redirect)
    app.router.add_post("/missing", missing)
    app.router.add_get("/big", big)
    return app


@pytest.fixture
async def service() -> AsyncIterator[ToolService]:
    svc = ToolService(port=0)
    runner = web.AppRunner(make_app(svc), shutdown_timeout=1.0, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    svc.port = runner.addresses[0][1]
    yield svc
    svc.release.set()
    await runner.cleanup()


@pytest.fixture
async def private_session() -> AsyncIterator[aiohttp.ClientSession]:
    session = create_guarded_session(allow_private_networks=True)
    yield session
    await session.close()


@pytest.fixture
async def guarded_session() -> AsyncIterator[aiohttp.ClientSession]:
    session = create_guarded_session(allow_private_networks=False)
    yield session
    await session.close()


def tool(session: aiohttp.ClientSession, url: str, allow_private: bool = True, **spec: Any) -> Tool:
    http = HttpToolSpec(name="t", description="A test tool.", url=url, **spec)
    (built,) = build_http_tools([http], allow_private_networks=allow_private, session=session)
    return built


async def test_post_sends_json_and_headers(
    service: ToolService, private_session: aiohttp.ClientSession
) -> None:
    echo = tool(private_session, service.url("/echo"), headers={"Authorization": "Bearer t0k"})
    result = await echo.invoke({"city": "Zürich", "days": [1, 2]})
    assert json.loads(result) == {"body": {"city": "Zürich", "days": [1, 2]}, "auth": "Bearer t0k"}
    assert "Zürich" in result
    assert "\n" not in result


async def test_get_sends_query_parameters(
    service: ToolService, private_session: aiohttp.ClientSession
) -> None:
    query = tool(private_session, service.url("/query"), method="GET")
    result = await query.invoke({"q": "a b&c", "n": 3, "exact": True, "tags": ["x"], "none": None})
    assert json.loads(result) == {"q": "a b&c", "n": "3", "exact": "true", "tags": '["x"]'}


async def test_server_error_is_retried(
    service: ToolService, private_session: aiohttp.ClientSession
) -> None:
    flaky = tool(private_session, service.url("/flaky"), retries=1)
    assert json.loads(await flaky.invoke({})) == {"ok": True, "attempt": 2}
    assert service.hits["/flaky"] == 2


async def test_server_error_without_retries_fails(
    service: ToolService, private_session: aiohttp.ClientSession
) -> None:
    flaky = tool(private_session, service.url("/flaky"))
    with pytest.raises(ToolError, match="HTTP 500: try again"):
        await flaky.invoke({})
    assert service.hits["/flaky"] == 1


async def test_retries_run_out(
    service: ToolService, private_session: aiohttp.ClientSession
) -> None:
    broken = tool(private_session, service.url("/broken"), retries=2)
    with pytest.raises(ToolError, match=r"HTTP 503: down for maintenance \(after 3 attempts\)"):
        await broken.invoke({})
    assert service.hits["/broken"] == 3


async def test_timeout_bounds_the_call(
    service: ToolService, private_session: aiohttp.ClientSession
) -> None:
    slow = tool(private_session, service.url("/slow"), timeout_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(ToolError, match=r"no answer within 0\.3 s"):
        await slow.invoke({})
    assert time.monotonic() - started < 0.6


async def test_connection_refused_is_retried_then_reported(
    private_session: aiohttp.ClientSession,
) -> None:
    closed = tool(private_session, f"http://127.0.0.1:{free_port()}/x", retries=1)
    with pytest.raises(ToolError, match=r"cannot connect .*\(after 2 attempts\)"):
        await closed.invoke({})


async def test_redirect_is_not_followed(
    service: ToolService, private_session: aiohttp.ClientSession
) -> None:
    redirect = tool(private_session, service.url("/redirect"), retries=3)
    with pytest.raises(ToolError, match="HTTP 302: redirects are not followed"):
        await redirect.invoke({})
    assert service.hits["/redirect"] == 1
    assert service.hits["/echo"] == 0


async def test_client_error_fails_at_once_with_an_excerpt(
    service: ToolService, private_session: aiohttp.ClientSession
) -> None:
    missing = tool(private_session, service.url("/missing"), retries=3)
    with pytest.raises(ToolError, match="HTTP 404: no such thing x") as info:
        await missing.invoke({})
    assert len(str(info.value)) < 300
    assert service.hits["/missing"] == 1


async def test_long_output_is_truncated(
    service: ToolService, private_session: aiohttp.ClientSession
) -> None:
    result = await tool(private_session, service.url("/big"), method="GET").invoke({})
    assert len(result) == 8000
    assert result.endswith("…[truncated]")


async def test_literal_loopback_refused_without_a_request(
    service: ToolService, guarded_session: aiohttp.ClientSession
) -> None:
    echo = tool(guarded_session, service.url("/echo"), allow_private=False)
    with pytest.raises(ToolError, match="address not allowed"):
        await echo.invoke({"a": 1})
    assert sum(service.hits.values()) == 0


async def test_localhost_name_refused_by_the_resolver(
    service: ToolService, guarded_session: aiohttp.ClientSession
) -> None:
    echo = tool(
        guarded_session, service.url("/echo", host="localhost"), allow_private=False, retries=2
    )
    started = time.monotonic()
    with pytest.raises(ToolError, match="address not allowed"):
        await echo.invoke({"a": 1})
    assert time.monotonic() - started < 0.5  # refused at once: retries would sleep 0.6 s
    assert sum(service.hits.values()) == 0


async def test_localhost_name_allowed_with_private_networks(
    service: ToolService, private_session: aiohttp.ClientSession
) -> None:
    echo = tool(private_session, service.url("/echo", host="localhost"))
    assert json.loads(await echo.invoke({"a": 1}))["body"] == {"a": 1}
