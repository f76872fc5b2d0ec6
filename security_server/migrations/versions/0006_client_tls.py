"""client TLS: information-system connection type and IS certificates

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 08:25:00

Adds ``client_connection`` (the connection type an information system must
use to reach the client proxy on behalf of a client: ``HTTP``,
``HTTPS_NO_AUTH`` or ``HTTPS``; no row means ``HTTP``, as X-Road's NOSSL
default) and ``client_is_certificate`` (the TLS certificates registered for
a client's information systems, checked for ``HTTPS``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "client_connection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("connection_type", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id"),
    )
    op.create_table(
        "client_is_certificate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("cert_sha256", sa.String(length=64), nullable=False),
        sa.Column("cert_der", sa.LargeBinary(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("not_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["client.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "cert_sha256"),
    )


def downgrade() -> None:
    op.drop_table("client_is_certificate")
    op.drop_table("client_connection")
