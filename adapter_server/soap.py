"""The SOAP face of a service call: read the request, write the response.

Sans-IO: bytes in, bytes out. The X-Road envelope is checked by
:func:`jplink.protocol.parse_soap_message` (headers, protocol version, body
wrapper named after ``serviceCode``) and each X-Road header element is
validated against our ``xroad.xsd``. The response copies the request header as
it is, because PR-MESS says the service "MUST echo all request header fields
in the response, in the same order".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lxml import etree

from jplink.errors import (
    InvalidRequest,
    JPLinkError,
    LocalProtocolError,
    MalformedMessage,
    NotFound,
)
from jplink.ns import NS_SOAP_ENV, NS_XROAD
from jplink.protocol import (
    MessageRole,
    SoapMessage,
    build_response_from,
    fault_from_error,
    parse_soap_message,
)
from wsdl import validate_header_element

from .definitions import ColumnSpec, ParamType, ServiceDefinition
from .runtime import CallResult, check_offset
from .values import render_text

__all__ = [
    "ROWS_PER_CHUNK",
    "SoapCall",
    "build_soap_fault",
    "build_soap_response",
    "read_soap_call",
    "soap_response_chunks",
]


@dataclass(frozen=True, slots=True)
class SoapCall:
    """A checked SOAP request for one of our services."""

    message: SoapMessage
    service: ServiceDefinition
    values: dict[str, str]
    offset: int


def _wrapper(message: SoapMessage) -> etree._Element:
    assert message.envelope is not None  # parse_soap_message always sets it
    body = message.envelope.find(f"{{{NS_SOAP_ENV}}}Body")
    assert body is not None
    return next(c for c in body if isinstance(c.tag, str))


def _read_values(wrapper: etree._Element, namespace: str) -> tuple[dict[str, str], int]:
    values: dict[str, str] = {}
    offset = 0
    for child in wrapper:
        if not isinstance(child.tag, str):
            continue
        q = etree.QName(child)
        if q.namespace not in (namespace, None) or len(child):
            raise InvalidRequest(
                f"Unexpected element {q.localname} in the request; parameters are "
                f"simple elements in {namespace}",
                code="InvalidParameter",
            )
        if q.localname in values:
            raise InvalidRequest(
                f"Parameter {q.localname!r} is given twice", code="InvalidParameter"
            )
        if q.localname == "pageOffset":
            offset = check_offset(child.text or "")
            continue
        values[q.localname] = child.text or ""
    return values, offset


def read_soap_call(
    data: bytes,
    content_type: str,
    find_service: Callable[[str], ServiceDefinition],
    namespace_of: Callable[[str], str],
) -> SoapCall:
    """Parse and check a request.

    Args:
        data: the HTTP body.
        content_type: its Content-Type.
        find_service: service code -> enabled service (raises if unknown).
        namespace_of: subsystem code -> the WSDL target namespace.

    Returns:
        The checked call; parameter values are still raw text.

    Raises:
        MalformedMessage: bad envelope or headers (see ``parse_soap_message``),
            ``InvalidXml`` for a header element that fails ``xroad.xsd``,
            ``InvalidBody`` for a wrapper in the wrong namespace.
        NotFound: ``UnknownService`` also for a subsystem or version mismatch.
        InvalidRequest: ``InvalidParameter``, ``ServiceDisabled``.
    """
    message = parse_soap_message(
        data, content_type=content_type, role=MessageRole.REQUEST
    )
    assert message.envelope is not None
    header = message.envelope.find(f"{{{NS_SOAP_ENV}}}Header")
    assert header is not None
    for element in header:
        if isinstance(element.tag, str) and element.tag.startswith(f"{{{NS_XROAD}}}"):
            validate_header_element(element)
    sid = message.service
    service = find_service(sid.service_code)
    if sid.subsystem_code != service.subsystem or sid.service_version not in (
        None,
        service.version,
    ):
        wanted = f"{sid.subsystem_code}/{sid.service_code}/{sid.service_version}"
        raise NotFound(
            f"This adapter offers no service {wanted}", code="UnknownService"
        )
    wrapper = _wrapper(message)
    namespace = namespace_of(service.subsystem)
    if etree.QName(wrapper).namespace != namespace:
        raise MalformedMessage(
            f"The request wrapper must be in the namespace {namespace}",
            code="InvalidBody",
        )
    values, offset = _read_values(wrapper, namespace)
    return SoapCall(message, service, values, offset)


#: Rows rendered per chunk of a streamed response.
ROWS_PER_CHUNK = 200
_MARK = "jplink-rows"
# Characters XML 1.0 (§2.2 Char) cannot carry at all, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})


def _escape(column: ColumnSpec, text: str) -> str:
    if _NOT_XML.search(text):
        raise LocalProtocolError(
            f"Result column {column.name!r} holds characters XML cannot carry",
            code="InvalidColumnValue",
        )
    if "&" in text or "<" in text or ">" in text or "\r" in text:
        return text.translate(_ESCAPES)
    return text


def _cell_renderer(column: ColumnSpec) -> Callable[[object], str]:
    """A function rendering one column's values as escaped XML text.

    The common exact types take a short path with the same result as
    :func:`render_text`; anything else goes through it.
    """
    if column.type is ParamType.STRING:

        def string(value: object) -> str:
            if type(value) is str:
                return _escape(column, value)
            return _escape(column, render_text(column, value))

        return string
    if column.type is ParamType.INTEGER:

        def integer(value: object) -> str:
            return str(value) if type(value) is int else render_text(column, value)

        return integer
    # Decimals, booleans, dates: their lexical forms never need escaping.
    return lambda value: render_text(column, value)


def soap_response_chunks(
    call: SoapCall, result: CallResult, namespace: str
) -> Iterator[bytes]:
    """The response envelope as chunks: echoed header, rows, next offset.

    The envelope around the rows is built with lxml (so the echoed header is
    copied exactly); the rows are rendered as text, ``ROWS_PER_CHUNK`` at a
    time, so a large result is never held as an XML tree or as one more copy
    of all its rows.

    Raises:
        LocalProtocolError: ``InvalidColumnType``/``InvalidColumnValue`` if a
            value does not fit its declared column (raised when the chunk
            holding it is rendered).
    """
    code = call.service.code
    wrapper = etree.Element(f"{{{namespace}}}{code}Response", nsmap={"svc": namespace})
    wrapper.append(etree.Comment(_MARK))
    envelope = build_response_from(call.message, wrapper)
    # The last marker is ours: the echoed header comes before the body.
    cut = envelope.rindex(f"<!--{_MARK}-->".encode())
    head, tail = envelope[:cut], envelope[cut + len(_MARK) + 7 :]
    # The wrapper's start tag ends the head; its prefix is the one lxml chose.
    start_tag = head[head.rindex(b"<") + 1 :].split(b" ", 1)[0].rstrip(b">")
    prefix = start_tag[: -len(code + "Response")].decode("ascii")
    columns = result.service.columns
    cells = [
        (f"<{prefix}{c.name}>", _cell_renderer(c), f"</{prefix}{c.name}>")
        for c in columns
    ]
    yield head
    rows = result.rows
    for first in range(0, len(rows), ROWS_PER_CHUNK):
        parts: list[str] = []
        for row in rows[first : first + ROWS_PER_CHUNK]:
            parts.append(f"<{prefix}row>")
            for (open_, render, close), value in zip(cells, row, strict=False):
                if value is not None:
                    parts += (open_, render(value), close)
            parts.append(f"</{prefix}row>")
        yield "".join(parts).encode("utf-8")
    if result.next_offset is not None:
        n = result.next_offset
        yield f"<{prefix}nextOffset>{n}</{prefix}nextOffset>".encode("ascii")
    yield tail


def build_soap_response(call: SoapCall, result: CallResult, namespace: str) -> bytes:
    """The whole response envelope (see :func:`soap_response_chunks`).

    Raises:
        LocalProtocolError: ``InvalidColumnType`` if a value does not fit its
            declared column type.
    """
    return b"".join(soap_response_chunks(call, result, namespace))


def build_soap_fault(err: JPLinkError, correlation_id: str) -> bytes:
    """A SOAP fault for ``err``: ``Client.*`` for caller mistakes, else ``Server.*``."""
    prefix = "Client" if err.http_status < 500 else "Server"
    return fault_from_error(err, prefix, detail=correlation_id)
