"""X-Road SOAP messages (PR-MESS 4.0): parse, check and build.

:func:`parse_soap_message` is the single ingest point for SOAP from an
information system or a service. It accepts ``text/xml`` and
``multipart/related`` (SwA and MTOM), parses the SOAP part only through
:func:`jplink.xml.parse_xml`, checks the envelope and the X-Road header, and
keeps the SOAP bytes exactly as received (signatures and ``requestHash`` are
computed over raw bytes). Attachments keep their MIME headers and raw bodies.
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field

from lxml import etree

from ..errors import MalformedMessage
from ..identifiers import ClientId, SecurityServerId, ServiceId
from ..ns import NS_IDENTIFIERS, NS_SOAP_ENV, NS_XROAD
from ..xml import DEFAULT_MAX_XML_BYTES, parse_xml, serialize_xml
from .faults import FAULT_TAG, fault_from_element
from .headers import RepresentedParty, XRoadHeader, build_header, parse_header
from .mime import ContentType, MimePart, parse_content_type, parse_multipart

__all__ = [
    "MessageRole",
    "SoapMessage",
    "build_request",
    "build_response_from",
    "parse_soap_message",
]

_ENVELOPE = f"{{{NS_SOAP_ENV}}}Envelope"
_HEADER = f"{{{NS_SOAP_ENV}}}Header"
_BODY = f"{{{NS_SOAP_ENV}}}Body"
_SOAP_PART_TYPES = ("text/xml", "application/xop+xml")
_CHARSETS = ("utf-8", "utf8", "us-ascii")
_MAX_NESTING = 4


class MessageRole(enum.Enum):
    """Whether a message is a service request or its response."""

    REQUEST = "request"
    RESPONSE = "response"


@dataclass(frozen=True, slots=True)
class SoapMessage:
    """A checked X-Road SOAP message.

    Attributes:
        header: the X-Road header fields.
        soap: the SOAP envelope bytes exactly as received (for multipart, the
            body of the SOAP part).
        body_tag: Clark name of the body's wrapper element.
        role: request (wrapper = serviceCode) or response (serviceCode + Response).
        content_type: the message's Content-Type as received.
        soap_content_type: the Content-Type of the SOAP part itself.
        attachments: the other MIME parts (nested multiparts flattened), with
            headers and raw bodies untouched.
        soap_part: the SOAP MIME part (with its headers), for multipart input.
        envelope: the parsed envelope (not part of equality).
    """

    header: XRoadHeader
    soap: bytes = field(repr=False)
    body_tag: str
    role: MessageRole
    content_type: str
    soap_content_type: str
    attachments: tuple[MimePart, ...] = ()
    soap_part: MimePart | None = field(default=None, repr=False)
    envelope: etree._Element | None = field(default=None, repr=False, compare=False)

    @property
    def client(self) -> ClientId:
        """The service client."""
        return self.header.client

    @property
    def service(self) -> ServiceId:
        """The service."""
        return self.header.service

    @property
    def id(self) -> str:
        """The message id."""
        return self.header.id

    @property
    def user_id(self) -> str | None:
        """``xroad:userId``."""
        return self.header.user_id

    @property
    def issue(self) -> str | None:
        """``xroad:issue``."""
        return self.header.issue

    @property
    def protocol_version(self) -> str:
        """``xroad:protocolVersion`` (always 4.0)."""
        return self.header.protocol_version

    @property
    def security_server(self) -> SecurityServerId | None:
        """``xroad:securityServer`` if present."""
        return self.header.security_server

    @property
    def request_hash(self) -> str | None:
        """``xroad:requestHash`` (responses) if present."""
        return self.header.request_hash

    @property
    def request_hash_algorithm(self) -> str | None:
        """The requestHash ``algorithmId``."""
        return self.header.request_hash_algorithm

    @property
    def represented_party(self) -> RepresentedParty | None:
        """``repr:representedParty`` if present."""
        return self.header.represented_party

    @property
    def is_multipart(self) -> bool:
        """Whether the message came as multipart (attachments)."""
        return self.soap_part is not None

    @property
    def is_mtom(self) -> bool:
        """Whether the SOAP part is an MTOM ``application/xop+xml`` part."""
        return parse_content_type(self.soap_content_type).media_type.endswith("xop+xml")


def _check_charset(ctype: ContentType) -> None:
    # PR-MESS: charset from the Content-Type, default UTF-8.
    charset = ctype.param("charset")
    if charset is not None and charset.lower() not in _CHARSETS:
        raise MalformedMessage(
            f"Unsupported charset {charset!r}; only UTF-8 is accepted",
            code="InvalidContentType",
        )


def _leaves(parts: tuple[MimePart, ...], depth: int) -> list[MimePart]:
    out: list[MimePart] = []
    for part in parts:
        ctype = part.content_type
        boundary = ctype.param("boundary")
        if ctype.is_multipart and boundary is not None:
            if depth >= _MAX_NESTING:
                raise MalformedMessage("Multipart nesting is too deep")
            out += _leaves(parse_multipart(part.body, boundary), depth + 1)
        else:
            out.append(part)
    return out


def _split_multipart(
    data: bytes, ctype: ContentType
) -> tuple[MimePart, tuple[MimePart, ...]]:
    boundary = ctype.param("boundary")
    if not boundary:
        raise MalformedMessage("Multipart without boundary", code="InvalidContentType")
    parts = parse_multipart(data, boundary)
    start = ctype.param("start")
    index = 0
    if start is not None:
        wanted = start.strip().strip("<>")
        ids = [p.content_id for p in parts]
        if wanted not in ids:
            raise MalformedMessage(
                f"No MIME part has the start Content-ID {start!r}",
                code="InvalidContentType",
            )
        index = ids.index(wanted)
    root = parts[index]
    if root.content_type.media_type not in _SOAP_PART_TYPES:
        raise MalformedMessage(
            f"The SOAP part has Content-Type {root.content_type.media_type}",
            code="InvalidContentType",
        )
    rest = parts[:index] + parts[index + 1 :]
    return root, tuple(_leaves(rest, 1))


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [c for c in parent if isinstance(c.tag, str)]


def _envelope_parts(
    root: etree._Element,
) -> tuple[etree._Element | None, etree._Element]:
    if root.tag != _ENVELOPE:
        raise MalformedMessage(
            f"Root element {etree.QName(root).localname} is not a SOAP 1.1 Envelope",
            code="InvalidMessage",
        )
    header: etree._Element | None = None
    body: etree._Element | None = None
    for child in _elements(root):
        if child.tag == _HEADER and header is None and body is None:
            header = child
        elif child.tag == _BODY and body is None:
            body = child
        elif body is None:
            # SOAP 1.1 §4.1.1: Header first, then Body; more only after Body.
            raise MalformedMessage(
                f"Unexpected {etree.QName(child).localname} in the Envelope",
                code="InvalidMessage",
            )
    if body is None:
        raise MalformedMessage("The SOAP message has no Body", code="MissingBody")
    return header, body


def _wrapper(body: etree._Element) -> etree._Element:
    if (body.text or "").strip() or any((c.tail or "").strip() for c in body):
        raise MalformedMessage("Text directly inside the SOAP Body", code="InvalidBody")
    children = _elements(body)
    if len(children) != 1:
        raise MalformedMessage(
            f"The SOAP Body must hold exactly one element, not {len(children)}",
            code="InvalidBody",
        )
    return children[0]


def _role(
    wrapper: etree._Element, header: XRoadHeader, role: MessageRole | None
) -> MessageRole:
    local = etree.QName(wrapper).localname
    code = header.service.service_code
    # PR-MESS §2.4: the body wrapper is named after serviceCode; responses
    # append "Response". Otherwise X-Road answers InconsistentHeaders.
    if local == code and role in (None, MessageRole.REQUEST):
        return MessageRole.REQUEST
    if local == code + "Response" and role in (None, MessageRole.RESPONSE):
        return MessageRole.RESPONSE
    raise MalformedMessage(
        f"Body element {local} does not match serviceCode {code}",
        code="InconsistentHeaders",
    )


def parse_soap_message(
    data: bytes,
    *,
    content_type: str,
    role: MessageRole | None = None,
    max_bytes: int = DEFAULT_MAX_XML_BYTES,
) -> SoapMessage:
    """Parse and check an X-Road SOAP message.

    Args:
        data: the HTTP body as received.
        content_type: the HTTP Content-Type.
        role: expect a request or a response; ``None`` accepts either.
        max_bytes: upper bound for the SOAP part.

    Returns:
        The checked message.

    Raises:
        SoapFault: if the body holds a SOAP Fault (the fault as received).
        XmlSecurityError: code ``InvalidXml`` for unsafe or malformed XML.
        MalformedMessage: ``InvalidContentType``, ``InvalidMessage``,
            ``MissingBody``, ``InvalidBody``, ``MissingHeader``,
            ``MissingHeaderField``, ``DuplicateHeaderField``,
            ``InvalidProtocolVersion``, ``InconsistentHeaders``, ``InvalidXml``
            or an identifier code.
    """
    ctype = parse_content_type(content_type)
    soap_part: MimePart | None = None
    attachments: tuple[MimePart, ...] = ()
    if ctype.media_type == "multipart/related":
        soap_part, attachments = _split_multipart(bytes(data), ctype)
        soap, soap_ctype = soap_part.body, soap_part.content_type
        soap_ctype_text = soap_part.header("Content-Type") or str(soap_ctype)
    elif ctype.media_type == "text/xml":
        soap, soap_ctype, soap_ctype_text = bytes(data), ctype, content_type
    else:
        raise MalformedMessage(
            f"Unsupported Content-Type {ctype.media_type}", code="InvalidContentType"
        )
    _check_charset(soap_ctype)
    header_el, body = _envelope_parts(parse_xml(soap, max_bytes=max_bytes))
    wrapper = _wrapper(body)
    if wrapper.tag == FAULT_TAG:
        raise fault_from_element(wrapper)
    if header_el is None:
        raise MalformedMessage("The SOAP message has no Header", code="MissingHeader")
    header = parse_header(header_el)
    return SoapMessage(
        header=header,
        soap=soap,
        body_tag=str(wrapper.tag),
        role=_role(wrapper, header, role),
        content_type=content_type,
        soap_content_type=soap_ctype_text,
        attachments=attachments,
        soap_part=soap_part,
        envelope=wrapper.getroottree().getroot(),
    )


def _new_envelope() -> tuple[etree._Element, etree._Element, etree._Element]:
    nsmap = {"SOAP-ENV": NS_SOAP_ENV, "xroad": NS_XROAD, "id": NS_IDENTIFIERS}
    envelope = etree.Element(_ENVELOPE, nsmap=nsmap)
    header = etree.SubElement(envelope, _HEADER)
    body = etree.SubElement(envelope, _BODY)
    return envelope, header, body


def build_request(header: XRoadHeader, body: etree._Element) -> bytes:
    """Build a ``text/xml`` X-Road request envelope.

    Args:
        header: the header fields (``request_hash`` must be ``None``).
        body: the wrapper element; its local name must be the service code.
            It is copied, not moved.

    Returns:
        UTF-8 envelope bytes.

    Raises:
        ValueError: if the wrapper name does not match or a requestHash is set.
    """
    if etree.QName(body).localname != header.service.service_code:
        raise ValueError("the body wrapper must be named after the serviceCode")
    if header.request_hash is not None:
        raise ValueError("requests carry no requestHash")
    envelope, header_el, body_el = _new_envelope()
    build_header(header, header_el)
    body_el.append(copy.deepcopy(body))
    return serialize_xml(envelope)


def build_response_from(request: SoapMessage, body: etree._Element) -> bytes:
    """Build the service response to ``request``.

    PR-MESS: the service MUST echo all request header fields in the same order
    with the same values and namespaces, so the request's Header element is
    copied as it is (minus any ``requestHash``, which the provider's security
    server adds with :func:`~jplink.protocol.request_hash.add_request_hash`).

    Args:
        request: the parsed request.
        body: the response wrapper, named serviceCode + ``Response`` (copied).

    Returns:
        UTF-8 envelope bytes.

    Raises:
        ValueError: if the wrapper name does not match, or ``request`` has no
            parsed envelope.
    """
    code = request.service.service_code
    if etree.QName(body).localname != code + "Response":
        raise ValueError(f"the response wrapper must be named {code}Response")
    if request.envelope is None:
        raise ValueError("the request has no parsed envelope")
    old_header = request.envelope.find(_HEADER)
    assert old_header is not None  # a parsed SoapMessage always has one
    envelope = etree.Element(_ENVELOPE, nsmap=request.envelope.nsmap)
    header = copy.deepcopy(old_header)
    for child in header.findall(f"{{{NS_XROAD}}}requestHash"):
        header.remove(child)
    envelope.append(header)
    etree.SubElement(envelope, _BODY).append(copy.deepcopy(body))
    return serialize_xml(envelope)
