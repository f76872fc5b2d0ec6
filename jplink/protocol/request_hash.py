"""The ``requestHash`` header: compute, insert into a response, verify.

PROTOCOLS.md §3.1: the provider's security server removes any ``requestHash``
the service returned and inserts its own right after the ``id`` header
element, with the prefix of ``id`` and the whitespace of the other header
fields. The response is later signed as raw bytes, so :func:`add_request_hash`
edits the bytes in place (delete one span, insert one span) instead of
re-serialising the document: every other byte stays as the service sent it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from lxml import etree

from ..errors import MalformedMessage
from ..ns import NS_SOAP_ENV, NS_XROAD
from ..xml import parse_xml
from .headers import REQUEST_HASH_SHA512
from .soap import SoapMessage

__all__ = [
    "add_request_hash",
    "compute_request_hash",
    "verify_request_hash",
]

_HASH_TAG = f"{{{NS_XROAD}}}requestHash"
_ID_TAG = f"{{{NS_XROAD}}}id"


def compute_request_hash(soap: bytes) -> str:
    """base64(SHA-512(request SOAP bytes)), as X-Road puts in ``requestHash``."""
    return base64.b64encode(hashlib.sha512(soap).digest()).decode("ascii")


@dataclass(frozen=True, slots=True)
class _Span:
    start: int  # first byte of the start tag
    end: int  # one past the end tag (or the empty-element tag)


# The rest of a tag after its "<": anything up to ">" outside quoted values.
_TAG_REST = re.compile(rb"""(?:[^"'>]|"[^"]*"|'[^']*')*>""")


def _tag_end(data: bytes, pos: int) -> int:
    match = _TAG_REST.match(data, pos)
    if match is None:
        raise MalformedMessage("Unterminated tag")
    return match.end()


def _skip_special(data: bytes, lt: int) -> int:
    """End of a comment, CDATA section or PI starting at ``lt``, else 0."""
    if data[lt + 1 : lt + 2] not in (b"!", b"?"):
        return 0
    for opener, closer in ((b"<!--", b"-->"), (b"<![CDATA[", b"]]>"), (b"<?", b"?>")):
        if data.startswith(opener, lt):
            return data.index(closer, lt + len(opener)) + len(closer)
    return 0


def _header_layout(data: bytes, h_index: int) -> tuple[_Span, dict[int, _Span]]:
    """The span of the root's ``h_index``-th element child and its children's.

    The input has already been parsed by lxml, so it is well-formed: outside
    comments, CDATA, PIs and attribute values every ``<`` starts markup. The
    scan stops at the end of the header: the body, usually the bulk of the
    message, is never looked at.
    """
    stack: list[list[int]] = []  # [start offset, index in parent, children seen]
    children: dict[int, _Span] = {}
    pos = 0
    while (lt := data.find(b"<", pos)) >= 0:
        if skip := _skip_special(data, lt):
            pos = skip
            continue
        pos = end = _tag_end(data, lt + 1)
        if data.startswith(b"</", lt):
            start, index, _ = stack.pop()
        else:
            index = -1
            if stack:
                index = stack[-1][2]
                stack[-1][2] += 1
            start = lt
            if data[end - 2] != ord("/"):  # not an empty-element tag
                stack.append([lt, index, 0])
                continue
        # An element ended at ``end``: a header field, or the header itself.
        if len(stack) == 2 and stack[1][1] == h_index:
            children[index] = _Span(start, end)
        elif len(stack) == 1 and index == h_index:
            return _Span(start, end), children
    raise MalformedMessage("The response has no SOAP Header", code="MissingHeader")


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [c for c in parent if isinstance(c.tag, str)]


def _locate(root: etree._Element) -> tuple[etree._Element, int, int, list[int]]:
    children = _elements(root)
    headers = [i for i, c in enumerate(children) if c.tag == f"{{{NS_SOAP_ENV}}}Header"]
    if root.tag != f"{{{NS_SOAP_ENV}}}Envelope" or len(headers) != 1:
        raise MalformedMessage("The response has no SOAP Header", code="MissingHeader")
    header = children[headers[0]]
    fields = _elements(header)
    ids = [i for i, c in enumerate(fields) if c.tag == _ID_TAG]
    if len(ids) != 1:
        raise MalformedMessage(
            "The response header must hold exactly one id",
            code="DuplicateHeaderField" if ids else "MissingHeaderField",
        )
    hashes = [i for i, c in enumerate(fields) if c.tag == _HASH_TAG]
    return header, headers[0], ids[0], hashes


def add_request_hash(
    response: bytes,
    request_hash_b64: str,
    algorithm_uri: str,
    *,
    parsed: etree._Element | None = None,
) -> bytes:
    """Insert ``<xroad:requestHash>`` right after ``<xroad:id>``, bytes untouched.

    Any ``requestHash`` already in the header is removed (with the whitespace
    before it). The new element uses the prefix of ``id`` and the whitespace
    that precedes ``id``. Nothing else of the message changes.

    Args:
        response: the service's SOAP response bytes (UTF-8).
        request_hash_b64: base64 digest of the request (see
            :func:`compute_request_hash`).
        algorithm_uri: e.g. ``http://www.w3.org/2001/04/xmlenc#sha512``.
        parsed: the root element ``parse_xml(response)`` gave, when the
            caller has already parsed these very bytes (the server proxy
            keeps the tree of the service's response,
            :attr:`~jplink.protocol.soap.SoapMessage.envelope`): the bytes
            are not parsed a second time. The result is parsed in any case,
            to check the insertion.

    Returns:
        The response bytes with the hash inserted.

    Raises:
        ValueError: if ``request_hash_b64`` is not base64.
        XmlSecurityError: if the response is not safe, well-formed XML.
        MalformedMessage: if it has no header, no or several ids, or is not
            UTF-8.
    """
    try:
        base64.b64decode(request_hash_b64, validate=True)
    except binascii.Error as exc:
        raise ValueError("request_hash_b64 is not base64") from exc
    root = parse_xml(response) if parsed is None else parsed
    encoding = (root.getroottree().docinfo.encoding or "UTF-8").upper()
    if encoding not in ("UTF-8", "UTF8", "US-ASCII", "ASCII"):
        raise MalformedMessage(f"Response in {encoding}; UTF-8 is required")
    header, h_index, id_index, hash_indexes = _locate(root)
    id_el = _elements(header)[id_index]
    element = _hash_element(header, id_el, request_hash_b64, algorithm_uri)
    if not hash_indexes:
        out = _insert_directly(response, root, id_el, element)
        if out is not None:
            return out
    checked = (request_hash_b64, algorithm_uri)
    return _insert_by_scan(response, h_index, id_index, hash_indexes, element, checked)


def _hash_element(
    header: etree._Element, id_el: etree._Element, value: str, algorithm: str
) -> bytes:
    """The new element, with the prefix of ``id``."""
    prefix = id_el.prefix
    qname = f"{prefix}:requestHash" if prefix else "requestHash"
    declare = ""
    if header.nsmap.get(prefix) != NS_XROAD:  # prefix bound on id itself
        declare = f' xmlns{":" + prefix if prefix else ""}="{NS_XROAD}"'
    return (
        f"<{qname}{declare} algorithmId={quoteattr(algorithm)}>{value}</{qname}>"
    ).encode()


def _insert_by_scan(
    response: bytes,
    h_index: int,
    id_index: int,
    hash_indexes: list[int],
    element: bytes,
    checked: tuple[str, str],
) -> bytes:
    """The general case: locate every header field, remove old hashes; the
    result is parsed again to check that ``checked`` (value, algorithm) sits
    right after ``id``."""
    header_span, spans = _header_layout(response, h_index)
    header_open = _tag_end(response, header_span.start + 1)

    def before(index: int) -> int:
        # Start of the whitespace run that precedes field ``index``.
        prev_end = spans[index - 1].end if index > 0 else header_open
        gap = response[prev_end : spans[index].start]
        return prev_end if not gap.strip() else spans[index].start

    indent = response[before(id_index) : spans[id_index].start]
    edits = [(spans[id_index].end, spans[id_index].end, indent + element)]
    edits += [(before(i), spans[i].end, b"") for i in hash_indexes]
    out = response
    for start, end, text in sorted(edits, reverse=True):
        out = out[:start] + text + out[end:]
    _check_inserted(out, *checked)
    return out


_WHITESPACE = b" \t\r\n"


def _insert_directly(
    response: bytes, root: etree._Element, id_el: etree._Element, element: bytes
) -> bytes | None:
    """The usual case, without scanning every header field: ``None`` when
    it does not apply (the general scan then does the work).

    It applies when no comment, CDATA section, DOCTYPE or processing
    instruction precedes the end of ``id`` (after the XML declaration) and
    ``id`` has no children. Then every ``<`` there starts a tag, as ``<``
    cannot appear in attribute values or text of well-formed XML (XML 1.0
    §2.4, §3.1), so the number of start tags before the first
    ``<prefix:id`` is the number of elements before it in document order:
    equal to the parsed ``id``'s position exactly when it is that element.
    """
    if len(id_el):
        return None
    skip = response.index(b"?>") + 2 if response.startswith(b"<?xml") else 0
    tag = (f"{id_el.prefix}:id" if id_el.prefix else "id").encode()
    start = skip
    while True:
        start = response.find(b"<" + tag, start)
        if start < 0:
            return None
        if response[start + len(tag) + 1 : start + len(tag) + 2] in (
            b" ",
            b"\t",
            b"\r",
            b"\n",
            b">",
            b"/",
        ):
            break
        start += 1
    end = _tag_end(response, start + 1)
    if response[end - 2] != ord("/"):  # not <id/>: find </prefix:id>
        close = response.find(b"</" + tag, end)
        if close < 0:
            return None
        end = _tag_end(response, close + 2)
    scanned = response[skip:end]
    if b"<!" in scanned or b"<?" in scanned:
        return None
    before = response[skip:start]
    tags_before = before.count(b"<") - before.count(b"</")
    position = 0
    for position, candidate in enumerate(root.iter(etree.Element)):  # noqa: B007
        if candidate is id_el:
            break
    if tags_before != position:
        return None
    return response[:end] + _indent(response, skip, start) + element + response[end:]


def _indent(response: bytes, skip: int, start: int) -> bytes:
    """The whitespace between ``id`` and the tag before it (empty when text
    other than whitespace is there), which the new element repeats."""
    ws = start
    while ws > skip and response[ws - 1] in _WHITESPACE:
        ws -= 1
    if response[ws - 1 : ws] != b">":
        return b""
    previous = response.rfind(b"<", skip, ws)
    # The ">" must end that tag: a ">" in text leaves no indent, as the scan does.
    if previous < 0 or _tag_end(response, previous + 1) != ws:
        return b""
    return response[ws:start]


def _check_inserted(data: bytes, value: str, algorithm: str) -> None:
    header, _, id_index, hashes = _locate(parse_xml(data))
    fields = _elements(header)
    ok = hashes == [id_index + 1]
    ok = ok and fields[id_index + 1].text == value
    if not ok or fields[id_index + 1].get("algorithmId") != algorithm:
        raise MalformedMessage("Could not insert requestHash after id")


def verify_request_hash(response: SoapMessage, request_soap: bytes) -> str:
    """Check a response's ``requestHash`` against the request bytes sent.

    Args:
        response: the parsed response.
        request_soap: the SOAP bytes of the request as sent.

    Returns:
        The verified base64 hash.

    Raises:
        MalformedMessage: code ``InconsistentResponse`` if the hash is missing,
            uses another algorithm, or does not match.
    """
    if response.request_hash is None:
        raise MalformedMessage(
            "The response has no requestHash", code="InconsistentResponse"
        )
    if response.request_hash_algorithm != REQUEST_HASH_SHA512:
        raise MalformedMessage(
            f"Unsupported requestHash algorithm {response.request_hash_algorithm!r}",
            code="InconsistentResponse",
        )
    expected = compute_request_hash(request_soap)
    if response.request_hash.strip() != expected:
        raise MalformedMessage(
            "The response's requestHash does not match the request",
            code="InconsistentResponse",
        )
    return expected
