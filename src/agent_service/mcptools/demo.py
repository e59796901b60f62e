"""``agent-service mcp-demo``: a small MCP server for an order-support agent, on Streamable HTTP.

Built with the same SDK as the client (``mcp.server.mcpserver.MCPServer``). It knows a few
orders of three customers (fixed data, so answers are reproducible) and serves three read-only
tools, ``lookup_order``, ``list_recent_orders`` and ``track_shipment``, and one with a side
effect, ``refund_order``, which the local stack's ``refunds`` agent may only call once a person
approved it. A refund is issued once per idempotency key (``_meta``), as docs/durability.md asks
of tool authors: a call repeated after a crash gets the refund already issued. The local stack,
the tests and the kind workflow run it; ``GET /healthz`` answers for probes. See
docs/agents.md.
"""

from __future__ import annotations

import logging
from typing import Any

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from starlette.requests import Request
from starlette.responses import JSONResponse

from agent_service.mcptools.base import IDEMPOTENCY_META_KEY

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"

ORDERS: dict[str, dict[str, Any]] = {
    "OD-20240502": {
        "customer": "alice@example.com",
        "placed_at": "2024-05-02",
        "status": "shipped",
        "items": [{"sku": "KB-87", "name": "Mechanical keyboard", "quantity": 1, "price": 89.0}],
        "total": 89.0,
        "currency": "EUR",
        "carrier": "DHL",
        "tracking_number": "JD014600003828",
        "shipped_at": "2024-05-03",
        "estimated_delivery": "2024-05-07",
    },
    "OD-20240417": {
        "customer": "alice@example.com",
        "placed_at": "2024-04-17",
        "status": "delivered",
        "items": [
            {"sku": "HP-200", "name": "Wireless headphones", "quantity": 1, "price": 129.0},
            {"sku": "CB-USB-C", "name": "USB-C cable", "quantity": 2, "price": 9.5},
        ],
        "total": 148.0,
        "currency": "EUR",
        "carrier": "DPD",
        "tracking_number": "05212345678901",
        "shipped_at": "2024-04-18",
        "delivered_at": "2024-04-20",
    },
    "OD-20240611": {
        "customer": "bob@example.com",
        "placed_at": "2024-06-11",
        "status": "processing",
        "items": [{"sku": "MN-27Q", "name": "27-inch monitor", "quantity": 1, "price": 279.0}],
        "total": 279.0,
        "currency": "EUR",
        "estimated_ship_date": "2024-06-13",
    },
    "OD-20240528": {
        "customer": "bob@example.com",
        "placed_at": "2024-05-28",
        "status": "cancelled",
        "items": [{"sku": "MS-PRO", "name": "Ergonomic mouse", "quantity": 1, "price": 59.0}],
        "total": 59.0,
        "currency": "EUR",
        "cancelled_at": "2024-05-28",
        "refund": {"amount": 59.0, "issued_at": "2024-05-29", "method": "original payment"},
    },
    "OD-20240309": {
        "customer": "carol@example.com",
        "placed_at": "2024-03-09",
        "status": "returned",
        "items": [{"sku": "LS-DESK", "name": "Desk lamp", "quantity": 1, "price": 42.0}],
        "total": 42.0,
        "currency": "EUR",
        "returned_at": "2024-03-21",
        "refund": {"amount": 42.0, "issued_at": "2024-03-22", "method": "original payment"},
    },
}

SHIPMENTS: dict[str, dict[str, Any]] = {
    "JD014600003828": {
        "carrier": "DHL",
        "order_id": "OD-20240502",
        "status": "in transit",
        "events": [
            {"at": "2024-05-03T16:40:00Z", "where": "Leipzig hub", "what": "picked up"},
            {"at": "2024-05-04T05:12:00Z", "where": "Leipzig hub", "what": "departed"},
            {"at": "2024-05-05T09:30:00Z", "where": "Paris Nord depot", "what": "arrived"},
        ],
        "estimated_delivery": "2024-05-07",
    },
    "05212345678901": {
        "carrier": "DPD",
        "order_id": "OD-20240417",
        "status": "delivered",
        "events": [
            {"at": "2024-04-18T14:05:00Z", "where": "Aschaffenburg", "what": "picked up"},
            {"at": "2024-04-20T10:47:00Z", "where": "Lyon", "what": "delivered to the door"},
        ],
    },
}


