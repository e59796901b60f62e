"""History of finished runs, their tools, their feedback.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "history_runs",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text()),
        sa.Column("user_id", sa.Text(), comment="the request's metadata.user"),
        sa.Column("agent", sa.Text(), nullable=False),
        sa.Column("model", sa.Text()),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("error_type", sa.Text()),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("started_at", _TIME),
        sa.Column("finished_at", _TIME, nullable=False),
        sa.Column("duration_ms", sa.Double()),
        sa.Column("queue_wait_ms", sa.Double()),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("total_tokens", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("cost_usd", sa.Numeric(20, 10), nullable=False, server_default=sa.text("0")),
        sa.Column("trace_id", sa.Text()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("record", postgresql.JSONB(), nullable=False),
        sa.Column(
            "steps", postgresql.JSONB(), nullable=False, server_default=sa.text("'[]'::jsonb")
        ),
        sa.Column("feedback_score", sa.SmallInteger()),
        sa.Column("feedback_comment", sa.Text()),
        sa.Column("feedback_at", _TIME),
        sa.Column("archived_at", _TIME, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_history_runs"),
        sa.CheckConstraint("kind IN ('task', 'sync')", name="ck_history_runs_kind"),
        sa.CheckConstraint("feedback_score IN (-1, 1)", name="ck_history_runs_feedback_score"),
    )
    op.create_index(
        "ix_history_runs_tenant_created_at_id", "history_runs", ["tenant", "created_at", "id"]
    )
    op.create_index(
        "ix_history_runs_tenant_status_created_at_id",
        "history_runs",
        ["tenant", "status", "created_at", "id"],
    )
    op.create_index(
        "ix_history_runs_tenant_agent_created_at_id",
        "history_runs",
        ["tenant", "agent", "created_at", "id"],
    )
    op.create_index("ix_history_runs_created_at", "history_runs", ["created_at"])
    op.create_table(
        "history_run_tools",
        sa.Column("run_id", sa.Text(), nullable=False),
        sa.Column("tool", sa.Text(), nullable=False),
        sa.Column("tenant", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("duration_ms", sa.Double(), nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("run_id", "tool", name="pk_history_run_tools"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["history_runs.id"],
            name="fk_history_run_tools_run_id",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_history_run_tools_tenant_created_at_tool",
        "history_run_tools",
        ["tenant", "created_at", "tool"],
    )
    op.create_index(
        "ix_history_run_tools_created_at_tool", "history_run_tools", ["created_at", "tool"]
    )


def downgrade() -> None:
    op.drop_table("history_run_tools")
    op.drop_table("history_runs")
