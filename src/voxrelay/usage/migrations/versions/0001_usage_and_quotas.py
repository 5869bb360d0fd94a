"""Usage records per session and per-key quotas.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("endpoint", sa.String(32), nullable=False),
        sa.Column("engine", sa.String(32), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("audio_seconds", sa.Float(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=True),
    )
    op.create_index("ix_usage_sessions_key_started", "usage_sessions", ["key", "started_at"])
    op.create_index("ix_usage_sessions_started", "usage_sessions", ["started_at"])
    op.create_table(
        "quotas",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("audio_seconds", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("quotas")
    op.drop_index("ix_usage_sessions_started", "usage_sessions")
    op.drop_index("ix_usage_sessions_key_started", "usage_sessions")
    op.drop_table("usage_sessions")
