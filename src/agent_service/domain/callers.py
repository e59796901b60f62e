"""Who a request is for: the tenant that owns its tasks, sessions and budgets, and the API key
that made it (rate limits are per key). Built by ``api.auth``; used by ``store`` and ``worker``."""

from __future__ import annotations

from dataclasses import dataclass

from agent_service.domain.runs import DEFAULT_TENANT

ANONYMOUS_KEY = "anonymous"


@dataclass(frozen=True)
class Caller:
    tenant: str
    key_id: str
    """A non-secret id of the API key (the first 12 hex digits of its SHA-256)."""
    key_name: str | None = None


ANONYMOUS = Caller(tenant=DEFAULT_TENANT, key_id=ANONYMOUS_KEY)
"""The caller when authentication is off."""
