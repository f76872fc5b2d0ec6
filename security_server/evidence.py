"""Evidence export: the ASiC-E container of a logged message (PROTOCOLS.md §12.3).

A container holds what an auditor needs to prove an exchange without trusting
the operator: the message bytes exactly as signed, the signature XML with the
OCSP responses embedded at signing time, the batch-signature hash chain, and
the time-stamp: either a single token embedded in the signature
(``xades:SignatureTimeStamp``) or a batch token with this record's ts hash
chain (``META-INF/timestamp.tst``, ``ts-hashchain.xml``,
``ts-hashchainresult.xml``, ``META-INF/ASiCManifest.xml``). The layout is
built by :func:`jplink.asic.build_asic_container`, which writes X-Road's.

A record without a time-stamp yet is exported only when the caller says so
(``allow_unstamped=True``); such a container proves nothing about *when*.
Records logged in ``metadata`` mode hold no message and have no container.
Bodies encrypted at rest are decrypted through a :class:`BodyDecryptor`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select

from jplink.asic import build_asic_container
from jplink.errors import Conflict, JPLinkError, MalformedMessage, NotFound
from jplink.storage import Database
from jplink.xml import parse_xml

from .config import SecurityServerConfig
from .logcrypt import LogKeystore, load_keystore, record_aad
from .models import MessageLogRecord, MessageTimestamp
from .states import LogDirection

__all__ = [
    "ASIC_CONTENT_TYPE",
    "BodyDecryptor",
    "Evidence",
    "build_record_container",
    "container_name",
    "decryptor_for",
    "export_record",
    "export_records",
    "keystore_decryptor",
]

#: Media type of one container (ETSI EN 319 162-1).
ASIC_CONTENT_TYPE = "application/vnd.etsi.asic-e+zip"

_XADES_TS = "{http://uri.etsi.org/01903/v1.3.2#}SignatureTimeStamp"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: X-Road's AsicContainerNameGenerator keeps at most 226 characters of the id.
_MAX_QUERY_ID = 226
_BASE32 = "0123456789abcdefghijklmnopqrstuv"


class BodyDecryptor(Protocol):
    """Turns a record's stored body back into plain bytes (encryption at rest)."""

    def __call__(self, record: MessageLogRecord) -> tuple[bytes | None, bytes | None]:
        """Return the plain (message, attachment) of ``record``.

        Raises:
            SecurityError: the key is missing or the ciphertext is corrupt.
        """
        ...


@dataclass(frozen=True, slots=True)
class Evidence:
    """The container of one record.

    Attributes:
        record_id: the message-log record.
        query_id: the exchange's query id.
        direction: request or response.
        file_name: ``<escaped queryId>-<request|response>-<seq>.asice``.
        data: the container bytes.
        timestamped: False only for an explicitly requested unstamped export.
    """

    record_id: int
    query_id: str
    direction: LogDirection
    file_name: str
    data: bytes
    timestamped: bool


def _base32(number: int) -> str:
    # Java's Long.toUnsignedString(seq, 32), as X-Road names archive entries.
    digits = []
    while True:
        number, rest = divmod(number, 32)
        digits.append(_BASE32[rest])
        if number == 0:
            return "".join(reversed(digits))


def container_name(query_id: str, direction: LogDirection, record_id: int) -> str:
    """X-Road's container file name ``<queryId>-<request|response>-<seq>.asice``.

    Characters other than letters, digits, ``.``, ``_`` and ``-`` are replaced
    by ``_``, so the name is safe in a ZIP and on any file system.

    Args:
        query_id: the record's query id.
        direction: request or response.
        record_id: the record id (the sequence part, in base 32).

    Returns:
        The file name.
    """
    escaped = _UNSAFE.sub("_", query_id)[:_MAX_QUERY_ID] or "_"
    return f"{escaped}-{direction.value}-{_base32(record_id)}.asice"


def _has_embedded_timestamp(signature: bytes) -> bool:
    return any(True for _ in parse_xml(signature).iter(_XADES_TS))


def _plain_bodies(
    record: MessageLogRecord, decrypt: BodyDecryptor | None
) -> tuple[bytes, bytes | None]:
    key_id = getattr(record, "message_key_id", None)  # encryption at rest
    if key_id is not None:
        if decrypt is None:
            raise Conflict(
                f"Record {record.id} is encrypted (key {key_id}); "
                "the message-log keystore is needed to export it",
                code="EncryptedRecord",
            )
        message, attachment = decrypt(record)
    else:
        message, attachment = record.message, record.attachment
    if message is None:
        raise Conflict(
            f"Record {record.id} was logged without its message (metadata mode); "
            "there is no container to export",
            code="NoMessageLogged",
        )
    return message, attachment


def keystore_decryptor(keystore: LogKeystore) -> BodyDecryptor:
    """A decryptor for bodies encrypted by :mod:`.logcrypt`."""

    def decrypt(record: MessageLogRecord) -> tuple[bytes | None, bytes | None]:
        key_id = str(getattr(record, "message_key_id", None))
        aad = record_aad(record.query_id, record.direction, record.side, record.client)
        return tuple(  # type: ignore[return-value]
            None if blob is None else keystore.decrypt(key_id, blob, aad)
            for blob in (record.message, record.attachment)
        )

    return decrypt


