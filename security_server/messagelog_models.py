"""The message log's tables: records, their signatures, time-stamps, archives.

Created by Alembic (``security_server/migrations``); re-exported by
:mod:`security_server.models`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ._model_base import BIGID, CODE_LEN, ID_LEN, TIMESTAMP, Base

__all__ = [
    "LastArchiveDigest",
    "MessageLogRecord",
    "MessageSignature",
    "MessageTimestamp",
    "PendingArchiveTransfer",
]


class MessageTimestamp(Base):
    """One RFC 3161 token covering one record or a batch (PROTOCOLS.md §12.2)."""

    __tablename__ = "message_timestamp"
    id: Mapped[int] = mapped_column(BIGID, primary_key=True)
    token_der: Mapped[bytes] = mapped_column(LargeBinary)
    #: The ts hash-chain result XML (the time-stamped data) for a batch.
    hash_chain_result: Mapped[str | None] = mapped_column(Text, nullable=True)
    gen_time: Mapped[dt.datetime] = mapped_column(TIMESTAMP)
    tsa_url: Mapped[str] = mapped_column(String(2048))
    created_at: Mapped[dt.datetime] = mapped_column(TIMESTAMP)


class MessageSignature(Base):
    """A signature document, stored once for the records it signs.

    A batch signature (PROTOCOLS.md §6.3) is one document, of several KB with
    its certificates and OCSP responses, for every message of the batch; kept
    in each record it was most of a record's bytes and of the cost of writing
    and time-stamping one. Records point here by ``id``: a key that grows with
    each insert, so that neither this table nor ``message_log``'s index on it
    takes inserts at random places (a key on the digest did, and halved the
    write rate of records whose documents are all different). Which document
    is already stored is known to the writer that stored it
    (:class:`security_server.messagelog_signatures.SignatureIds`); another
    worker process may store the same document again, under its own id.
    Retention deletes a row with the last record that points to it.
    """

    __tablename__ = "message_signature"
    id: Mapped[int] = mapped_column(BIGID, primary_key=True)
    #: base64 SHA-512 of ``signature_xml``'s UTF-8 bytes (the records'
    #: ``signature_hash``).
    signature_hash: Mapped[str] = mapped_column(String(100))
    signature_xml: Mapped[str] = mapped_column(Text)


class MessageLogRecord(Base):
    """A logged request or response (PROTOCOLS.md §12.1, X-Road ``logrecord``)."""

    __tablename__ = "message_log"
    __table_args__ = (
        # The time-stamper's work queue: records without a time-stamp, oldest first.
        Index(
            "ix_message_log_untimestamped",
            "id",
            postgresql_where=text("timestamp_id IS NULL"),
            sqlite_where=text("timestamp_id IS NULL"),
        ),
        Index("ix_message_log_archive", "archived", "logged_at"),
    )
    id: Mapped[int] = mapped_column(BIGID, primary_key=True)
    query_id: Mapped[str] = mapped_column(String(ID_LEN), index=True)
    client: Mapped[str] = mapped_column(String(ID_LEN))
    service: Mapped[str] = mapped_column(String(ID_LEN))
    direction: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(16))
    logged_at: Mapped[dt.datetime] = mapped_column(TIMESTAMP, index=True)
    x_request_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: The message bytes; None when the mode keeps metadata only.
    message: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: REST body (PROTOCOLS.md §12.1 ``attachment``), if logged.
    attachment: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: base64 SHA-512 of the signature XML's UTF-8 bytes (ts hash-chain
    #: input); the document itself is the ``message_signature`` row.
    signature_hash: Mapped[str] = mapped_column(String(100))
    signature_id: Mapped[int] = mapped_column(
        BIGID, ForeignKey("message_signature.id"), index=True
    )
    #: Batch signature: the message's hash chain and the chain result.
    hash_chain: Mapped[str | None] = mapped_column(Text, nullable=True)
    hash_chain_result: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: hex SHA-256 of the signer certificate.
    signer_cert_sha256: Mapped[str] = mapped_column(String(64))
    #: JSON list of base64 DER OCSP responses embedded in the signature.
    ocsp_responses: Mapped[str] = mapped_column(Text, default="[]")
    #: Indexed: retention deletes a time-stamp with the last record it covers.
    timestamp_id: Mapped[int | None] = mapped_column(
        BIGID, ForeignKey("message_timestamp.id"), nullable=True, index=True
    )
    #: This record's ts hash chain within its time-stamp batch.
    timestamp_hash_chain: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: Id of the logcrypt key that encrypted ``message`` and ``attachment``
    #: (AES-GCM, :mod:`security_server.logcrypt`); None: stored in clear.
    message_key_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Whether the message is a SOAP fault (None: not known, e.g. logged
    #: before outcomes were recorded; see :mod:`security_server.messagelog_query`).
    fault: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    #: The fault's ``faultcode``, when ``fault`` is true.
    fault_code: Mapped[str | None] = mapped_column(String(CODE_LEN), nullable=True)
    #: File name of the archive the record was written to.
    archive_file: Mapped[str | None] = mapped_column(String(CODE_LEN), nullable=True)
    #: The signature document (loaded with the record: one join).
    signature: Mapped[MessageSignature] = relationship(lazy="joined", innerjoin=True)

    @property
    def signature_xml(self) -> str:
        """The signature document as logged (shared by a batch's records)."""
        return self.signature.signature_xml


#: The auditor's search: one client's records in time order.
Index(
    "ix_message_log_client_time",
    MessageLogRecord.client,
    MessageLogRecord.logged_at,
)


class LastArchiveDigest(Base):
    """Where each archive chain stands (X-Road ``last_archive_digest``).

    The next archive of ``group_name`` links to ``digest`` (PROTOCOLS.md §12.5).
    """

    __tablename__ = "last_archive_digest"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The archive group ("" for the ungrouped chain; a member when archives
    #: are encrypted per member).
    group_name: Mapped[str] = mapped_column(String(ID_LEN), unique=True)
    #: hex linking digest of the last entry of the last archive.
    digest: Mapped[str] = mapped_column(String(128))
    #: File name of that archive.
    file_name: Mapped[str] = mapped_column(String(CODE_LEN))
    updated_at: Mapped[dt.datetime] = mapped_column(TIMESTAMP)


class PendingArchiveTransfer(Base):
    """An archive file the transfer hook has not yet accepted (retried)."""

    __tablename__ = "pending_archive_transfer"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(String(4096), unique=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(TIMESTAMP)
    updated_at: Mapped[dt.datetime] = mapped_column(TIMESTAMP)
