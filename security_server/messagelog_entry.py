"""A message-log record before it is stored, built from a signed message.

PROTOCOLS.md §12.1: "Both SSs log every request and every response"; the
record keeps the query id, the message (per the log mode), the signature XML,
the hash chain and its result for a batch signature, ``signaturehash`` =
base64(SHA-512(UTF-8 bytes of the signature XML)), the client and the
direction. We also keep the service, the signer certificate's hash and the
OCSP responses embedded in the signature, which the evidence export needs.
:class:`.messagelog.MessageLogWriter` stores these entries.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from jplink.identifiers import ClientId, ServiceId
from jplink.protocol.transport import TransportMessage
from jplink.security.certs import certificate_der
from jplink.security.signature import VerifiedSignature

from .config import MessageLogMode
from .signer import SignedMessage
from .states import LogDirection, LogSide

__all__ = ["LogEntry", "entry_for", "log_entry", "received_entry"]


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One message-log record before it is stored (column values)."""

    query_id: str
    client: str
    service: str
    direction: LogDirection
    side: LogSide
    logged_at: dt.datetime
    x_request_id: str | None
    message: bytes | None
    signature_xml: str
    signature_hash: str
    hash_chain: str | None
    hash_chain_result: str | None
    signer_cert_sha256: str
    ocsp_responses: str
    #: The local client whose mode applies (not a column).
    local_client: str = ""
    #: The logcrypt key that encrypted ``message``; None: in clear.
    message_key_id: str | None = None
    #: Whether the message is a SOAP fault; None: not known to the caller
    #: (the writer then classifies a kept message itself).
    fault: bool | None = None
    #: The fault's ``faultcode`` when ``fault`` is true.
    fault_code: str | None = None

    def row(self) -> dict[str, object]:
        """The ``message_log`` column values for an INSERT.

        The signature document is not among them: the writer stores it once
        for the records that share it and adds their ``signature_id``.
        """
        return {
            "query_id": self.query_id,
            "client": self.client,
            "service": self.service,
            "direction": self.direction.value,
            "side": self.side.value,
            "logged_at": self.logged_at,
            "x_request_id": self.x_request_id,
            "message": self.message,
            "signature_hash": self.signature_hash,
            "hash_chain": self.hash_chain,
            "hash_chain_result": self.hash_chain_result,
            "signer_cert_sha256": self.signer_cert_sha256,
            "ocsp_responses": self.ocsp_responses,
            "message_key_id": self.message_key_id,
            "archived": False,
            "fault": self.fault,
            "fault_code": self.fault_code,
            "signature_id": None,  # the writer's, once the document is stored
        }


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8")


# A sender's certificate and OCSP responses are the same for many messages in
# a row: their column values are computed once (bounded caches).
@functools.lru_cache(maxsize=256)
def _cert_sha256(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


@functools.lru_cache(maxsize=256)
def _ocsp_json(ders: tuple[bytes, ...]) -> str:
    return json.dumps([base64.b64encode(d).decode("ascii") for d in ders])


@functools.lru_cache(maxsize=256)
def _signature_fields(signature_xml: bytes) -> tuple[str, str]:
    # The messages of a batch share one signature document: it is decoded
    # and hashed once, not once per record.
    # PROTOCOLS.md §12.1: signaturehash = base64(SHA-512(UTF-8 bytes of the
    # signature XML)).
    digest = hashlib.sha512(signature_xml).digest()
    return signature_xml.decode("utf-8"), base64.b64encode(digest).decode("ascii")


def log_entry(
    *,
    query_id: str,
    client: ClientId,
    service: ServiceId,
    direction: LogDirection,
    side: LogSide,
    soap: bytes,
    signature_xml: bytes,
    hash_chain: bytes | None,
    hash_chain_result: bytes | None,
    signer_cert_der: bytes,
    ocsp_ders: Sequence[bytes],
    mode: MessageLogMode,
    x_request_id: str | None,
    now: dt.datetime,
    fault: bool | None = None,
    fault_code: str | None = None,
) -> LogEntry:
    """Build the record of one signed message.

    Args:
        query_id: the SOAP ``id``.
        client, service: the message's header identifiers.
        direction, side: request or response; which proxy logs it.
        soap: the SOAP bytes exactly as signed.
        signature_xml, hash_chain, hash_chain_result: as sent or received.
        signer_cert_der: the signing certificate.
        ocsp_ders: the OCSP responses embedded in the signature.
        mode: ``full`` keeps ``soap``; ``metadata`` keeps no message.
        x_request_id: the ``x-road-request-id`` shared by request and response.
        now: when it is logged.
        fault, fault_code: the outcome, when the caller knows it (the proxies
            do: they parsed the message). None: the writer classifies a
            kept message with :func:`.messagelog_query.message_outcome`.

    Returns:
        The record.

    Raises:
        MalformedMessage: never for our own bytes; a signature or chain that is
            not UTF-8 raises ``UnicodeDecodeError`` from the codec (a bug).
    """
    signature_text, signature_hash = _signature_fields(bytes(signature_xml))
    return LogEntry(
        query_id=query_id,
        client=str(client),
        service=str(service),
        direction=direction,
        side=side,
        logged_at=now,
        x_request_id=x_request_id,
        message=soap if mode is MessageLogMode.FULL else None,
        signature_xml=signature_text,
        signature_hash=signature_hash,
        hash_chain=_text(hash_chain),
        hash_chain_result=_text(hash_chain_result),
        signer_cert_sha256=_cert_sha256(signer_cert_der),
        ocsp_responses=_ocsp_json(tuple(ocsp_ders)),
        local_client=str(client if side is LogSide.CLIENT_PROXY else service.client),
        fault=fault,
        fault_code=fault_code if fault else None,
    )


def entry_for(
    signed: SignedMessage,
    **fields: object,
) -> LogEntry:
    """Shorthand of :func:`log_entry` for a message we signed ourselves."""
    return log_entry(
        signature_xml=signed.signature.signature_xml,
        hash_chain=signed.signature.hash_chain,
        hash_chain_result=signed.signature.hash_chain_result,
        signer_cert_der=signed.signer_cert_der,
        ocsp_ders=signed.ocsp_ders,
        **fields,  # type: ignore[arg-type]
    )


def received_entry(
    message: TransportMessage,
    verified: VerifiedSignature,
    **fields: object,
) -> LogEntry:
    """Shorthand of :func:`log_entry` for a message a peer signed and we verified."""
    return log_entry(
        soap=message.soap,
        signature_xml=message.signature,
        hash_chain=message.hash_chain,
        hash_chain_result=message.hash_chain_result,
        signer_cert_der=certificate_der(verified.signer_certificate),
        ocsp_ders=verified.ocsp_responses,
        **fields,  # type: ignore[arg-type]
    )
