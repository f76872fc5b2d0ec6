"""Initial ca_tsa schema: issued certificates and the TSA serial counter.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ca_tsa.models import UtcDateTime

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ca_issued_certificate",
        sa.Column("serial", sa.String(length=40), primary_key=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("profile", sa.String(length=16), nullable=False),
        sa.Column("member_id", sa.String(length=200), nullable=False),
        sa.Column("server_code", sa.String(length=64), nullable=True),
        sa.Column("not_before", UtcDateTime(), nullable=False),
        sa.Column("not_after", UtcDateTime(), nullable=False),
        sa.Column("issued_at", UtcDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("revocation_reason", sa.String(length=32), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("sha256", name="uq_ca_issued_certificate_sha256"),
    )
    op.create_index(
        "ix_ca_issued_certificate_member_id", "ca_issued_certificate", ["member_id"]
    )
    op.create_index(
        "ix_ca_issued_certificate_issued_at", "ca_issued_certificate", ["issued_at"]
    )
    counter = op.create_table(
        "ca_tsa_serial_counter",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("next_serial", sa.BigInteger(), nullable=False),
    )
    # One row, created with the table, so reservations only ever UPDATE it.
    op.bulk_insert(counter, [{"id": 1, "next_serial": 1}])


def downgrade() -> None:
    op.drop_table("ca_tsa_serial_counter")
    op.drop_index("ix_ca_issued_certificate_issued_at", "ca_issued_certificate")
    op.drop_index("ix_ca_issued_certificate_member_id", "ca_issued_certificate")
    op.drop_table("ca_issued_certificate")
