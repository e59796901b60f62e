"""A test MCP server, run as a real process: ``python -m tests.mcp_server PORT``.

Built with the same SDK as the client. Tools: ``count_calls`` (counts its calls), ``slow``
(sleeps), ``fail`` (always a tool error) and ``echo`` (returns its arguments). Every tool call
is recorded server-side with its arguments, ``_meta`` and HTTP headers; ``GET /calls`` returns
the record, so tests count real server-side executions and see what reached the server.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from starlette.requests import Request
from starlette.responses import JSONResponse

CALLS: list[dict[str, Any]] = []


def _record(ctx: Context, tool: str, arguments: dict[str, Any]) -> int:
    meta = dict(ctx.request_context.meta or {})
    headers = {k.lower(): v for k, v in (ctx.headers or {}).items()}
    CALLS.append({"tool": tool, "arguments": arguments, "meta": meta, "headers": headers})
    return sum(1 for call in CALLS if call["tool"] == tool)


async def count_calls(ctx: Context, label: str = "") -> dict[str, Any]:
    """Count this tool's calls; returns the label and the count so far."""
    return {"label": label, "calls": _record(ctx, "count_calls", {"label": label})}


async def slow(ctx: Context, seconds: float) -> str:
    """Answer after ``seconds``."""
    _record(ctx, "slow", {"seconds": seconds})
    await asyncio.sleep(seconds)
    return f"slept {seconds:g} s"


async def fail(ctx: Context, reason: str = "out of stock") -> str:
    """Always fails with ``reason`` (a tool error, not a protocol error)."""
    _record(ctx, "fail", {"reason": reason})
    raise ToolError(reason)


async def echo(ctx: Context, text: str) -> str:
    """Return ``text`` as it came."""
    _record(ctx, "echo", {"text": text})
    return text


async def calls(request: Request) -> JSONResponse:
    return JSONResponse(CALLS)


def main() -> None:
    port = int(sys.argv[1])
    server = MCPServer("test-server")
    for tool in (count_calls, slow, fail, echo):
        server.add_tool(tool)
    server.custom_route("/calls", methods=["GET"])(calls)
    app = server.streamable_http_app(host="127.0.0.1")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
