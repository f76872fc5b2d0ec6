"""certificate requests: the approver's claim while the CA issues

Revision ID: 0004_certificate_request_claim
Revises: 0003_management_requests
Create Date: 2026-11-23 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_certificate_request_claim"
down_revision = "0003_management_requests"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("certificate_request") as batch:
        batch.add_column(sa.Column("claim_token", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(length=255), nullable=True))
        batch.add_column(
            sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("certificate_request") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("claimed_by")
        batch.drop_column("claim_token")
