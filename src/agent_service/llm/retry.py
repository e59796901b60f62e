"""Retry and fallback policy of LLM calls: pure functions, no I/O and no litellm import.

``LiteLLMClient`` calls them around every ``litellm.acompletion``: ``classify`` names what went
wrong, ``is_retryable`` decides what happens next, ``backoff_delay`` says how long
to wait, ``fallback_chain`` which models to try. Exceptions are recognised by class name (walking
the MRO, so subclasses count) and ``status_code``, which keeps this module importable without
paying LiteLLM's import cost and lets the table-driven tests use stand-in exception classes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Literal

from agent_service.agentconfig.model import ModelSpec, RetryPolicy

FailureOutcome = Literal[
    "rate_limited", "server_error", "timeout", "connection_error", "bad_request", "other_error"
]
"""The ``LLMAttempt.outcome`` values of a failed attempt (all of them but ``ok``)."""

# Checked against each class of the exception's MRO, most derived first, so that a subclass
# (litellm.ContextWindowExceededError < BadRequestError) or a specialisation with a misleading
# status (litellm.APIConnectionError carries status 500, litellm.Timeout 408) is named correctly.
_BY_CLASS_NAME: dict[str, FailureOutcome] = {
    # litellm / openai SDK
    "RateLimitError": "rate_limited",
    "Timeout": "timeout",
    "APITimeoutError": "timeout",
    "APIConnectionError": "connection_error",
    "InternalServerError": "server_error",
    "ServiceUnavailableError": "server_error",
    "BadGatewayError": "server_error",
    "BadRequestError": "bad_request",
    "AuthenticationError": "bad_request",
    "PermissionDeniedError": "bad_request",
    "NotFoundError": "bad_request",
    "UnprocessableEntityError": "bad_request",
    "ContextWindowExceededError": "bad_request",
    "ContentPolicyViolationError": "bad_request",
    "UnsupportedParamsError": "bad_request",
    "InvalidRequestError": "bad_request",
    # httpx / aiohttp, should one escape LiteLLM's mapping
    "TimeoutException": "timeout",
    "ServerTimeoutError": "timeout",
    "ConnectError": "connection_error",
    "NetworkError": "connection_error",
    "RemoteProtocolError": "connection_error",
    "ClientConnectionError": "connection_error",
    # builtins: asyncio.TimeoutError is TimeoutError (our own deadline); ConnectionError covers
    # refused/reset/aborted sockets
    "TimeoutError": "timeout",
    "ConnectionError": "connection_error",
}

_RETRYABLE: frozenset[str] = frozenset(
    {"rate_limited", "server_error", "timeout", "connection_error"}
)


def _by_status(status: int) -> FailureOutcome:
    if status == 429:
        return "rate_limited"
    if status == 408:
        return "timeout"
    if status >= 500:
        return "server_error"
    if 400 <= status < 500:
        return "bad_request"
    return "other_error"


def classify(exc: BaseException) -> FailureOutcome:
    """The outcome of a failed attempt, from the exception's class names, else its status code."""
    # LiteLLM wraps any failure of a stream (a read timeout, a dropped connection) into a 503
    # MidStreamFallbackError: what happened is the wrapped exception.
    original = getattr(exc, "original_exception", None)
    if type(exc).__name__ == "MidStreamFallbackError" and isinstance(original, BaseException):
        return classify(original)
    for cls in type(exc).__mro__:
        outcome = _BY_CLASS_NAME.get(cls.__name__)
        if outcome is not None:
            return outcome
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        return _by_status(status)
    return "other_error"


def is_retryable(outcome: str) -> bool:
    """Whether the same model is worth another try (transient: 429, 5xx, timeouts, network).

    What is not retried: ``bad_request`` ends the call (every model would reject it alike);
    ``other_error`` is not repeated on the same model but the next model of the chain is tried.
    """
    return outcome in _RETRYABLE


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0).

    Exponential backoff with full jitter: uniform over ``[0, min(max, initial * 2**attempt)]``,
    which spreads retries of many concurrent runs instead of synchronising them.
    """
    # the exponent is capped: 2**64 is past any max already, and 2**1100 would not fit a float
    exponential = policy.backoff_initial_seconds * 2 ** min(attempt, 64)
    ceiling = min(policy.backoff_max_seconds, exponential)
    return rng.uniform(0.0, ceiling)


def fallback_chain(models: Mapping[str, ModelSpec], model: str) -> list[str]:
    """``model`` then its own fallbacks, without duplicates (``models``: configured by name).

    Fallbacks of fallbacks are not followed: the chain is what the operator wrote for ``model``.
    Raises ``KeyError`` when ``model`` is not configured.
    """
    spec = models[model]
    return list(dict.fromkeys([spec.name, *spec.fallbacks]))
