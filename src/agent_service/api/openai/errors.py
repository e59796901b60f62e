"""OpenAI's error shape ``{"error": {"message", "type", "param", "code"}}`` for its routes.

``api.errors`` (the exception handlers) and the request middleware (413, overload) call
``openai_error_body`` for a request on an OpenAI-compatible path; the rest of the API keeps the
service's own shape. ``type`` is OpenAI's category of the HTTP status (what SDKs show), ``code``
the service's precise error type (``invalid_request``, ``rate_limited``, ``budget_exceeded``,
``llm_unavailable``...), and ``request_id`` is added, as in the service's shape.
"""

from __future__ import annotations

from pydantic import BaseModel

from agent_service.api.schemas import error_responses

OPENAI_PREFIXES = ("/v1/chat/completions", "/v1/responses")

_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    429: "rate_limit_error",
}


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None
    request_id: str | None = None


class OpenAIErrorBody(BaseModel):
    """An error answer of the OpenAI-compatible routes."""

    error: OpenAIErrorDetail


OPENAI_ERROR_RESPONSES = error_responses(OpenAIErrorBody, s404="Unknown model, agent or response")


def is_openai_path(path: str) -> bool:
    """Whether ``path`` is one of the OpenAI-compatible routes (Chat Completions, Responses)."""
    return path.startswith(OPENAI_PREFIXES)


def openai_type(status: int, code: str) -> str:
    """OpenAI's ``error.type`` for an answer of ``status``."""
    if status == 429 and code == "budget_exceeded":
        return "insufficient_quota"
    if status >= 500:
        return "server_error"
    return _TYPES.get(status, "invalid_request_error")


def openai_error_body(
    status: int, code: str, message: str, request_id: str | None, param: str | None = None
) -> dict[str, object]:
    """The body of an error answer on an OpenAI-compatible route."""
    return {
        "error": {
            "message": message,
            "type": openai_type(status, code),
            "param": param,
            "code": code,
            "request_id": request_id,
        }
    }
