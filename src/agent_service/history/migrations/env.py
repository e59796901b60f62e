"""Alembic environment: migrations run on the connection ``history.migrate`` hands over.

``history.migrate.upgrade_schema`` takes the advisory lock on that connection first, so this
file never opens one of its own (and there is no alembic.ini: the package is the whole setup).
"""

from __future__ import annotations

from alembic import context

from agent_service.history.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("history migrations run through `agent-service history migrate`")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
