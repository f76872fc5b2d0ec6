"""Parsing a transport message: the part order as a state table (h11's model).

Checks the framing only (PROTOCOLS.md §5.4); the signature, the OCSP responses
and the SOAP content are verified by their own modules. Re-exported by
:mod:`jplink.protocol.transport`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import NoReturn

from ..errors import MalformedMessage
from ._transport_parts import DEFAULT_MAX_TRANSPORT_BYTES, PartType, TransportMessage
from .faults import parse_fault
from .mime import MimePart, parse_content_type, parse_multipart
from .soap import MessageRole

__all__ = ["parse_transport_message"]


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
