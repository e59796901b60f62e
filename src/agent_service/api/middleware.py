"""Pure-ASGI middleware: request ids, the access log line, and the request body size limit.

Written as plain ASGI (not ``BaseHTTPMiddleware``) so streamed responses pass through untouched
and the per-request cost stays in microseconds.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_service.api.errors import error_body
from agent_service.domain.errors import ErrorType

access_log = structlog.get_logger("agent_service.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class _BodyTooLargeError(Exception):
    pass


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class RequestContextMiddleware:
    """Assigns the request id, enforces ``max_body_bytes`` (413) and writes the access line."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        incoming = _header(scope, b"x-request-id")
        request_id = incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        too_large = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        async def limited_receive() -> Message:
            nonlocal too_large, seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    too_large = True
                    raise _BodyTooLargeError
            return message

        async def guarded_send(message: Message) -> None:
            # FastAPI turns an error while reading the body into its own 400: once the limit
            # was crossed, answer 413 instead of whatever the app sends.
            if not too_large:
                await send_wrapper(message)
            elif message["type"] == "http.response.start":
                await self._too_large(send_wrapper, request_id)

        seen = 0
        try:
            length = _header(scope, b"content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body_bytes:
                too_large = True
                await self._too_large(send_wrapper, request_id)
                return
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLargeError:
            if status == 500:
                await self._too_large(send_wrapper, request_id)
        finally:
            self._log(scope, status, started, request_id)
            structlog.contextvars.unbind_contextvars("request_id", "task_id")

    async def _too_large(self, send: Send, request_id: str) -> None:
        body = json.dumps(
            error_body(
                ErrorType.PAYLOAD_TOO_LARGE,
                f"request body is larger than {self.max_body_bytes} bytes",
                request_id,
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _log(self, scope: Scope, status: int, started: float, request_id: str) -> None:
        route: Any = scope.get("route")
        access_log.info(
            "request",
            method=scope["method"],
            route=getattr(route, "path", None),
            path=scope["path"],
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            request_id=request_id,
        )
