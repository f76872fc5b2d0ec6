"""The one hardened XML parser of JP-LINK.

Every byte of XML that comes from outside (a peer, an information system, a
configuration download, a file an operator supplies) is parsed here and nowhere
else. The rules, after signxml's ``XMLProcessor`` and zeep's ``DTDForbidden``:

- no DTD at all: a document with a ``<!DOCTYPE`` is refused, so no entity can be
  declared (no billion laughs, no quadratic blow-up, no XXE);
- no network access and no external resources while parsing;
- a size limit on the input (default 16 MiB) and lxml's own depth/size limits
  (``huge_tree`` stays off);
- CDATA is kept as text, comments are kept (C14N needs the document as it is).

Use :func:`parse_xml` for untrusted bytes and :func:`serialize_xml` to write.
"""

from __future__ import annotations

import re
import threading

from lxml import etree

from .errors import XmlSecurityError

__all__ = [
    "DEFAULT_MAX_XML_BYTES",
    "parse_xml",
    "serialize_xml",
]

#: Default upper bound for one XML document, in bytes.
DEFAULT_MAX_XML_BYTES = 16 * 1024 * 1024

# A DOCTYPE may only appear in the prolog; searching the first part of the
# document is enough to refuse it before lxml sees it.
_DOCTYPE = re.compile(r"<!DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(r"<!ENTITY", re.IGNORECASE)

# Byte-order marks and the first bytes of "<?" in the wide encodings: a DTD
# in UTF-16/32 input does not show up in a byte search, so such input is
# decoded before the search (XML 1.0 Appendix F, autodetection).
_WIDE = (
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\xfe\xff", "utf-16-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\x00<", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
)


_WIDE_PREFIXES = tuple(prefix for prefix, _ in _WIDE)


def _as_text(data: bytes) -> str:
    for prefix, codec in _WIDE:
        if data.startswith(prefix):
            return data.decode(codec, errors="replace")
    return data.decode("latin-1")


def _make_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        collect_ids=False,
    )


_local = threading.local()


def _parser() -> etree.XMLParser:
    # lxml parsers are reusable but not thread-safe: one per thread, made
    # once (making a parser costs as much as parsing a small message).
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _make_parser()
    return parser


def _may_declare(data: bytes) -> bool:
    """Whether ``data`` may hold a DTD or entity declaration (then searched).

    In an ASCII-compatible encoding every declaration starts with the bytes
    ``<!``; input without them (most messages) needs no decoding and no
    search. Wide encodings are always decoded and searched.
    """
    if data.startswith(_WIDE_PREFIXES):
        return True
    return data.find(b"<!") >= 0


def parse_xml(data: bytes, *, max_bytes: int = DEFAULT_MAX_XML_BYTES) -> etree._Element:
    """Parse untrusted XML bytes safely.

    Args:
        data: the document as bytes (its encoding declared or UTF-8).
        max_bytes: refuse larger input.

    Returns:
        The root element.

    Raises:
        XmlSecurityError: for a DTD, an entity, oversized or malformed input.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("parse_xml takes bytes")
    data = bytes(data)
    if len(data) > max_bytes:
        raise XmlSecurityError(
            f"XML document of {len(data)} bytes exceeds the limit of {max_bytes}",
            detail={"limit": max_bytes},
        )
    if not data.strip():
        raise XmlSecurityError("Empty XML document")
    if _may_declare(data):
        text = _as_text(data)
        if _DOCTYPE.search(text) or _ENTITY.search(text):
            raise XmlSecurityError(
                "XML with a DTD or entity declaration is not accepted"
            )
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise XmlSecurityError(f"Malformed XML: {exc.msg}") from exc
    if root is None:
        raise XmlSecurityError("Empty XML document")
    tree = root.getroottree()
    # Belt and braces: the regexes above miss a DOCTYPE in another encoding
    # (UTF-16); lxml reports it here.
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise XmlSecurityError("XML with a DTD is not accepted")
    for _node in root.iter(etree.Entity):
        raise XmlSecurityError("XML with entity references is not accepted")
    return root


def serialize_xml(
    element: etree._Element, *, xml_declaration: bool = True, pretty: bool = False
) -> bytes:
    """Serialize an element as UTF-8 bytes.

    Args:
        element: the root to write.
        xml_declaration: whether to write ``<?xml ...?>``.
        pretty: indent the output (never for signed content).

    Returns:
        The UTF-8 bytes.
    """
    return bytes(
        etree.tostring(
            element,
            encoding="UTF-8",
            xml_declaration=xml_declaration,
            pretty_print=pretty,
        )
    )
