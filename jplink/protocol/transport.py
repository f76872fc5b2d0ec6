"""The message between security servers (PR-MESSTRANSP §3.1): build and parse.

A transport message is a ``multipart/mixed`` body whose parts come in a strict
order (PROTOCOLS.md §5.4):

1. ``application/ocsp-response`` parts: DER OCSP responses for the sender's
   authentication certificate chain (requests only);
2. the SOAP part (``text/xml`` or, for MTOM, ``application/xop+xml``) with the
   bytes and MIME headers exactly as the information system sent them;
3. optionally one nested ``multipart/mixed`` holding every attachment as a
   part with its original MIME headers;
4. for a batch signature, ``application/hash-chain-result`` and then
   ``application/hash-chain``;
5. the signature, ``signature/bdoc-1.0/ts``; or, if the sender failed after
   streaming the earlier parts, a ``text/xml`` SOAP fault instead.

Sans-IO: bytes in, a frozen :class:`TransportMessage` out, and back. Bodies are
never transfer-decoded: the signature covers the raw bytes. Parsing checks the
framing only; the signature, the OCSP responses and the SOAP content are
verified by their own modules, and :func:`signed_parts_of` says what the
signature must cover. The REST variant of the protocol is not handled here.

This module builds messages; the model is ``_transport_parts`` and the reader
``_transport_reader``; every public name is importable from here.
"""

from __future__ import annotations

import secrets

from ..errors import MalformedMessage
from ..security.signature import SignedPart
from ._transport_parts import (
    DEFAULT_MAX_TRANSPORT_BYTES,
    EncodedTransport,
    PartType,
    TransportMessage,
)
from ._transport_reader import parse_transport_message
from .mime import MimePart, build_multipart

__all__ = [
    "DEFAULT_MAX_TRANSPORT_BYTES",
    "EncodedTransport",
    "PartType",
    "TransportMessage",
    "build_transport_message",
    "parse_transport_message",
    "signed_parts_of",
]

_MESSAGE_URI = "/message.xml"


def signed_parts_of(message: TransportMessage) -> list[SignedPart]:
    """The parts a transport message's signature must cover, in order.

    ``/message.xml`` is the SOAP bytes, ``/attachmentN`` (from 1) the raw body
    of the N-th attachment: the names X-Road's signer and verifier use (and
    the ASiC container entries). Pass them to ``verify_signature`` as
    ``{p.uri: p.data for p in parts}`` with the message's hash-chain parts.

    Args:
        message: a built or parsed transport message.

    Returns:
        The signed parts; attachments carry their media type.
    """
    parts = [SignedPart(_MESSAGE_URI, message.soap)]
    for number, attachment in enumerate(message.attachments, start=1):
        try:
            media_type = attachment.content_type.media_type
        except MalformedMessage:  # only written to DataObjectFormat
            media_type = "application/octet-stream"
        parts.append(SignedPart(f"/attachment{number}", attachment.body, media_type))
    return parts


def _part(part_type: PartType, body: bytes) -> MimePart:
    return MimePart.create([("Content-Type", part_type.value)], body)


def _encode(message: TransportMessage, unique: str) -> EncodedTransport:
    top = f"xtop{unique}"
    parts = [_part(PartType.OCSP_RESPONSE, der) for der in message.ocsp_responses]
    parts.append(message.soap_part)
    if message.attachments:
        nested = f"xatt{unique}"
        parts.append(
            MimePart.create(
                [
                    (
                        "Content-Type",
                        f"multipart/mixed; charset=UTF-8; boundary={nested}",
                    )
                ],
                build_multipart(message.attachments, nested),
            )
        )
    if message.hash_chain_result is not None and message.hash_chain is not None:
        parts.append(_part(PartType.HASH_CHAIN_RESULT, message.hash_chain_result))
        parts.append(_part(PartType.HASH_CHAIN, message.hash_chain))
    parts.append(_part(PartType.SIGNATURE, message.signature))
    return EncodedTransport(
        content_type=f"multipart/mixed; charset=UTF-8; boundary={top}",
        body=build_multipart(parts, top),
    )


def build_transport_message(
    message: TransportMessage, *, boundary_id: str | None = None
) -> EncodedTransport:
    """Encode a transport message in X-Road's part order and headers.

    The top boundary is ``xtop<id>`` and the nested attachment boundary
    ``xatt<id>``, as X-Road's ``ProxyMessageEncoder`` writes them.

    Args:
        message: what to send.
        boundary_id: the random part of the boundaries; a fresh one by default
            (a fixed one is for reproducible tests).

    Returns:
        The Content-Type and the body.

    Raises:
        ValueError: a given ``boundary_id`` that is invalid or occurs inside
            a part.
    """
    if boundary_id is not None:
        return _encode(message, boundary_id)
    for _ in range(2):
        try:
            return _encode(message, secrets.token_hex(16))
        except ValueError:  # pragma: no cover - a 128-bit random collision
            continue
    return _encode(message, secrets.token_hex(16))
