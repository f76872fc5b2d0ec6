"""message log: a batch's signature document stored once, not in every record

Revision ID: 0007
Revises: 0006

- ``message_signature``: one row per signature document (``id``, its
  ``signature_hash``, the document).
- ``message_log.signature_xml`` moves there; ``message_log.signature_id``
  names the row (a foreign key, with an index: retention finds a document's
  last record by it). ``message_log.signature_hash`` stays (the time-stamper's
  input).
- ``ix_message_log_timestamp_id``: retention deletes a time-stamp with the
  last record it covers; without the index, finding that record scanned the
  whole log once per time-stamp.

A batch signature covers every message of its batch, and the document (with
its certificates and OCSP responses) was most of each record's bytes. On
SQLite the upgrade rebuilds ``message_log``: it needs free disk space of about
the size of the log and runs for a while on a large one (see
docs/install.md, the paragraph on migrations).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_UNSTAMPED = "ix_message_log_untimestamped"
_WHERE = "timestamp_id IS NULL"
_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _untimestamped_index() -> None:
    # Dropped before the SQLite table rebuild and recreated here, rather than
    # left to the rebuild's reflection: its WHERE then does not depend on
    # whether the installed SQLAlchemy reflects partial indexes.
    op.create_index(
        _UNSTAMPED,
        "message_log",
        ["id"],
        unique=False,
        postgresql_where=sa.text(_WHERE),
        sqlite_where=sa.text(_WHERE),
    )


def upgrade() -> None:
    op.create_table(
        "message_signature",
        sa.Column("id", _BIGID, nullable=False),
        sa.Column("signature_hash", sa.String(length=100), nullable=False),
        sa.Column("signature_xml", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # Equal hashes are equal documents (SHA-512 of the bytes): one row each,
    # in the order of their first record. MIN picks one of the equal texts.
    op.execute(
        "INSERT INTO message_signature (signature_hash, signature_xml) "
        "SELECT signature_hash, MIN(signature_xml) FROM message_log "
        "GROUP BY signature_hash ORDER BY MIN(id)"
    )
    # Only for the UPDATE below (the writer never looks a document up by hash).
    op.create_index("ix_tmp_message_signature_hash", "message_signature", ["signature_hash"])
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signature_id", _BIGID, nullable=True))
    op.execute(
        "UPDATE message_log SET signature_id = (SELECT s.id FROM message_signature s "
        "WHERE s.signature_hash = message_log.signature_hash)"
    )
    op.drop_index("ix_tmp_message_signature_hash", table_name="message_signature")
    op.drop_index(_UNSTAMPED, table_name="message_log")
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.alter_column("signature_id", existing_type=_BIGID, nullable=False)
        batch_op.drop_column("signature_xml")
        batch_op.create_index(
            "ix_message_log_signature_id", ["signature_id"], unique=False
        )
        batch_op.create_index(
            "ix_message_log_timestamp_id", ["timestamp_id"], unique=False
        )
        batch_op.create_foreign_key(
            "fk_message_log_signature_id",
            "message_signature",
            ["signature_id"],
            ["id"],
        )
    _untimestamped_index()


def downgrade() -> None:
    op.drop_index(_UNSTAMPED, table_name="message_log")
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.drop_constraint("fk_message_log_signature_id", type_="foreignkey")
        batch_op.drop_index("ix_message_log_timestamp_id")
        batch_op.drop_index("ix_message_log_signature_id")
        batch_op.add_column(sa.Column("signature_xml", sa.Text(), nullable=True))
    op.execute(
        "UPDATE message_log SET signature_xml = (SELECT s.signature_xml "
        "FROM message_signature s WHERE s.id = message_log.signature_id)"
    )
    with op.batch_alter_table("message_log", schema=None) as batch_op:
        batch_op.alter_column("signature_xml", existing_type=sa.Text(), nullable=False)
        batch_op.drop_column("signature_id")
    _untimestamped_index()
    op.drop_table("message_signature")
