"""Allowed-host patterns: which host names an operator lets the service call.

Patterns are shell-style (``*.svc.cluster.local``, ``api.example.com``), matched
case-sensitively against the lower-cased host. An empty list allows any host (the SSRF guard
still decides which addresses). Used for webhook targets (``AGENT_WEBHOOKS_ALLOWED_HOSTS``) and
by the controller for HTTP tool and MCP server URLs (``AGENT_CONTROLLER_ALLOWED_TOOL_HOSTS``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from urllib.parse import urlsplit


def url_host(url: str) -> str:
    """The lower-cased host of ``url`` ("" when it has none or does not parse)."""
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def host_allowed(host: str, patterns: Sequence[str]) -> bool:
    """Whether ``host`` matches one of ``patterns`` (any host when there are none)."""
    return not patterns or any(fnmatch.fnmatchcase(host.lower(), p) for p in patterns)


def host_refusal(url: str, patterns: Sequence[str], what: str) -> str | None:
    """Why ``url``'s host is not allowed by ``patterns`` (``what``: "webhook", "tool"...), or
    None."""
    host = url_host(url)
    if host_allowed(host, patterns):
        return None
    return f"host {host!r} is not allowed: it is not among the allowed {what} hosts"
