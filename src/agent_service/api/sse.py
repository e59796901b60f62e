"""Server-Sent Events framing (the ``text/event-stream`` wire format)."""

from __future__ import annotations

import json
from typing import Any

SSE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx ingress: do not buffer the stream
}

KEEPALIVE = b": keep-alive\n\n"


def sse_event(event: str, data: Any, event_id: str | None = None) -> bytes:
    """One event; ``data`` is JSON-encoded on a single line (UTF-8, not escaped)."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    lines.append("data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()
