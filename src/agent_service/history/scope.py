"""Whose runs a query sees: one tenant's, or every tenant's for an admin key."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Table, true


@dataclass(frozen=True)
class Scope:
    """``tenant`` None: every tenant (an admin key). Build with ``of_tenant`` or ``admin``."""

    tenant: str | None

    @classmethod
    def of_tenant(cls, tenant: str) -> Scope:
        return cls(tenant)

    @classmethod
    def admin(cls) -> Scope:
        return cls(None)

    @property
    def is_admin(self) -> bool:
        return self.tenant is None

    def where(self, table: Table) -> ColumnElement[bool]:
        """The condition limiting ``table`` (which has a ``tenant`` column) to this scope."""
        if self.tenant is None:
            return true()
        return table.c.tenant == self.tenant
