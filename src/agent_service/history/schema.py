"""The history tables, as SQLAlchemy Core metadata (the migrations create exactly this).

``history_runs``: one row per finished run (task or sync run), with the columns the list and
usage queries filter and group by, the record and steps as JSONB, and the run's feedback.
``history_run_tools``: one row per (run, tool used), carrying the run's tenant and creation
time, so "top tools" over a window is a range scan of one index, not an unnest of every run.
Deleting a run deletes its tool rows (``ON DELETE CASCADE``).

Every query filters by ``created_at`` (when the run was made); timestamps are ``timestamptz``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

VERSION_TABLE = "history_alembic_version"
"""Alembic's revision table, named for this feature so the database can be shared."""

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    }
)

runs = Table(
    "history_runs",
    metadata,
    Column("id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("tenant", Text, nullable=False),
    Column("key_id", Text),
    Column("user_id", Text, comment="the request's metadata.user"),
    Column("agent", Text, nullable=False),
    Column("model", Text),
    Column("status", Text, nullable=False),
    Column("error_type", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("duration_ms", Double),
    Column("queue_wait_ms", Double),
    Column("input_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("output_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("total_tokens", BigInteger, nullable=False, server_default=text("0")),
    Column("cost_usd", Numeric(20, 10, asdecimal=False), nullable=False, server_default=text("0")),
    Column("trace_id", Text),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("record", JSONB, nullable=False),
    Column("steps", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("feedback_score", SmallInteger),
    Column("feedback_comment", Text),
    Column("feedback_at", DateTime(timezone=True)),
    Column("archived_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("kind IN ('task', 'sync')", name="kind"),
    CheckConstraint("feedback_score IN (-1, 1)", name="feedback_score"),
)
# The list (newest first, keyset on created_at, id) per tenant, and with its two filters.
Index(None, runs.c.tenant, runs.c.created_at, runs.c.id)
Index(None, runs.c.tenant, runs.c.status, runs.c.created_at, runs.c.id)
Index(None, runs.c.tenant, runs.c.agent, runs.c.created_at, runs.c.id)
# The admin's usage over every tenant, and retention.
Index(None, runs.c.created_at)

run_tools = Table(
    "history_run_tools",
    metadata,
    Column(
        "run_id",
        Text,
        ForeignKey(runs.c.id, ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("tool", Text, primary_key=True),
    Column("tenant", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("calls", Integer, nullable=False),
    Column("errors", Integer, nullable=False, server_default=text("0")),
    Column("duration_ms", Double, nullable=False, server_default=text("0")),
)
Index(None, run_tools.c.tenant, run_tools.c.created_at, run_tools.c.tool)
Index(None, run_tools.c.created_at, run_tools.c.tool)
