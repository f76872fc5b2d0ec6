"""message log time-stamping: the encryption key id of each record

Revision ID: 0004
Revises: 0003

- ``message_log.message_key_id``: the logcrypt key that encrypted the
  record's message and attachment (AES-GCM); NULL for bodies kept in clear.

The time-stamper's work queue (``ix_message_log_untimestamped``) and the
retention index (``ix_message_log_archive``) exist since 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("message_key_id", sa.String(length=64), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.drop_column("message_key_id")
