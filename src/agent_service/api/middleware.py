"""Pure-ASGI middleware: request and trace ids, the access log line, the request body limit,
and the overload guard (at most ``AGENT_API_MAX_IN_FLIGHT`` requests at once: beyond it, 503
with ``Retry-After`` at once, so an overloaded API sheds load instead of timing out).

Written as plain ASGI (not ``BaseHTTPMiddleware``) so streamed responses pass through untouched
and the per-request cost stays in microseconds.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_service.api.errors import error_body
from agent_service.domain.errors import ErrorType
from agent_service.observability.metrics import Metrics
from agent_service.observability.tracing import current_trace_id, tag_current_span

access_log = structlog.get_logger("agent_service.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED_ROUTE = "unmatched"
UNGUARDED_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})
"""Never shed: probes must tell the truth under load, and scrapes show the overload."""
OVERLOAD_RETRY_AFTER = "1"


class _BodyTooLargeError(Exception):
    pass


def _request_headers(scope: Scope) -> tuple[str | None, str | None]:
    """``X-Request-ID`` and ``Content-Length``, in one pass over the headers."""
    request_id = length = None
    for key, value in scope["headers"]:
        if key == b"x-request-id":
            request_id = value.decode("latin-1")
        elif key == b"content-length":
            length = value.decode("latin-1")
    return request_id, length


class _Exchange:
    """One request/response: adds the request and trace id headers, counts body bytes, 413."""

    def __init__(
        self, send: Send, request_id: str, max_body_bytes: int, trace_id: str | None = None
    ) -> None:
        self._send = send
        self.request_id = request_id
        self.trace_id = trace_id
        self.max_body_bytes = max_body_bytes
        self.status = 500
        self.path = ""
        self.started = False
        self.too_large = False
        self._seen = 0

    def receive_from(self, receive: Receive) -> Receive:
        async def limited() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self._seen += len(message.get("body", b""))
                if self._seen > self.max_body_bytes:
                    self.too_large = True
                    raise _BodyTooLargeError
            return message

        return limited

    async def send(self, message: Message) -> None:
        # FastAPI turns an error while reading the body into its own 400: once the limit was
        # crossed, answer 413 instead of whatever the app sends.
        if self.too_large:
            if message["type"] == "http.response.start":
                await self.reject_too_large()
            return
        await self._send_raw(message)

    async def _send_raw(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            message["headers"] = [
                *message.get("headers", []),
                (b"x-request-id", self.request_id.encode()),
            ]
            if self.trace_id:
                message["headers"].append((b"x-trace-id", self.trace_id.encode()))
        await self._send(message)

    async def reject_overloaded(self, limit: int) -> None:
        await self._reject(
            503,
            ErrorType.OVERLOADED,
            f"the API is serving its limit of {limit} requests; retry shortly",
            (b"retry-after", OVERLOAD_RETRY_AFTER.encode()),
        )

    async def reject_too_large(self) -> None:
        await self._reject(
            413,
            ErrorType.PAYLOAD_TOO_LARGE,
            f"request body is larger than {self.max_body_bytes} bytes",
            (b"connection", b"close"),
        )

    async def _reject(
        self, status: int, error_type: str, message: str, header: tuple[bytes, bytes]
    ) -> None:
        """Answer in the error shape from the middleware (the app never saw the request)."""
        shaped = error_body(error_type, message, self.request_id, path=self.path, status=status)
        body = json.dumps(shaped).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            header,
        ]
        await self._send_raw({"type": "http.response.start", "status": status, "headers": headers})
        await self._send_raw({"type": "http.response.body", "body": body})


class RouteTemplates:
    """Maps a request path to its route template (``/v1/tasks/{task_id}``), never the raw path.

    Built from the app's route objects once; matching is one compiled regex per route.
    """

    def __init__(self, routes: Iterable[Any]) -> None:
        self._routes = [
            (route.path_regex, str(route.path)) for route in routes if hasattr(route, "path_regex")
        ]

    def __call__(self, path: str) -> str:
        for regex, template in self._routes:
            if regex.match(path):
                return template
        return UNMATCHED_ROUTE

    def span_details(self, scope: Scope) -> tuple[str, dict[str, str]]:
        """Name and attributes of a request's server span: ``POST /v1/tasks/{task_id}/cancel``
        and ``http.route`` (the method alone for a path no route matches)."""
        method = str(scope.get("method", "HTTP"))
        route = self(str(scope.get("path", "")))
        if route == UNMATCHED_ROUTE:
            return method, {}
        return f"{method} {route}", {"http.route": route}


class RequestContextMiddleware:
    """Request id, body limit (413), HTTP metrics and the access line, for every request."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        metrics: Metrics,
        routes: RouteTemplates,
        max_in_flight: int = 0,
        *,
        route_body_bytes: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Routes that take bigger bodies (a document to ingest) than the default limit.
        self.route_body_bytes = dict(route_body_bytes or {})
        self.metrics = metrics
        self.routes = routes
        self.max_in_flight = max_in_flight
        self._in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming, length = _request_headers(scope)
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        # The server span (OpenTelemetry ASGI middleware, outside this one) is active here;
        # untraced routes (probes, /metrics) have none and get no X-Trace-Id.
        tag_current_span("agent.request_id", request_id)
        route = self.routes(scope["path"])
        limit = self.route_body_bytes.get(route, self.max_body_bytes)
        exchange = _Exchange(send, request_id, limit, current_trace_id())
        exchange.path = scope["path"]
        in_progress = self.metrics.http_in_progress.labels(route)
        in_progress.inc()
        guarded = self.max_in_flight > 0 and route not in UNGUARDED_ROUTES
        if guarded:
            self._in_flight += 1
        try:
            if guarded and self._in_flight > self.max_in_flight:
                self.metrics.rate_limited.labels("overloaded").inc()
                await exchange.reject_overloaded(self.max_in_flight)
                return
            if length is not None and length.isdigit() and int(length) > limit:
                exchange.too_large = True
                await exchange.reject_too_large()
                return
            await self.app(scope, exchange.receive_from(receive), exchange.send)
        except _BodyTooLargeError:
            if not exchange.started:
                await exchange.reject_too_large()
        finally:
            if guarded:
                self._in_flight -= 1
            in_progress.dec()
            elapsed = time.perf_counter() - started
            method = scope["method"]
            self.metrics.http_requests.labels(method, route, str(exchange.status)).inc()
            self.metrics.http_duration.labels(method, route).observe(elapsed)
            self._log(scope, route, exchange.status, elapsed, request_id)
            structlog.contextvars.unbind_contextvars("request_id", "task_id")

    def _log(self, scope: Scope, route: str, status: int, elapsed: float, request_id: str) -> None:
        caller = scope.get("state", {}).get("caller")
        access_log.info(
            "request",
            method=scope["method"],
            route=route,
            path=scope["path"],
            status=status,
            duration_ms=round(elapsed * 1000, 2),
            request_id=request_id,
            tenant=getattr(caller, "tenant", None),
        )
