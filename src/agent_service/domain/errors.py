"""Error types of the service: the ``type`` field of the documented error shape.

Raised by the agent loop and the adapters, turned into HTTP answers by ``api`` and into
``failed`` task records by ``worker``.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorType(StrEnum):
    """Closed set of error types a client can see (``{"error": {"type": ...}}``)."""

    # request errors (4xx)
    INVALID_REQUEST = "invalid_request"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    HISTORY_DISABLED = "history_disabled"
    """A history route (list, usage, feedback) on a service without ``AGENT_HISTORY_URL``."""
    # dependency errors and load shedding (503)
    DEPENDENCY_UNAVAILABLE = "dependency_unavailable"
    OVERLOADED = "overloaded"
    SHUTTING_DOWN = "shutting_down"  # the API process drains (SIGTERM): retry elsewhere
    # run outcomes
    LLM_UNAVAILABLE = "llm_unavailable"
    LLM_BAD_REQUEST = "llm_bad_request"
    RUN_TIMEOUT = "run_timeout"
    MAX_ITERATIONS = "max_iterations"
    TOKEN_LIMIT = "token_limit"  # noqa: S105  # an error type, not a credential
    BUDGET_EXCEEDED = "budget_exceeded"
    INVALID_OUTPUT = "invalid_output"
    APPROVAL_REQUIRED = "approval_required"
    """A synchronous run reached a tool call that needs a person's approval (409)."""
    APPROVAL_TIMEOUT = "approval_timeout"
    """Nobody decided on a tool call in time and the agent is set to fail then."""
    CANCELLED = "cancelled"
    POISON = "poison"
    INTERNAL = "internal"


class AgentError(Exception):
    """An error with a client-visible type. ``message`` must be safe to show to the caller."""

    def __init__(self, error_type: ErrorType, message: str) -> None:
        super().__init__(message)
        self.type = error_type
        self.message = message


class LLMUnavailableError(AgentError):
    """Every model of the fallback chain failed (rate limits, 5xx, timeouts, connection errors)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorType.LLM_UNAVAILABLE, message)


class LLMBadRequestError(AgentError):
    """The provider rejected the request itself (4xx other than 429): retrying cannot help."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorType.LLM_BAD_REQUEST, message)


class ToolError(Exception):
    """A tool failed. The agent loop reports it to the model as a tool error and goes on."""


class DependencyUnavailableError(AgentError):
    """Redis (or another dependency the request needs) cannot be reached: answer 503."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorType.DEPENDENCY_UNAVAILABLE, message)


class StorageFullError(DependencyUnavailableError):
    """Redis refuses writes: it is at (or, for new tasks, near) its ``maxmemory``. Answered as
    a 503 with ``Retry-After``; a worker keeps the run's end and retries it instead of
    failing the task (see docs/operations.md)."""
