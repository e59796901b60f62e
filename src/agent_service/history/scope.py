"""Whose runs a query sees: one tenant's, or every tenant's for an admin key.

The API builds a ``Scope`` for every read, history on or off, so SQLAlchemy is imported only
by ``where``, which only the queries call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Table


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
        from sqlalchemy import true  # noqa: PLC0415 - lazy on purpose (module docstring)

        if self.tenant is None:
            return true()
        return table.c.tenant == self.tenant
