"""onboarding: requests sent to the central server

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "central_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=600), nullable=False),
        sa.Column("central_id", sa.String(length=64), nullable=True),
        sa.Column("requester_token", sa.Text(), nullable=True),
        sa.Column("central_url", sa.String(length=2048), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("central_request", schema=None) as batch_op:
        batch_op.create_index(
            "ix_central_request_kind_target", ["kind", "target"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("central_request", schema=None) as batch_op:
        batch_op.drop_index("ix_central_request_kind_target")
    op.drop_table("central_request")
