"""Reading any WSDL 1.1 (ours or third-party) into its X-Road operations.

The security server uses this when an operator adds a service description:
each ``portType`` operation becomes a service code, with the ``xrd:version``
from the matching ``binding`` operation and the ``xrd:title`` / ``xrd:notes``
from its documentation (PR-MESS §4). Input is untrusted bytes and goes through
the hardened parser.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from jplink.errors import MalformedMessage
from jplink.xml import parse_xml

from .generate import NS_SOAP_BINDING, NS_WSDL
from .schemas import NS_XROAD

__all__ = ["ParsedOperation", "ParsedWsdl", "parse_wsdl"]

#: Largest WSDL accepted, in bytes.
MAX_WSDL_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ParsedOperation:
    """One operation: its service code, version and human-readable texts."""

    name: str
    version: str | None
    title: str | None
    notes: str | None


@dataclass(frozen=True, slots=True)
class ParsedWsdl:
    """What a WSDL offers: its target namespace, operations and addresses."""

    target_namespace: str | None
    operations: tuple[ParsedOperation, ...]
    addresses: tuple[str, ...]


def _child(parent: etree._Element, local: str) -> etree._Element | None:
    """The ``xrd:<local>`` child, else one of that local name in any namespace.

    Real WSDLs are loose here: X-Road's own test WSDL puts the version in the
    identifiers namespace (``id:version``).
    """
    found = parent.find(f"{{{NS_XROAD}}}{local}")
    if found is not None:
        return found
    for child in parent:
        if isinstance(child.tag, str) and etree.QName(child).localname == local:
            return child
    return None


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    text = "".join(element.itertext()).strip()
    return text or None


def parse_wsdl(data: bytes) -> ParsedWsdl:
    """Parse a WSDL document.

    Args:
        data: the WSDL bytes.

    Returns:
        Its operations, in document order (one per name).

    Raises:
        XmlSecurityError: DTD, entity, oversized or malformed XML.
        MalformedMessage: code ``InvalidWsdl`` for a document that is not a
            WSDL 1.1 ``definitions`` or has operations without names.
    """
    root = parse_xml(data, max_bytes=MAX_WSDL_BYTES)
    if root.tag != f"{{{NS_WSDL}}}definitions":
        raise MalformedMessage(
            "The document is not a WSDL 1.1 definitions element", code="InvalidWsdl"
        )
    versions: dict[str, str] = {}
    for bop in root.iterfind(f"{{{NS_WSDL}}}binding/{{{NS_WSDL}}}operation"):
        name = bop.get("name")
        version = _text(_child(bop, "version"))
        if name and version and name not in versions:
            versions[name] = version
    operations: dict[str, ParsedOperation] = {}
    for pop in root.iterfind(f"{{{NS_WSDL}}}portType/{{{NS_WSDL}}}operation"):
        name = pop.get("name")
        if not name:
            raise MalformedMessage(
                "A portType operation has no name", code="InvalidWsdl"
            )
        doc = pop.find(f"{{{NS_WSDL}}}documentation")
        title = notes = None
        if doc is not None:
            title = _text(_child(doc, "title"))
            notes = _text(_child(doc, "notes"))
        operations.setdefault(
            name, ParsedOperation(name, versions.get(name), title, notes)
        )
    addresses = tuple(
        loc
        for addr in root.iterfind(
            f"{{{NS_WSDL}}}service/{{{NS_WSDL}}}port/{{{NS_SOAP_BINDING}}}address"
        )
        if (loc := addr.get("location"))
    )
    return ParsedWsdl(
        root.get("targetNamespace"), tuple(operations.values()), addresses
    )
