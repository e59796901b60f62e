"""Who a request is for: the tenant that owns its tasks, sessions and budgets, and the API key
that made it (rate limits are per key). Built by ``api.auth``; used by ``store`` and ``worker``.

A key's role is ``tenant`` (the default) or ``admin``: an admin key acts for its tenant like any
other, and may also read every tenant's history (``GET /v1/tasks``, ``GET /v1/usage``, a run).
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_service.domain.runs import DEFAULT_TENANT

ANONYMOUS_KEY = "anonymous"
TENANT_ROLE = "tenant"
ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class Caller:
    tenant: str
    key_id: str
    """A non-secret id of the API key (the first 12 hex digits of its SHA-256)."""
    key_name: str | None = None
    role: str = TENANT_ROLE
    """``tenant`` or ``admin`` (reads every tenant's history)."""

    @property
    def admin(self) -> bool:
        return self.role == ADMIN_ROLE


ANONYMOUS = Caller(tenant=DEFAULT_TENANT, key_id=ANONYMOUS_KEY)
"""The caller when authentication is off."""
