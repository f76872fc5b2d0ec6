"""The transport message's model: its part types and the message itself.

See :mod:`jplink.protocol.transport` (which re-exports these) for the wire
format; :mod:`._transport_reader` parses it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .mime import MimePart
from .soap import SoapMessage

__all__ = [
    "DEFAULT_MAX_TRANSPORT_BYTES",
    "EncodedTransport",
    "PartType",
    "TransportMessage",
]

#: Default upper bound for a whole transport message (the largest body a
#: security server buffers before the signature is checked).
DEFAULT_MAX_TRANSPORT_BYTES = 50 * 1024 * 1024


class PartType(enum.Enum):
    """Content types of transport-message parts; the value is the wire value."""

    OCSP_RESPONSE = "application/ocsp-response"
    TEXT_XML = "text/xml"
    XOP_XML = "application/xop+xml"
    MULTIPART_MIXED = "multipart/mixed"
    HASH_CHAIN_RESULT = "application/hash-chain-result"
    HASH_CHAIN = "application/hash-chain"
    SIGNATURE = "signature/bdoc-1.0/ts"


_SOAP_TYPES = frozenset({PartType.TEXT_XML.value, PartType.XOP_XML.value})


@dataclass(frozen=True, slots=True)
class TransportMessage:
    """One request or response as exchanged between security servers.

    Attributes:
        soap_part: the SOAP part; its header block and body are kept byte for
            byte (the body is what the information system sent).
        signature: the ``signature/bdoc-1.0/ts`` document as received.
        attachments: SwA/MTOM attachments, headers and bodies untouched.
        ocsp_responses: DER OCSP responses for the sender's auth-cert chain
            (empty in responses).
        hash_chain_result: the hash-chain result XML of a batch signature.
        hash_chain: this message's hash chain XML of a batch signature.

    Raises:
        ValueError: a SOAP part that is not ``text/xml``/``application/xop+xml``,
            an empty signature, or only one of the two hash-chain parts.
    """

    soap_part: MimePart
    signature: bytes
    attachments: tuple[MimePart, ...] = ()
    ocsp_responses: tuple[bytes, ...] = ()
    hash_chain_result: bytes | None = None
    hash_chain: bytes | None = None

    def __post_init__(self) -> None:
        if self.soap_part.content_type.media_type not in _SOAP_TYPES:
            raise ValueError("the SOAP part must be text/xml or application/xop+xml")
        if not self.signature:
            raise ValueError("a transport message needs a signature")
        if (self.hash_chain_result is None) != (self.hash_chain is None):
            raise ValueError("give both the hash chain result and the hash chain")
        if any(not der for der in self.ocsp_responses):
            raise ValueError("an OCSP response part cannot be empty")

    @property
    def soap(self) -> bytes:
        """The SOAP envelope bytes exactly as sent by the information system."""
        return self.soap_part.body

    @property
    def soap_content_type(self) -> str:
        """The Content-Type header of the SOAP part."""
        return self.soap_part.header("Content-Type") or PartType.TEXT_XML.value

    @property
    def is_batch_signature(self) -> bool:
        """Whether the signature covers a hash-chain result (a batch)."""
        return self.hash_chain_result is not None

    @classmethod
    def for_soap(
        cls,
        message: SoapMessage,
        *,
        signature: bytes,
        ocsp_responses: tuple[bytes, ...] = (),
        hash_chain_result: bytes | None = None,
        hash_chain: bytes | None = None,
    ) -> TransportMessage:
        """Wrap a checked SOAP message (and its attachments) for the peer.

        Args:
            message: the message from :func:`~jplink.protocol.parse_soap_message`;
                a multipart message keeps its SOAP part headers.
            signature, ocsp_responses, hash_chain_result, hash_chain: as the
                attributes of the same name.

        Returns:
            The transport message.

        Raises:
            ValueError: as for the constructor.
        """
        soap_part = message.soap_part or MimePart.create(
            [("Content-Type", message.soap_content_type)], message.soap
        )
        return cls(
            soap_part=soap_part,
            signature=signature,
            attachments=message.attachments,
            ocsp_responses=ocsp_responses,
            hash_chain_result=hash_chain_result,
            hash_chain=hash_chain,
        )


@dataclass(frozen=True, slots=True)
class EncodedTransport:
    """A transport message ready for the HTTP body.

    Attributes:
        content_type: ``multipart/mixed; charset=UTF-8; boundary=xtop...``.
        body: the multipart body.
    """

    content_type: str
    body: bytes