def decryptor_for(config: SecurityServerConfig) -> BodyDecryptor | None:
    """The decryptor of the configured keystore, or None without encryption.

    Raises:
        ConfigurationError: the keystore cannot be loaded.
    """
    path = config.message_log.encryption_keystore
    return None if path is None else keystore_decryptor(load_keystore(path))


def build_record_container(
    record: MessageLogRecord,
    timestamp: MessageTimestamp | None,
    *,
    allow_unstamped: bool = False,
    decrypt: BodyDecryptor | None = None,
) -> Evidence:
    """Build the container of one loaded record (no I/O).

    Args:
        record: the message-log record.
        timestamp: its time-stamp row (``record.timestamp_id``), or None.
        allow_unstamped: export a record that has no time-stamp yet.
        decrypt: decrypts bodies encrypted at rest.

    Returns:
        The evidence.

    Raises:
        Conflict: ``NotTimestamped`` (no time-stamp and not allowed),
            ``NoMessageLogged`` (metadata mode), ``EncryptedRecord`` (no
            decryptor for an encrypted body).
        MalformedMessage: ``MalformedLogRecord``: the stored evidence is
            inconsistent (a batch token without this record's ts hash chain).
    """
    if timestamp is None and not allow_unstamped:
        raise Conflict(
            f"Record {record.id} has no time-stamp yet; retry after the next "
            "time-stamping round, or export it explicitly without one",
            code="NotTimestamped",
        )
    message, attachment = _plain_bodies(record, decrypt)
    signature = record.signature_xml.encode("utf-8")
    token: bytes | None = None
    ts_chain = ts_result = None
    if timestamp is not None:
        if timestamp.hash_chain_result is not None:
            if record.timestamp_hash_chain is None:
                raise MalformedMessage(
                    f"Record {record.id} is in a batch time-stamp but has no "
                    "ts hash chain",
                    code="MalformedLogRecord",
                )
            token = timestamp.token_der
            ts_chain = record.timestamp_hash_chain.encode("utf-8")
            ts_result = timestamp.hash_chain_result.encode("utf-8")
        elif not _has_embedded_timestamp(signature):
            # PROTOCOLS.md §12.2: a single time-stamp "is inserted into the
            # signature as the first child of xades:UnsignedSignatureProperties".
            token = timestamp.token_der
    chain = record.hash_chain
    chain_result = record.hash_chain_result
    data = build_asic_container(
        message=message,
        signature=signature,
        attachments=() if attachment is None else (attachment,),
        hash_chain=None if chain is None else chain.encode("utf-8"),
        hash_chain_result=None if chain_result is None else chain_result.encode(),
        timestamp=token,
        ts_hash_chain=ts_chain,
        ts_hash_chain_result=ts_result,
    )
    direction = LogDirection(record.direction)
    return Evidence(
        record_id=record.id,
        query_id=record.query_id,
        direction=direction,
        file_name=container_name(record.query_id, direction, record.id),
        data=data,
        timestamped=timestamp is not None,
    )


async def export_records(
    db: Database,
    record_ids: Sequence[int],
    *,
    allow_unstamped: bool = False,
    decrypt: BodyDecryptor | None = None,
) -> tuple[Evidence, ...]:
    """Load records with their time-stamps and build their containers.

    Args:
        db: the security server's database.
        record_ids: the records, in the order wanted.
        allow_unstamped: export records that have no time-stamp yet.
        decrypt: decrypts bodies encrypted at rest.

    Returns:
        One evidence per id, in the given order.

    Raises:
        NotFound: code ``RecordNotFound`` for an unknown id.
        Conflict: see :func:`build_record_container`.
        MalformedMessage: the stored evidence is inconsistent.
    """
    if not record_ids:
        return ()
    async with db.transaction() as session:
        rows = (
            await session.execute(
                select(MessageLogRecord, MessageTimestamp)
                .outerjoin(
                    MessageTimestamp,
                    MessageTimestamp.id == MessageLogRecord.timestamp_id,
                )
                .where(MessageLogRecord.id.in_(list(record_ids)))
            )
        ).all()
    found = {record.id: (record, ts) for record, ts in rows}
    out = []
    for record_id in record_ids:
        if record_id not in found:
            raise NotFound(f"No message-log record {record_id}", code="RecordNotFound")
        record, ts = found[record_id]
        try:
            out.append(
                build_record_container(
                    record, ts, allow_unstamped=allow_unstamped, decrypt=decrypt
                )
            )
        except JPLinkError as exc:
            exc.detail.setdefault("record_id", record_id)
            raise
    return tuple(out)


async def export_record(
    db: Database,
    record_id: int,
    *,
    allow_unstamped: bool = False,
    decrypt: BodyDecryptor | None = None,
) -> Evidence:
    """The container of one record (see :func:`export_records`)."""
    (evidence,) = await export_records(
        db, [record_id], allow_unstamped=allow_unstamped, decrypt=decrypt
    )
    return evidence
