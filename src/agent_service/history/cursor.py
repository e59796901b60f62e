"""Opaque cursors of the run list: the position after the last run of a page.

A cursor is the (``created_at``, ``id``) of the last run shown, which the next page continues
strictly after (keyset pagination): runs archived meanwhile never shift a page, so a client
walking the pages sees no run twice and misses none that existed when it started. The value is
base64url JSON so clients treat it as a token; ``InvalidCursorError`` (400) for anything else.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class InvalidCursorError(ValueError):
    """The cursor was not made by this service (or was altered)."""


def encode_cursor(created_at: datetime, run_id: str) -> str:
    # Whole microseconds (timestamptz's precision), so the position is exact, not a float.
    micros = (created_at - _EPOCH) // _MICROSECOND
    raw = json.dumps([micros, run_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        micros, run_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidCursorError("invalid cursor") from None
    if not isinstance(micros, int) or isinstance(micros, bool) or not isinstance(run_id, str):
        raise InvalidCursorError("invalid cursor")
    try:
        return _EPOCH + micros * _MICROSECOND, run_id
    except OverflowError:
        raise InvalidCursorError("invalid cursor") from None
