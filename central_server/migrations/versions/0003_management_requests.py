"""management requests; server maintenance mode and client enabled flags

Revision ID: 0003_management_requests
Revises: 0001
Create Date: 2026-11-22 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_management_requests"
down_revision = "0002_conf_signing_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "management_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("server", sa.String(length=1100), nullable=False),
        sa.Column("client", sa.String(length=1100), nullable=True),
        sa.Column("address", sa.String(length=255), nullable=True),
        sa.Column("auth_cert_der", sa.LargeBinary(), nullable=True),
        sa.Column("auth_cert_hash", sa.String(length=64), nullable=True),
        sa.Column("subsystem_name", sa.Text(), nullable=True),
        sa.Column("message_text", sa.Text(), nullable=True),
        sa.Column("sender", sa.String(length=1100), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("signer", sa.String(length=1100), nullable=True),
        sa.Column("pending_key", sa.String(length=1300), nullable=True),
        sa.Column("auto_approved", sa.Boolean(), nullable=False),
        sa.Column("soap", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=255), nullable=True),
        sa.Column("decline_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sender", "message_id"),
        sa.UniqueConstraint("pending_key"),
    )
    with op.batch_alter_table("management_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_management_request_status"), ["status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_management_request_auth_cert_hash"),
            ["auth_cert_hash"],
            unique=False,
        )
    with op.batch_alter_table("security_server", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "in_maintenance",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
        batch_op.add_column(sa.Column("maintenance_message", sa.Text(), nullable=True))
    with op.batch_alter_table("server_client", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true())
        )


def downgrade() -> None:
    with op.batch_alter_table("server_client", schema=None) as batch_op:
        batch_op.drop_column("enabled")
    with op.batch_alter_table("security_server", schema=None) as batch_op:
        batch_op.drop_column("maintenance_message")
        batch_op.drop_column("in_maintenance")
    with op.batch_alter_table("management_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_management_request_auth_cert_hash"))
        batch_op.drop_index(batch_op.f("ix_management_request_status"))
    op.drop_table("management_request")
