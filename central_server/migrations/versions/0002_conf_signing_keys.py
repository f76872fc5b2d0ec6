"""configuration signing keys

Revision ID: 0002_conf_signing_keys
Revises: 0001
Create Date: 2026-11-22 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_conf_signing_keys"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conf_signing_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("source_type", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("cert_der", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_id"),
    )
    with op.batch_alter_table("conf_signing_key", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conf_signing_key_source_type"),
            ["source_type"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("conf_signing_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conf_signing_key_source_type"))
    op.drop_table("conf_signing_key")
