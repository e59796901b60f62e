"""What follows a webhook attempt: pure decisions, table-tested (tests/unit/test_webhook_policy.py).

``worker.webhooks`` calls ``decide`` after each POST, ``next_delay`` to schedule a retry, and
``begin`` / ``after_attempt`` to build the state the task record shows.

Retried: connection errors, timeouts, 408, 425, 429 and 5xx, with exponential backoff and full
jitter, until ``max_attempts`` attempts were made. Given up at once: any other 3xx or 4xx
(redirects are not followed, since the new address would escape the SSRF check, and a receiver
that rejects a signed body will reject the same body again), an address the SSRF guard refuses,
and a tenant without a signing secret. Either way the task id then goes to the dead letters.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from enum import StrEnum
from urllib.parse import urlsplit

from agent_service.domain.tasks import WebhookDelivery, WebhookState
from agent_service.egress.hosts import host_refusal

PENDING = "pending"
"""No attempt is in flight; the next one is due now or after a backoff."""
DELIVERING = "delivering"
"""A worker holds the delivery and its POST is in flight."""
DELIVERED = "delivered"
DEAD = "dead"
FINAL_STATUSES = frozenset({DELIVERED, DEAD})

RETRYABLE_STATUS_CODES = frozenset({408, 425, 429})
"""4xx answers that mean "not now" rather than "never" (with every 5xx)."""


class Outcome(StrEnum):
    """The result of one attempt: the ``outcome`` label of ``agent_webhook_deliveries_total``."""

    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"


class Failure(StrEnum):
    """Why an attempt got no HTTP answer."""

    CONNECTION = "connection"
    TIMEOUT = "timeout"
    REFUSED = "refused"
    """The SSRF guard refused the address the URL leads to."""
    NO_SECRET = "no_secret"  # noqa: S105  # a failure kind, not a credential
    INVALID = "invalid"
    """The request could not be made (a URL the worker's settings or aiohttp refuse)."""


_RETRYABLE_FAILURES = frozenset({Failure.CONNECTION, Failure.TIMEOUT})


def is_success(status_code: int | None) -> bool:
    return status_code is not None and 200 <= status_code < 300


def is_retryable(status_code: int | None, failure: Failure | None) -> bool:
    """Whether another attempt may succeed where this one failed."""
    if failure is not None:
        return failure in _RETRYABLE_FAILURES
    if status_code is None:
        return True
    return status_code >= 500 or status_code in RETRYABLE_STATUS_CODES


def decide(
    status_code: int | None, failure: Failure | None, attempt: int, max_attempts: int
) -> Outcome:
    """The outcome of attempt number ``attempt`` (1-based) out of at most ``max_attempts``."""
    if failure is None and is_success(status_code):
        return Outcome.DELIVERED
    if not is_retryable(status_code, failure) or attempt >= max_attempts:
        return Outcome.DEAD
    return Outcome.RETRY


def next_delay(
    attempt: int,
    initial_seconds: float,
    max_seconds: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): uniform in
    ``[0, min(max_seconds, initial_seconds * 2 ** (attempt - 1))]`` ("full jitter"), so
    receivers that came back after an outage are not hit by every retry at once."""
    ceiling = min(max_seconds, initial_seconds * 2.0 ** min(attempt - 1, 60))
    return ceiling * rand()


def begin(state: WebhookState) -> WebhookState:
    """The state shown while an attempt's POST is in flight."""
    return state.model_copy(update={"status": DELIVERING})


def after_attempt(state: WebhookState, delivery: WebhookDelivery, outcome: Outcome) -> WebhookState:
    """The state after ``delivery`` ended with ``outcome``: the attempt appended, the status
    ``delivered``, ``dead``, or ``pending`` again until the retry is due."""
    status = {Outcome.DELIVERED: DELIVERED, Outcome.DEAD: DEAD, Outcome.RETRY: PENDING}[outcome]
    return state.model_copy(update={"status": status, "attempts": [*state.attempts, delivery]})


def target_refusal(url: str, *, allow_http: bool, allowed_hosts: list[str]) -> str | None:
    """Why the worker may not POST to ``url`` under its settings (scheme, allowed hosts), or
    None. The API checks the same at submission; the worker checks again, since its settings
    decide where it connects. Addresses are the SSRF guard's part (``egress.guard``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "invalid webhook URL"
    if parts.scheme != "https" and not (parts.scheme == "http" and allow_http):
        return "webhook URL must be https"
    return host_refusal(url, allowed_hosts, "webhook")
