"""The XML form of identifiers (``identifiers.xsd``, PR-MESS Annex A).

Namespace ``http://x-road.eu/xsd/identifiers``: an element with an
``id:objectType`` attribute and its parts as children in schema order.
Parsing refuses missing, unknown, repeated and misordered children and maps
bad values to X-Road's fault codes. Re-exported by :mod:`jplink.identifiers`.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from ..errors import InvalidRequest, MalformedMessage
from ..ns import NS_IDENTIFIERS, NS_XROAD
from ._model import (
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    SecurityServerId,
    ServiceId,
    XRoadId,
    XRoadObjectType,
)

__all__ = ["identifier_from_xml", "identifier_to_xml"]

_OBJECT_TYPE_ATTR = f"{{{NS_IDENTIFIERS}}}objectType"

# Child order of XRoadIdentifierType's sequence.
_XML_ORDER = (
    "xRoadInstance",
    "memberClass",
    "memberCode",
    "subsystemCode",
    "groupCode",
    "serviceCode",
    "serviceVersion",
    "serverCode",
)

# Which children each object type allows, and which of them are required.
_XML_SHAPE: dict[XRoadObjectType, tuple[tuple[str, ...], frozenset[str]]] = {
    XRoadObjectType.MEMBER: (
        ("xRoadInstance", "memberClass", "memberCode"),
        frozenset({"xRoadInstance", "memberClass", "memberCode"}),
    ),
    XRoadObjectType.SUBSYSTEM: (
        ("xRoadInstance", "memberClass", "memberCode", "subsystemCode"),
        frozenset({"xRoadInstance", "memberClass", "memberCode", "subsystemCode"}),
    ),
    XRoadObjectType.SERVICE: (
        (
            "xRoadInstance",
            "memberClass",
            "memberCode",
            "subsystemCode",
            "serviceCode",
            "serviceVersion",
        ),
        frozenset({"xRoadInstance", "memberClass", "memberCode", "serviceCode"}),
    ),
    XRoadObjectType.SERVER: (
        ("xRoadInstance", "memberClass", "memberCode", "serverCode"),
        frozenset({"xRoadInstance", "memberClass", "memberCode", "serverCode"}),
    ),
    XRoadObjectType.GLOBALGROUP: (
        ("xRoadInstance", "groupCode"),
        frozenset({"xRoadInstance", "groupCode"}),
    ),
    XRoadObjectType.LOCALGROUP: (("groupCode",), frozenset({"groupCode"})),
}

# X-Road's fault codes for an identifier with bad values.
_BAD_VALUE_CODE = {
    XRoadObjectType.MEMBER: "InvalidClientIdentifier",
    XRoadObjectType.SUBSYSTEM: "InvalidClientIdentifier",
    XRoadObjectType.SERVICE: "InvalidServiceIdentifier",
    XRoadObjectType.SERVER: "InvalidSecurityServer",
    XRoadObjectType.GLOBALGROUP: "InvalidXml",
    XRoadObjectType.LOCALGROUP: "InvalidXml",
}


def _xml_fields(ident: XRoadId) -> Iterator[tuple[str, str]]:
    values: dict[str, str | None]
    if isinstance(ident, ClientId):
        values = {"subsystemCode": ident.subsystem_code}
    elif isinstance(ident, ServiceId):
        values = {
            "subsystemCode": ident.subsystem_code,
            "serviceCode": ident.service_code,
            "serviceVersion": ident.service_version,
        }
    elif isinstance(ident, SecurityServerId):
        values = {"serverCode": ident.server_code}
    elif isinstance(ident, GlobalGroupId):
        values = {"groupCode": ident.group_code}
    else:
        values = {"groupCode": ident.group_code}
    if not isinstance(ident, LocalGroupId):
        values["xRoadInstance"] = ident.instance
    if isinstance(ident, ClientId | ServiceId | SecurityServerId):
        values["memberClass"] = ident.member_class
        values["memberCode"] = ident.member_code
    for name in _XML_ORDER:
        value = values.get(name)
        if value is not None:
            yield name, value


def identifier_to_xml(
    ident: XRoadId, tag: str, *, parent: etree._Element | None = None
) -> etree._Element:
    """Build the identifiers.xsd element for an identifier.

    Args:
        ident: the identifier.
        tag: the element name, in Clark notation (``{ns}local``) or a bare local
            name (e.g. ``{http://x-road.eu/xsd/xroad.xsd}client``).
        parent: append the new element to this parent (no namespace
            declarations are repeated then).

    Returns:
        The element, with ``id:objectType`` and its children in schema order.

    Raises:
        TypeError: if ``ident`` is not an identifier object.
    """
    if not isinstance(
        ident, ClientId | ServiceId | SecurityServerId | GlobalGroupId | LocalGroupId
    ):
        raise TypeError(f"not an X-Road identifier: {ident!r}")
    if parent is None:
        nsmap = {"id": NS_IDENTIFIERS}
        if tag.startswith(f"{{{NS_XROAD}}}"):
            nsmap["xroad"] = NS_XROAD
        element = etree.Element(tag, nsmap=nsmap)
    else:
        element = etree.SubElement(parent, tag)
    element.set(_OBJECT_TYPE_ATTR, ident.object_type.value)
    for name, value in _xml_fields(ident):
        etree.SubElement(element, f"{{{NS_IDENTIFIERS}}}{name}").text = value
    return element


_ID_PREFIX = f"{{{NS_IDENTIFIERS}}}"
# Position of each allowed child per kind (schema order), for one lookup.
_POSITIONS: dict[XRoadObjectType, dict[str, int]] = {
    kind: {name: i for i, name in enumerate(shape[0])}
    for kind, shape in _XML_SHAPE.items()
}
_KINDS = {kind.value: kind for kind in XRoadObjectType}


def _children(element: etree._Element, kind: XRoadObjectType) -> dict[str, str]:
    # Every message carries several identifiers: tags are compared as
    # strings (no QName objects), positions come from one dict.
    positions = _POSITIONS[kind]
    found: dict[str, str] = {}
    position = -1
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue  # comments and processing instructions
        local = tag[len(_ID_PREFIX) :] if tag.startswith(_ID_PREFIX) else ""
        index = positions.get(local, -1)
        if index < 0:
            raise MalformedMessage(
                f"Unexpected element {etree.QName(child).localname} in a "
                f"{kind.value} identifier",
                code="InvalidXml",
            )
        if local in found or index < position:
            raise MalformedMessage(
                f"Element {local} repeated or out of order in a "
                f"{kind.value} identifier",
                code="InvalidXml",
            )
        if len(child):
            raise MalformedMessage(
                f"Identifier element {local} must hold text only",
                code="InvalidXml",
            )
        position = index
        found[local] = child.text or ""
    missing = sorted(_XML_SHAPE[kind][1] - found.keys())
    if missing:
        raise MalformedMessage(
            f"{kind.value} identifier lacks {', '.join(missing)}", code="InvalidXml"
        )
    return found


def identifier_from_xml(
    element: etree._Element,
    expected: type[XRoadId] | tuple[type[XRoadId], ...] | None = None,
) -> XRoadId:
    """Read an identifiers.xsd element (e.g. ``xroad:client``).

    Args:
        element: the element carrying ``id:objectType`` and the id children.
        expected: the identifier class(es) allowed here; ``None`` allows all.

    Returns:
        The identifier.

    Raises:
        MalformedMessage: code ``InvalidXml`` for a missing or unknown
            ``objectType``, a type other than ``expected``, missing, unknown,
            repeated or misordered children; ``InvalidClientIdentifier`` /
            ``InvalidServiceIdentifier`` / ``InvalidSecurityServer`` for values
            with forbidden characters.
    """
    raw_type = element.get(_OBJECT_TYPE_ATTR)
    if raw_type is None:
        # X-Road: missing objectType -> Client.InvalidXml (missingobjecttype.query).
        local = etree.QName(element).localname
        raise MalformedMessage(f"{local} lacks id:objectType", code="InvalidXml")
    kind = _KINDS.get(raw_type)
    if kind is None:
        local = etree.QName(element).localname
        raise MalformedMessage(
            f"{local} has the unknown objectType {raw_type!r}", code="InvalidXml"
        )
    v = _children(element, kind)
    try:
        ident: XRoadId
        if kind in (XRoadObjectType.MEMBER, XRoadObjectType.SUBSYSTEM):
            ident = ClientId(
                v["xRoadInstance"],
                v["memberClass"],
                v["memberCode"],
                v.get("subsystemCode"),
            )
        elif kind is XRoadObjectType.SERVICE:
            ident = ServiceId(
                v["xRoadInstance"],
                v["memberClass"],
                v["memberCode"],
                v.get("subsystemCode"),
                v["serviceCode"],
                v.get("serviceVersion"),
            )
        elif kind is XRoadObjectType.SERVER:
            ident = SecurityServerId(
                v["xRoadInstance"], v["memberClass"], v["memberCode"], v["serverCode"]
            )
        elif kind is XRoadObjectType.GLOBALGROUP:
            ident = GlobalGroupId(v["xRoadInstance"], v["groupCode"])
        else:
            ident = LocalGroupId(v["groupCode"])
    except InvalidRequest as exc:
        local = etree.QName(element).localname
        raise MalformedMessage(
            f"{local}: {exc.message}", code=_BAD_VALUE_CODE[kind], detail=exc.detail
        ) from exc
    if expected is not None and not isinstance(ident, expected):
        local = etree.QName(element).localname
        raise MalformedMessage(
            f"{local} must not be of objectType {kind.value}", code="InvalidXml"
        )
    return ident
