"""message log archives: archive chain state, transfer queue, record outcome

Revision ID: 0005
Revises: 0004

- ``last_archive_digest``: where each archive chain stands (PROTOCOLS.md §12.5).
- ``pending_archive_transfer``: archives the transfer hook has yet to accept.
- ``message_log.fault`` / ``fault_code``: the outcome, for the auditor's search;
  ``message_log.archive_file``: the archive a record went to; an index for the
  search by client and time.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "last_archive_digest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_name", sa.String(length=600), nullable=False),
        sa.Column("digest", sa.String(length=128), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_name"),
    )
    op.create_table(
        "pending_archive_transfer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=4096), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("path"),
    )
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fault", sa.Boolean(), nullable=True))
        batch_op.add_column(
            sa.Column("fault_code", sa.String(length=255), nullable=True)
        )
        batch_op.add_column(
            sa.Column("archive_file", sa.String(length=255), nullable=True)
        )
        batch_op.create_index(
            "ix_message_log_client_time", ["client", "logged_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.drop_index("ix_message_log_client_time")
        batch_op.drop_column("archive_file")
        batch_op.drop_column("fault_code")
        batch_op.drop_column("fault")
    op.drop_table("pending_archive_transfer")
    op.drop_table("last_archive_digest")
