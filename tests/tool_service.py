"""A side-effecting HTTP tool service for tests, run as a real process:
``python -m tests.tool_service PORT``.

``POST /refund`` issues a refund (a side effect): it records the call with its arguments and
its ``Idempotency-Key`` header, and answers a repeated key with the refund it already issued,
as docs/durability.md asks tool authors to do. ``POST /slow-refund`` does the same after
``seconds`` (from the arguments, default 2). ``GET /calls`` lists every call received (repeats
included), so a test counts what really reached the service.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from aiohttp import web

CALLS: list[dict[str, Any]] = []
ISSUED: dict[str, dict[str, Any]] = {}


async def refund(request: web.Request) -> web.Response:
    arguments = await request.json()
    key = request.headers.get("Idempotency-Key")
    CALLS.append({"path": request.path, "arguments": arguments, "idempotency_key": key})
    if request.path == "/slow-refund":
        await asyncio.sleep(float(arguments.get("seconds", 2)))
    if key is not None and key in ISSUED:
        return web.json_response({**ISSUED[key], "replayed": True})
    issued = {
        "refund_id": f"RF-{len(ISSUED) + 1:04d}",
        "order_id": arguments.get("order_id"),
        "amount": arguments.get("amount"),
        "status": "issued",
    }
    if key is not None:
        ISSUED[key] = issued
    return web.json_response(issued)


async def calls(_: web.Request) -> web.Response:
    return web.json_response(CALLS)


def main() -> None:
    app = web.Application()
    app.router.add_post("/refund", refund)
    app.router.add_post("/slow-refund", refund)
    app.router.add_get("/calls", calls)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)


if __name__ == "__main__":
    main()
