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
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, field
from typing import NoReturn

from ..errors import MalformedMessage
from ..security.signature import SignedPart
from .faults import parse_fault
from .mime import MimePart, build_multipart, parse_content_type, parse_multipart
from .soap import MessageRole, SoapMessage

__all__ = [
    "DEFAULT_MAX_TRANSPORT_BYTES",
    "EncodedTransport",
    "PartType",
    "TransportMessage",
    "build_transport_message",
    "parse_transport_message",
    "signed_parts_of",
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
_MESSAGE_URI = "/message.xml"


class _State(enum.Enum):
    """Where the reader is in the part sequence of PR-MESSTRANSP §3.1."""

    OCSP = "OCSP parts, then the SOAP part"
    AFTER_SOAP = "attachments, hash-chain result or signature"
    AFTER_ATTACHMENTS = "hash-chain result or signature"
    AFTER_RESULT = "the hash chain"
    AFTER_CHAIN = "the signature"
    DONE = "nothing more"


# The part order as a table (h11's model): (state, part type) -> next state.
_T = PartType
_S = _State
_TRANSITIONS: dict[tuple[_State, PartType], _State] = {
    (_S.OCSP, _T.OCSP_RESPONSE): _S.OCSP,
    (_S.OCSP, _T.TEXT_XML): _S.AFTER_SOAP,
    (_S.OCSP, _T.XOP_XML): _S.AFTER_SOAP,
    (_S.AFTER_SOAP, _T.MULTIPART_MIXED): _S.AFTER_ATTACHMENTS,
    (_S.AFTER_SOAP, _T.HASH_CHAIN_RESULT): _S.AFTER_RESULT,
    (_S.AFTER_ATTACHMENTS, _T.HASH_CHAIN_RESULT): _S.AFTER_RESULT,
    (_S.AFTER_RESULT, _T.HASH_CHAIN): _S.AFTER_CHAIN,
    (_S.AFTER_SOAP, _T.SIGNATURE): _S.DONE,
    (_S.AFTER_ATTACHMENTS, _T.SIGNATURE): _S.DONE,
    (_S.AFTER_CHAIN, _T.SIGNATURE): _S.DONE,
}
# Where a text/xml part is read as a SOAP fault sent instead of the signature.
_FAULT_STATES = frozenset({_S.AFTER_SOAP, _S.AFTER_ATTACHMENTS, _S.AFTER_CHAIN})


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


def parse_transport_message(
    body: bytes,
    content_type: str,
    *,
    role: MessageRole | None = None,
    max_bytes: int = DEFAULT_MAX_TRANSPORT_BYTES,
) -> TransportMessage:
    """Parse a transport message received from a peer security server.

    Args:
        body: the HTTP body.
        content_type: the HTTP Content-Type header.
        role: ``REQUEST`` (server proxy) or ``RESPONSE`` (client proxy), or
            ``None`` to accept either. A response must not carry OCSP parts;
            only a response may be a bare ``text/xml`` fault.
        max_bytes: refuse larger bodies.

    Returns:
        The message with every part as received.

    Raises:
        SoapFault: the peer answered with a SOAP fault, either as the whole
            (``text/xml``) response or as the last part instead of the
            signature.
        MalformedMessage: code ``InvalidContentType`` for a wrong top-level or
            part Content-Type; ``MissingSoap``/``MissingSignature`` for a
            missing part; ``InvalidMessage`` for a duplicated or misplaced
            part, content after the signature, a broken multipart or an
            oversized body.
        XmlSecurityError: a fault part that is not acceptable XML.
    """
    if len(body) > max_bytes:
        raise MalformedMessage(
            f"Transport message of {len(body)} bytes exceeds the limit",
            code="InvalidMessage",
            detail={"max_bytes": max_bytes},
        )
    ctype = parse_content_type(content_type)
    if ctype.media_type == PartType.TEXT_XML.value and role is not MessageRole.REQUEST:
        # PR-MESSTRANSP §3.2 step 6: "If the content-type of the response is
        # text/xml then an error occurred at the service provider's security
        # server and the received SOAP Fault must be returned".
        raise parse_fault(bytes(body))
    if ctype.media_type != PartType.MULTIPART_MIXED.value:
        raise MalformedMessage(
            f"Invalid content type {ctype.media_type} for a transport message",
            code="InvalidContentType",
        )
    boundary = ctype.param("boundary")
    if not boundary:
        raise MalformedMessage(
            "Multipart content type is missing the boundary", code="InvalidContentType"
        )
    reader = _Reader(role)
    for part in parse_multipart(bytes(body), boundary):
        reader.feed(part)
    return reader.finish()


def _attachments(container: MimePart) -> tuple[MimePart, ...]:
    boundary = container.content_type.param("boundary")
    if not boundary:
        raise MalformedMessage(
            "The attachments multipart has no boundary", code="InvalidContentType"
        )
    # Attachments are kept flat and opaque: a multipart attachment is one
    # part, exactly as X-Road's decoder treats it.
    return parse_multipart(container.body, boundary)


@dataclass(slots=True)
class _Reader:
    """Collects the parts while walking :data:`_TRANSITIONS`."""

    role: MessageRole | None
    state: _State = _State.OCSP
    ocsp: list[bytes] = field(default_factory=list)
    soap_part: MimePart | None = None
    attachments: MimePart | None = None
    result: bytes | None = None
    chain: bytes | None = None
    signature: bytes | None = None

    def feed(self, part: MimePart) -> None:
        media_type = _media_type(part)
        try:
            part_type = PartType(media_type)
        except ValueError:
            part_type = None
        following = (
            None if part_type is None else _TRANSITIONS.get((self.state, part_type))
        )
        if part_type is None or following is None:
            self._refuse(part, media_type, part_type)
        self._store(part_type, part)
        self.state = following

    def _store(self, part_type: PartType, part: MimePart) -> None:
        if part_type is PartType.OCSP_RESPONSE:
            if self.role is MessageRole.RESPONSE:
                raise _invalid("A response must not carry OCSP response parts")
            if not part.body:
                raise _invalid("Empty OCSP response part")
            self.ocsp.append(part.body)
        elif part_type in (PartType.TEXT_XML, PartType.XOP_XML):
            self.soap_part = part
        elif part_type is PartType.MULTIPART_MIXED:
            self.attachments = part
        elif part_type is PartType.HASH_CHAIN_RESULT:
            self.result = part.body
        elif part_type is PartType.HASH_CHAIN:
            self.chain = part.body
        else:
            if not part.body.strip():
                raise MalformedMessage("Empty signature part", code="MissingSignature")
            self.signature = part.body

    def _refuse(
        self, part: MimePart, media_type: str, part_type: PartType | None
    ) -> NoReturn:
        state = self.state
        if state is _State.DONE:
            # PROTOCOLS.md §5.4: "Content after the signature part gives
            # InvalidMessage".
            raise _invalid(f"Extra content ({media_type}) after the signature")
        if part_type in (PartType.TEXT_XML, PartType.XOP_XML):
            if state in _FAULT_STATES and part_type is PartType.TEXT_XML:
                # PR-MESSTRANSP §3.1: "a SOAP fault XML (content-type
                # text/xml), if any errors occurred ... the SOAP fault must be
                # sent as the last part."
                raise _fault_part(part)
            raise _invalid("A second SOAP part in the transport message")
        if state is _State.OCSP:
            if part_type is None:
                raise _content_type(f"Invalid content type {media_type} for SOAP")
            raise MalformedMessage(
                f"Expected the SOAP part, got {media_type}", code="MissingSoap"
            )
        if state is _State.AFTER_RESULT:
            raise _invalid(f"The hash chain result is followed by {media_type}")
        if part_type is PartType.OCSP_RESPONSE:
            raise _invalid("OCSP response part after the SOAP part")
        if part_type is PartType.HASH_CHAIN:
            raise _invalid("Hash chain part without a hash chain result before it")
        if part_type in (PartType.MULTIPART_MIXED, PartType.HASH_CHAIN_RESULT):
            raise _invalid(f"Duplicate or misplaced {media_type} part")
        raise _content_type(
            f"Received content type {media_type} where {state.value} was expected"
        )

    def finish(self) -> TransportMessage:
        if self.state is _State.OCSP or self.soap_part is None:
            raise MalformedMessage(
                "The transport message has no SOAP part", code="MissingSoap"
            )
        if self.state is _State.AFTER_RESULT:
            raise _invalid("The hash chain result is not followed by the hash chain")
        if self.state is not _State.DONE or self.signature is None:
            raise MalformedMessage(
                "The transport message has no signature", code="MissingSignature"
            )
        attachments: tuple[MimePart, ...] = ()
        if self.attachments is not None:
            attachments = _attachments(self.attachments)
        return TransportMessage(
            soap_part=self.soap_part,
            signature=self.signature,
            attachments=attachments,
            ocsp_responses=tuple(self.ocsp),
            hash_chain_result=self.result,
            hash_chain=self.chain,
        )


def _media_type(part: MimePart) -> str:
    value = part.header("Content-Type")
    if value is None:
        return "text/plain"  # RFC 2045 §5.2 default
    return parse_content_type(value).media_type


def _invalid(message: str) -> MalformedMessage:
    return MalformedMessage(message, code="InvalidMessage")


def _content_type(message: str) -> MalformedMessage:
    return MalformedMessage(message, code="InvalidContentType")


def _fault_part(part: MimePart) -> Exception:
    try:
        return parse_fault(part.body)
    except MalformedMessage:
        # X-Road's decoder answers InvalidContentType here as well.
        return _content_type(
            "A text/xml part after the SOAP part is not a SOAP fault"
            " (a second SOAP part?)"
        )
