"""Signing and verifying webhook deliveries (a scheme like Stripe's).

The worker signs each POST; receivers verify with ``verify`` or the recipe in docs/api.md:

    X-Agent-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

The timestamp is inside the signed text, so a captured delivery cannot be replayed later than
the receiver's tolerance window; ``v1`` names the scheme, so another can be added beside it.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Agent-Signature"
EVENT_HEADER = "X-Agent-Event"
DELIVERY_HEADER = "X-Agent-Delivery"
TASK_ID_HEADER = "X-Agent-Task-Id"
TASK_FINISHED = "task.finished"
APPROVAL_REQUIRED = "approval.required"
SCHEME = "v1"
DEFAULT_TOLERANCE_SECONDS = 300
"""How old (or how far ahead of the receiver's clock) a signature may be: five minutes."""


class SignatureError(ValueError):
    """A delivery whose signature header is missing, malformed, stale or does not match."""


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret`` (UTF-8)."""
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The value of ``X-Agent-Signature`` for ``body`` signed at ``timestamp``."""
    return f"t={timestamp},{SCHEME}={compute_signature(secret, timestamp, body)}"


def delivery_id(task_id: str, attempt: int) -> str:
    """``X-Agent-Delivery``: the same for a redelivery of an attempt whose result was lost."""
    return f"{task_id}:{attempt}"


def delivery_headers(
    secret: str,
    task_id: str,
    attempt: int,
    body: bytes,
    timestamp: int | None = None,
    *,
    event: str = TASK_FINISHED,
    subject: str | None = None,
) -> dict[str, str]:
    """Every header of a delivery of ``body`` (the worker adds nothing but User-Agent).

    ``subject`` names what the delivery is about when it is not the task's end (an approval's
    id): the delivery id is ``<subject>:<attempt>`` then."""
    signed_at = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        EVENT_HEADER: event,
        DELIVERY_HEADER: delivery_id(subject or task_id, attempt),
        TASK_ID_HEADER: task_id,
        SIGNATURE_HEADER: signature_header(secret, signed_at, body),
    }


def parse_signature_header(header: str) -> tuple[int, list[str]]:
    """The timestamp and the ``v1`` signatures of a header (``SignatureError`` if malformed).

    Unknown schemes are ignored, so a receiver keeps working when one is added.
    """
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError("malformed signature header")
        if name == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError("malformed signature timestamp") from None
        elif name == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise SignatureError("signature header has no timestamp")
    if not signatures:
        raise SignatureError(f"signature header has no {SCHEME} signature")
    return timestamp, signatures


def verify(
    secret: str,
    header: str | None,
    body: bytes,
    *,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check a delivery: the signed timestamp is within ``tolerance_seconds`` of ``now`` and one
    ``v1`` signature matches ``body`` (compared in constant time). Returns the timestamp;
    raises ``SignatureError`` otherwise. ``body`` must be the raw bytes received."""
    if not header:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    timestamp, signatures = parse_signature_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureError("signature timestamp outside the tolerance window")
    expected = compute_signature(secret, timestamp, body)
    # Every candidate is compared, so the time taken does not tell which one came close.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("signature does not match")
    return timestamp
