"""The documented error shape ``{"error": {"type", "message", "request_id"}}`` and its handlers.

Every error leaves the API through here, so bad input is always a 4xx in this shape and never
a 500, and dependency failures are 503 with ``Retry-After``. The OpenAI-compatible routes
answer in OpenAI's own shape instead (``api.openai.errors``), which the OpenAI SDKs parse.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent_service.api.openai.errors import is_openai_path, openai_error_body
from agent_service.domain.errors import AgentError, ErrorType

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"

# Run failures seen by a synchronous caller, as HTTP statuses.
RUN_ERROR_STATUS: Mapping[str, int] = {
    ErrorType.LLM_UNAVAILABLE: 503,
    ErrorType.DEPENDENCY_UNAVAILABLE: 503,
    ErrorType.SHUTTING_DOWN: 503,
    ErrorType.LLM_BAD_REQUEST: 502,
    ErrorType.INVALID_OUTPUT: 502,
    ErrorType.RUN_TIMEOUT: 504,
    ErrorType.MAX_ITERATIONS: 422,
    ErrorType.TOKEN_LIMIT: 422,
    ErrorType.BUDGET_EXCEEDED: 429,
    ErrorType.CANCELLED: 409,
}

_HTTP_TYPES: Mapping[int, ErrorType] = {
    400: ErrorType.INVALID_REQUEST,
    401: ErrorType.UNAUTHORIZED,
    403: ErrorType.FORBIDDEN,
    404: ErrorType.NOT_FOUND,
    405: ErrorType.INVALID_REQUEST,
    409: ErrorType.CONFLICT,
    413: ErrorType.PAYLOAD_TOO_LARGE,
    415: ErrorType.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorType.INVALID_REQUEST,
    429: ErrorType.RATE_LIMITED,
    503: ErrorType.DEPENDENCY_UNAVAILABLE,
}


class ApiError(Exception):
    """Raise from a route to answer ``status`` in the error shape (``param``: the request field
    at fault, shown on the OpenAI-compatible routes)."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = error_type
        self.message = message
        self.headers = dict(headers or {})
        self.param = param


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_body(
    error_type: str,
    message: str,
    request_id: str | None,
    *,
    path: str = "",
    status: int = 400,
    param: str | None = None,
) -> dict[str, object]:
    """The error shape of ``path``: OpenAI's on the OpenAI-compatible routes, ours elsewhere."""
    if is_openai_path(path):
        return openai_error_body(status, error_type, message, request_id, param)
    return {"error": {"type": error_type, "message": message, "request_id": request_id}}


def error_response(
    request: Request,
    status: int,
    error_type: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    *,
    param: str | None = None,
) -> JSONResponse:
    headers = dict(headers or {})
    if status in (429, 503) and "Retry-After" not in headers:
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    body = error_body(
        error_type,
        message,
        request_id_of(request),
        path=request.url.path,
        status=status,
        param=param,
    )
    return JSONResponse(body, status_code=status, headers=headers)


def run_error_status(error_type: str) -> int:
    return RUN_ERROR_STATUS.get(error_type, 500)


def _validation_message(exc: RequestValidationError) -> tuple[int, str, str | None]:
    """Status, message and the first field at fault of a body that failed validation."""
    errors = exc.errors()
    if any(err.get("type") == "json_invalid" for err in errors):
        return 400, "request body is not valid JSON", None
    parts = []
    fields = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        fields.append(loc)
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return 422, "; ".join(parts), (fields[0] or None) if fields else None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(
            request, exc.status, exc.type, exc.message, exc.headers, param=exc.param
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message, param = _validation_message(exc)
        error_type = ErrorType.INVALID_REQUEST
        return error_response(request, status, error_type, message, param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error_type = _HTTP_TYPES.get(exc.status_code, ErrorType.INVALID_REQUEST)
        return error_response(request, exc.status_code, error_type, str(exc.detail), exc.headers)

    @app.exception_handler(AgentError)
    async def _agent_error(request: Request, exc: AgentError) -> JSONResponse:
        return error_response(request, run_error_status(exc.type), exc.type, exc.message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(request, 500, ErrorType.INTERNAL, "internal error")