def lookup_order(order_id: str) -> dict[str, Any]:
    """Look up one order by its id (like OD-20240502): status, items, total, shipping and
    tracking details."""
    key = order_id.strip().upper()
    order = ORDERS.get(key)
    if order is None:
        raise ToolError(f"no order {order_id!r}; order ids look like OD-20240502")
    return {"order_id": key, **order}


def list_recent_orders(customer_email: str, limit: int = 5) -> dict[str, Any]:
    """List a customer's most recent orders, newest first, by the customer's e-mail address."""
    if not 1 <= limit <= 20:
        raise ToolError("limit must be between 1 and 20")
    email = customer_email.strip().lower()
    mine = sorted(
        ((order_id, order) for order_id, order in ORDERS.items() if order["customer"] == email),
        key=lambda item: item[1]["placed_at"],
        reverse=True,
    )
    orders = [
        {
            "order_id": order_id,
            "placed_at": order["placed_at"],
            "status": order["status"],
            "total": order["total"],
            "currency": order["currency"],
        }
        for order_id, order in mine[:limit]
    ]
    return {"customer": email, "orders": orders}


def track_shipment(tracking_number: str) -> dict[str, Any]:
    """Follow a parcel by its carrier tracking number: where it is and what happened so far."""
    shipment = SHIPMENTS.get(tracking_number.strip())
    if shipment is None:
        raise ToolError(f"no shipment with tracking number {tracking_number!r}")
    return {"tracking_number": tracking_number.strip(), **shipment}


REFUNDABLE = frozenset({"shipped", "delivered"})
REFUNDS: dict[str, dict[str, Any]] = {}
"""Refunds issued by this process, by idempotency key (or by order, for calls without one)."""


def refund_order(
    ctx: Context, order_id: str, reason: str = "", amount: float | None = None
) -> dict[str, Any]:
    """Refund an order (a side effect: money goes back to the customer). The amount defaults to
    the order's total. Only shipped or delivered orders can be refunded."""
    key = order_id.strip().upper()
    order = ORDERS.get(key)
    if order is None:
        raise ToolError(f"no order {order_id!r}; order ids look like OD-20240502")
    meta = dict(ctx.request_context.meta or {})
    dedupe = str(meta.get(IDEMPOTENCY_META_KEY) or f"order:{key}")
    if dedupe in REFUNDS:  # the same call again (a retry after a crash): the same refund
        return {**REFUNDS[dedupe], "repeated": True}
    if order["status"] not in REFUNDABLE:
        raise ToolError(f"order {key} is {order['status']}: it cannot be refunded")
    total = float(order["total"])
    value = total if amount is None else float(amount)
    if not 0 < value <= total:
        raise ToolError(f"the amount must be above 0 and at most the order's total ({total})")
    refund = {
        "refund_id": f"RF-{len(REFUNDS) + 1:05d}",
        "order_id": key,
        "amount": value,
        "currency": order["currency"],
        "reason": reason[:200],
        "status": "refunded",
    }
    REFUNDS[dedupe] = refund
    log.info("refund %s of %s %s for %s", refund["refund_id"], value, order["currency"], key)
    return refund


def build_demo_server() -> MCPServer:
    """The demo server with its four tools and a ``/healthz`` route."""
    server = MCPServer(
        "orders-demo",
        instructions="Order support: look up orders, list a customer's orders, track parcels, "
        "refund an order.",
    )
    # Read-only lookups: a client may call them freely and retry them.
    read_only = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
    for tool in (lookup_order, list_recent_orders, track_shipment):
        server.add_tool(tool, annotations=read_only)
    # A side effect, made once per idempotency key.
    effect = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True)
    server.add_tool(refund_order, annotations=effect)

    server.custom_route("/healthz", methods=["GET"])(_healthz)
    return server


async def _healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def serve_demo(host: str, port: int) -> None:
    """Serve the demo server on ``http://host:port/mcp`` until interrupted."""
    server = build_demo_server()
    # Stateless: any replica behind a Service answers any request (no session to pin).
    app = server.streamable_http_app(streamable_http_path=MCP_PATH, stateless_http=True, host=host)
    log.info("mcp-demo listening on http://%s:%d%s", host, port, MCP_PATH)
    uvicorn.run(app, host=host, port=port, log_level="warning")
