"""The X-Road SOAP header (PR-MESS 4.0 §2.3): parse and build.

The header fields are children of ``SOAP-ENV:Header`` in the namespace
``http://x-road.eu/xsd/xroad.xsd`` (plus ``repr:representedParty``). Every
check raises :class:`~jplink.errors.MalformedMessage` with X-Road's leaf fault
code (``MissingHeaderField``, ``DuplicateHeaderField`` ...); the component adds
the ``Client.`` / ``Server.ClientProxy.`` prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from ..errors import MalformedMessage
from ..identifiers import (
    ClientId,
    SecurityServerId,
    ServiceId,
    identifier_from_xml,
    identifier_to_xml,
)
from ..ns import NS_XROAD

__all__ = [
    "NS_REPRESENTATION",
    "PROTOCOL_VERSION",
    "REQUEST_HASH_SHA512",
    "RepresentedParty",
    "XRoadHeader",
    "build_header",
    "parse_header",
]

#: The only message protocol version we speak.
PROTOCOL_VERSION = "4.0"
#: ``algorithmId`` of ``requestHash`` (X-Road's default digest, SHA-512).
REQUEST_HASH_SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
#: Namespace of the represented-party extension (PR-REPREXT).
NS_REPRESENTATION = "http://x-road.eu/xsd/representation.xsd"

_TEXT_FIELDS = ("id", "userId", "issue", "protocolVersion", "requestHash")
_ID_FIELDS = ("client", "service", "securityServer")


@dataclass(frozen=True, slots=True)
class RepresentedParty:
    """The party a request is made on behalf of (``repr:representedParty``)."""

    party_code: str
    party_class: str | None = None


@dataclass(frozen=True, slots=True)
class XRoadHeader:
    """The X-Road header fields of one message.

    Attributes:
        client: the service client (member or subsystem).
        service: the service called.
        id: the message id.
        protocol_version: always ``"4.0"`` once parsed.
        user_id: ``xroad:userId`` if present (``""`` when empty).
        issue: ``xroad:issue`` if present (``""`` when empty).
        security_server: the targeted security server, if any.
        request_hash: base64 request hash (responses), if any.
        request_hash_algorithm: its ``algorithmId``.
        represented_party: the represented party, if any.
    """

    client: ClientId
    service: ServiceId
    id: str
    protocol_version: str = PROTOCOL_VERSION
    user_id: str | None = None
    issue: str | None = None
    security_server: SecurityServerId | None = None
    request_hash: str | None = None
    request_hash_algorithm: str | None = None
    represented_party: RepresentedParty | None = None


def _text_only(element: etree._Element, name: str) -> str:
    if len(element):
        raise MalformedMessage(
            f"Header field {name} must hold text only", code="InvalidXml"
        )
    return element.text or ""


def _represented_party(element: etree._Element) -> RepresentedParty:
    values: dict[str, str] = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue
        local = etree.QName(child).localname
        if local not in ("partyClass", "partyCode") or local in values:
            raise MalformedMessage(
                f"Unexpected {local} in representedParty", code="InvalidXml"
            )
        values[local] = _text_only(child, local)
    if not values.get("partyCode"):
        raise MalformedMessage(
            "representedParty lacks partyCode", code="MissingHeaderField"
        )
    return RepresentedParty(values["partyCode"], values.get("partyClass"))


_XROAD_PREFIX = f"{{{NS_XROAD}}}"
_REPRESENTED_PARTY = f"{{{NS_REPRESENTATION}}}representedParty"


def _collect(header: etree._Element) -> dict[str, etree._Element]:
    found: dict[str, etree._Element] = {}
    for child in header:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        # Plain string tests on the Clark-notation tag (no QName objects):
        # this runs for every header field of every message.
        if tag.startswith(_XROAD_PREFIX):
            name = tag[len(_XROAD_PREFIX) :]
        elif tag == _REPRESENTED_PARTY:
            name = "representedParty"
        else:
            continue  # other extensions (security token ...) pass through
        if name in found:
            # PR-MESS: "a header field given twice" -> DuplicateHeaderField.
            raise MalformedMessage(
                f"Header field {name} occurs more than once",
                code="DuplicateHeaderField",
            )
        found[name] = child
    return found


def parse_header(header: etree._Element) -> XRoadHeader:
    """Read and check the X-Road fields of a ``SOAP-ENV:Header`` element.

    Args:
        header: the ``SOAP-ENV:Header`` element.

    Returns:
        The header fields.

    Raises:
        MalformedMessage: ``DuplicateHeaderField``, ``MissingHeaderField``,
            ``InvalidProtocolVersion``, ``InvalidXml`` or an identifier code.
    """
    found = _collect(header)
    for required in ("client", "service", "id", "protocolVersion"):
        if required not in found:
            raise MalformedMessage(
                f"Required header field {required} is missing",
                code="MissingHeaderField",
            )
    texts = {n: _text_only(found[n], n) for n in _TEXT_FIELDS if n in found}
    if not texts["id"].strip():
        raise MalformedMessage("Header field id is empty", code="MissingHeaderField")
    # PR-MESS §2.3: "protocolVersion ... MUST be 4.0".
    if texts["protocolVersion"] != PROTOCOL_VERSION:
        raise MalformedMessage(
            f"Unsupported protocolVersion {texts['protocolVersion']!r}; "
            f"expected {PROTOCOL_VERSION}",
            code="InvalidProtocolVersion",
        )
    client = identifier_from_xml(found["client"], ClientId)
    service = identifier_from_xml(found["service"], ServiceId)
    server = None
    if "securityServer" in found:
        server = identifier_from_xml(found["securityServer"], SecurityServerId)
    assert isinstance(client, ClientId) and isinstance(service, ServiceId)
    assert server is None or isinstance(server, SecurityServerId)
    party = None
    if "representedParty" in found:
        party = _represented_party(found["representedParty"])
    return XRoadHeader(
        client=client,
        service=service,
        id=texts["id"],
        protocol_version=texts["protocolVersion"],
        user_id=texts.get("userId"),
        issue=texts.get("issue"),
        security_server=server,
        request_hash=texts.get("requestHash"),
        request_hash_algorithm=(
            found["requestHash"].get("algorithmId") if "requestHash" in found else None
        ),
        represented_party=party,
    )


def _xroad(parent: etree._Element, name: str, text: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{NS_XROAD}}}{name}")
    element.text = text
    return element


def build_header(header: XRoadHeader, parent: etree._Element) -> etree._Element:
    """Append the fields of ``header`` to a ``SOAP-ENV:Header`` element.

    Field order follows PR-MESS's examples: client, service, securityServer,
    representedParty, userId, id, requestHash, issue, protocolVersion.

    Args:
        header: the fields to write.
        parent: the ``SOAP-ENV:Header`` element (it should declare the
            ``xroad`` and ``id`` prefixes).

    Returns:
        ``parent``.
    """
    identifier_to_xml(header.client, f"{{{NS_XROAD}}}client", parent=parent)
    identifier_to_xml(header.service, f"{{{NS_XROAD}}}service", parent=parent)
    if header.security_server is not None:
        identifier_to_xml(
            header.security_server, f"{{{NS_XROAD}}}securityServer", parent=parent
        )
    if header.represented_party is not None:
        party = etree.SubElement(
            parent,
            f"{{{NS_REPRESENTATION}}}representedParty",
            nsmap={"repr": NS_REPRESENTATION},
        )
        if header.represented_party.party_class is not None:
            etree.SubElement(
                party, f"{{{NS_REPRESENTATION}}}partyClass"
            ).text = header.represented_party.party_class
        etree.SubElement(
            party, f"{{{NS_REPRESENTATION}}}partyCode"
        ).text = header.represented_party.party_code
    if header.user_id is not None:
        _xroad(parent, "userId", header.user_id)
    _xroad(parent, "id", header.id)
    if header.request_hash is not None:
        element = _xroad(parent, "requestHash", header.request_hash)
        element.set("algorithmId", header.request_hash_algorithm or REQUEST_HASH_SHA512)
    if header.issue is not None:
        _xroad(parent, "issue", header.issue)
    _xroad(parent, "protocolVersion", header.protocol_version)
    return parent
