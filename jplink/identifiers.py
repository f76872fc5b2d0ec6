"""X-Road identifiers: clients, services, security servers and groups.

Every identifier is a frozen value object whose constructor validates each part,
so an instance that exists is always valid. Three forms are supported:

- objects (:class:`ClientId`, :class:`ServiceId`, :class:`SecurityServerId`,
  :class:`GlobalGroupId`, :class:`LocalGroupId`);
- the text form used in logs, ACLs and the admin UI
  (``SUBSYSTEM:JP/COM/1234/sub``, ``SERVICE:JP/COM/1234/sub/getData/v1``), via
  ``str(ident)`` and :func:`parse_identifier`;
- the XML form of ``http://x-road.eu/xsd/identifiers`` (PR-MESS Annex A), via
  :func:`identifier_to_xml` and :func:`identifier_from_xml`.

Allowed characters. X-Road's proxy (``checkIdentifier``) refuses an identifier
part containing an ISO control character (U+0000..U+001F, U+007F..U+009F),
``%``, ``:``, ``;``, ``/``, ``\\``, U+200B or U+FEFF. We apply that rule and,
failing closed, also refuse empty parts, leading or trailing whitespace, any
other non-printable character (``str.isprintable``) and parts longer than
:data:`MAX_PART_LENGTH`. Because ``:`` and ``/`` can never occur in a part, the
text form splits unambiguously. PR-REST §4.8 recommends the stricter set
``A-Z a-z 0-9 '()+,-.=?``; that is a recommendation for operators, not a check.

Text form of a service without a subsystem but with a version: the subsystem
segment is left empty (``SERVICE:JP/COM/1234//getData/v1``) so that five
segments always mean "with subsystem, without version" and every identifier
round-trips through its text.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any, TypeAlias, TypeVar

from lxml import etree

from .errors import InvalidRequest, MalformedMessage
from .ns import NS_IDENTIFIERS, NS_XROAD

__all__ = [
    "MAX_PART_LENGTH",
    "ClientId",
    "GlobalGroupId",
    "LocalGroupId",
    "SecurityServerId",
    "ServiceId",
    "XRoadId",
    "XRoadObjectType",
    "identifier_from_xml",
    "identifier_to_xml",
    "parse_client_id",
    "parse_identifier",
    "parse_security_server_id",
    "parse_service_id",
    "validate_part",
]

#: Longest identifier part accepted (X-Road stores them as varchar(255)).
MAX_PART_LENGTH = 255

# X-Road ClientMessageProcessor.validateIdentifierField: forbidden characters.
_FORBIDDEN = frozenset("%:;/\\\u200b\ufeff")


class XRoadObjectType(enum.Enum):
    """The ``id:objectType`` attribute values (identifiers.xsd)."""

    MEMBER = "MEMBER"
    SUBSYSTEM = "SUBSYSTEM"
    SERVER = "SERVER"
    SERVICE = "SERVICE"
    GLOBALGROUP = "GLOBALGROUP"
    LOCALGROUP = "LOCALGROUP"


def validate_part(value: object, name: str) -> str:
    """Check one identifier part against X-Road's character rule.

    Args:
        value: the candidate part.
        name: the field name, for the error message (``memberCode`` ...).

    Returns:
        The value, unchanged.

    Raises:
        InvalidRequest: if the value is not a string or breaks the rule.
    """
    if not isinstance(value, str):
        raise InvalidRequest(f"Identifier part {name} must be a string")
    if not value:
        raise InvalidRequest(f"Identifier part {name} must not be empty")
    if len(value) > MAX_PART_LENGTH:
        raise InvalidRequest(
            f"Identifier part {name} is longer than {MAX_PART_LENGTH} characters"
        )
    if value != value.strip():
        raise InvalidRequest(
            f"Identifier part {name} must not start or end with whitespace"
        )
    for char in value:
        code = ord(char)
        if (
            char in _FORBIDDEN
            or code <= 0x1F
            or 0x7F <= code <= 0x9F
            or not char.isprintable()
        ):
            raise InvalidRequest(
                f"Identifier part {name} contains the forbidden character U+{code:04X}",
                detail={"field": name},
            )
    return value


def _optional_part(value: object, name: str) -> str | None:
    return None if value is None else validate_part(value, name)


class _Ordered:
    """Total ordering by type, then by parts, with ``None`` sorting first.

    ``dataclass(order=True)`` would raise TypeError when comparing a member
    (``subsystem_code=None``) with a subsystem of the same member.
    """

    __slots__ = ()

    def _key(self) -> tuple[tuple[bool, str], ...]:
        values = (getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]
        return tuple((v is not None, v or "") for v in values)

    def _cmp_key(self, other: object) -> tuple[Any, Any] | None:
        if type(other) is not type(self):
            return None
        assert isinstance(other, _Ordered)
        return self._key(), other._key()

    def __lt__(self, other: object) -> bool:
        keys = self._cmp_key(other)
        return NotImplemented if keys is None else bool(keys[0] < keys[1])

    def __le__(self, other: object) -> bool:
        keys = self._cmp_key(other)
        return NotImplemented if keys is None else bool(keys[0] <= keys[1])

    def __gt__(self, other: object) -> bool:
        keys = self._cmp_key(other)
        return NotImplemented if keys is None else bool(keys[0] > keys[1])

    def __ge__(self, other: object) -> bool:
        keys = self._cmp_key(other)
        return NotImplemented if keys is None else bool(keys[0] >= keys[1])


@dataclass(frozen=True, slots=True)
class ClientId(_Ordered):
    """A member (``MEMBER:JP/COM/1234``) or subsystem (``SUBSYSTEM:JP/COM/1234/sub``).

    Raises:
        InvalidRequest: from the constructor, for a part with forbidden characters.
    """

    instance: str
    member_class: str
    member_code: str
    subsystem_code: str | None = None

    def __post_init__(self) -> None:
        validate_part(self.instance, "xRoadInstance")
        validate_part(self.member_class, "memberClass")
        validate_part(self.member_code, "memberCode")
        _optional_part(self.subsystem_code, "subsystemCode")

    @property
    def object_type(self) -> XRoadObjectType:
        """MEMBER or SUBSYSTEM."""
        if self.subsystem_code is None:
            return XRoadObjectType.MEMBER
        return XRoadObjectType.SUBSYSTEM

    @property
    def member(self) -> ClientId:
        """The member itself (this identifier without its subsystem)."""
        return ClientId(self.instance, self.member_class, self.member_code)

    def subsystem(self, code: str) -> ClientId:
        """The subsystem ``code`` of this identifier's member."""
        return ClientId(self.instance, self.member_class, self.member_code, code)

    def _parts(self) -> tuple[str | None, ...]:
        return (self.instance, self.member_class, self.member_code, self.subsystem_code)

    def __str__(self) -> str:
        parts = [p for p in self._parts() if p is not None]
        return f"{self.object_type.value}:{'/'.join(parts)}"


@dataclass(frozen=True, slots=True)
class ServiceId(_Ordered):
    """A service: ``SERVICE:JP/COM/1234/sub/getData/v1``.

    Raises:
        InvalidRequest: from the constructor, for a part with forbidden characters.
    """

    instance: str
    member_class: str
    member_code: str
    subsystem_code: str | None
    service_code: str
    service_version: str | None = None

    def __post_init__(self) -> None:
        validate_part(self.instance, "xRoadInstance")
        validate_part(self.member_class, "memberClass")
        validate_part(self.member_code, "memberCode")
        _optional_part(self.subsystem_code, "subsystemCode")
        validate_part(self.service_code, "serviceCode")
        _optional_part(self.service_version, "serviceVersion")

    @property
    def object_type(self) -> XRoadObjectType:
        """Always SERVICE."""
        return XRoadObjectType.SERVICE

    @property
    def client(self) -> ClientId:
        """The provider (member or subsystem) that offers the service."""
        return ClientId(
            self.instance, self.member_class, self.member_code, self.subsystem_code
        )

    @property
    def unversioned(self) -> ServiceId:
        """The same service without version (access rights ignore versions)."""
        return ServiceId(
            self.instance,
            self.member_class,
            self.member_code,
            self.subsystem_code,
            self.service_code,
        )

    def _parts(self) -> tuple[str | None, ...]:
        return (
            self.instance,
            self.member_class,
            self.member_code,
            self.subsystem_code,
            self.service_code,
            self.service_version,
        )

    def __str__(self) -> str:
        parts = [self.instance, self.member_class, self.member_code]
        if self.subsystem_code is not None:
            parts.append(self.subsystem_code)
        elif self.service_version is not None:
            parts.append("")  # keeps the text form unambiguous (module doc)
        parts.append(self.service_code)
        if self.service_version is not None:
            parts.append(self.service_version)
        return f"SERVICE:{'/'.join(parts)}"


@dataclass(frozen=True, slots=True)
class SecurityServerId(_Ordered):
    """A security server: ``SERVER:JP/COM/1234/ss1``.

    Raises:
        InvalidRequest: from the constructor, for a part with forbidden characters.
    """

    instance: str
    member_class: str
    member_code: str
    server_code: str

    def __post_init__(self) -> None:
        validate_part(self.instance, "xRoadInstance")
        validate_part(self.member_class, "memberClass")
        validate_part(self.member_code, "memberCode")
        validate_part(self.server_code, "serverCode")

    @property
    def object_type(self) -> XRoadObjectType:
        """Always SERVER."""
        return XRoadObjectType.SERVER

    @property
    def owner(self) -> ClientId:
        """The member that owns the server."""
        return ClientId(self.instance, self.member_class, self.member_code)

    def _parts(self) -> tuple[str | None, ...]:
        return (self.instance, self.member_class, self.member_code, self.server_code)

    def __str__(self) -> str:
        return f"SERVER:{'/'.join(p for p in self._parts() if p is not None)}"


@dataclass(frozen=True, slots=True)
class GlobalGroupId(_Ordered):
    """A global group of an instance: ``GLOBALGROUP:JP/security-server-owners``.

    Raises:
        InvalidRequest: from the constructor, for a part with forbidden characters.
    """

    instance: str
    group_code: str

    def __post_init__(self) -> None:
        validate_part(self.instance, "xRoadInstance")
        validate_part(self.group_code, "groupCode")

    @property
    def object_type(self) -> XRoadObjectType:
        """Always GLOBALGROUP."""
        return XRoadObjectType.GLOBALGROUP

    def _parts(self) -> tuple[str | None, ...]:
        return (self.instance, self.group_code)

    def __str__(self) -> str:
        return f"GLOBALGROUP:{self.instance}/{self.group_code}"


@dataclass(frozen=True, slots=True)
class LocalGroupId(_Ordered):
    """A local group of a security-server client: ``LOCALGROUP:admins``.

    Raises:
        InvalidRequest: from the constructor, for a part with forbidden characters.
    """

    group_code: str

    def __post_init__(self) -> None:
        validate_part(self.group_code, "groupCode")

    @property
    def object_type(self) -> XRoadObjectType:
        """Always LOCALGROUP."""
        return XRoadObjectType.LOCALGROUP

    def _parts(self) -> tuple[str | None, ...]:
        return (self.group_code,)

    def __str__(self) -> str:
        return f"LOCALGROUP:{self.group_code}"


#: Any X-Road identifier.
XRoadId: TypeAlias = (
    ClientId | ServiceId | SecurityServerId | GlobalGroupId | LocalGroupId
)

_T = TypeVar("_T", ClientId, ServiceId, SecurityServerId, GlobalGroupId, LocalGroupId)


# ----------------------------------------------------------------------------
# Text form
# ----------------------------------------------------------------------------


def _from_segments(kind: XRoadObjectType, seg: list[str], text: str) -> XRoadId:
    n = len(seg)
    if kind is XRoadObjectType.MEMBER and n == 3:
        return ClientId(seg[0], seg[1], seg[2])
    if kind is XRoadObjectType.SUBSYSTEM and n == 4:
        return ClientId(seg[0], seg[1], seg[2], seg[3])
    if kind is XRoadObjectType.SERVICE and n in (4, 5, 6):
        if n == 4:
            return ServiceId(seg[0], seg[1], seg[2], None, seg[3])
        if n == 5:
            return ServiceId(seg[0], seg[1], seg[2], seg[3], seg[4])
        return ServiceId(seg[0], seg[1], seg[2], seg[3] or None, seg[4], seg[5])
    if kind is XRoadObjectType.SERVER and n == 4:
        return SecurityServerId(seg[0], seg[1], seg[2], seg[3])
    if kind is XRoadObjectType.GLOBALGROUP and n == 2:
        return GlobalGroupId(seg[0], seg[1])
    if kind is XRoadObjectType.LOCALGROUP and n == 1:
        return LocalGroupId(seg[0])
    raise InvalidRequest(
        f"Identifier {text!r} has {n} parts, which does not fit type {kind.value}"
    )


def parse_identifier(text: str) -> XRoadId:
    """Parse the text form ``TYPE:part/part/...`` of any identifier.

    Args:
        text: e.g. ``SUBSYSTEM:JP/COM/1234/sub`` or ``SERVER:JP/COM/1234/ss1``.

    Returns:
        The identifier object.

    Raises:
        InvalidRequest: for an unknown type, a wrong number of parts, or a part
            with forbidden characters.
    """
    if not isinstance(text, str):
        raise InvalidRequest("An identifier must be given as text")
    kind_text, sep, rest = text.partition(":")
    if not sep:
        raise InvalidRequest(f"Identifier {text!r} lacks its 'TYPE:' prefix")
    try:
        kind = XRoadObjectType(kind_text)
    except ValueError:
        raise InvalidRequest(
            f"Identifier {text!r} has the unknown type {kind_text!r}"
        ) from None
    return _from_segments(kind, rest.split("/"), text)


def _parse_as(text: str, cls: type[_T]) -> _T:
    ident = parse_identifier(text)
    if not isinstance(ident, cls):
        raise InvalidRequest(
            f"Identifier {text!r} is a {ident.object_type.value}, not a {cls.__name__}"
        )
    return ident


def parse_client_id(text: str) -> ClientId:
    """Parse ``MEMBER:I/C/M`` or ``SUBSYSTEM:I/C/M/S``.

    Raises:
        InvalidRequest: if the text is not a valid member or subsystem id.
    """
    return _parse_as(text, ClientId)


def parse_service_id(text: str) -> ServiceId:
    """Parse ``SERVICE:I/C/M[/S]/code[/version]`` (see the module doc).

    Raises:
        InvalidRequest: if the text is not a valid service id.
    """
    return _parse_as(text, ServiceId)


def parse_security_server_id(text: str) -> SecurityServerId:
    """Parse ``SERVER:I/C/M/serverCode``.

    Raises:
        InvalidRequest: if the text is not a valid security server id.
    """
    return _parse_as(text, SecurityServerId)


# ----------------------------------------------------------------------------
# XML form (identifiers.xsd)
# ----------------------------------------------------------------------------

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


def _children(element: etree._Element, kind: XRoadObjectType) -> dict[str, str]:
    allowed, required = _XML_SHAPE[kind]
    found: dict[str, str] = {}
    position = -1
    for child in element:
        if not isinstance(child.tag, str):
            continue  # comments and processing instructions
        qname = etree.QName(child)
        if qname.namespace != NS_IDENTIFIERS or qname.localname not in allowed:
            raise MalformedMessage(
                f"Unexpected element {qname.localname} in a {kind.value} identifier",
                code="InvalidXml",
            )
        index = allowed.index(qname.localname)
        if qname.localname in found or index < position:
            raise MalformedMessage(
                f"Element {qname.localname} repeated or out of order in a "
                f"{kind.value} identifier",
                code="InvalidXml",
            )
        if len(child):
            raise MalformedMessage(
                f"Identifier element {qname.localname} must hold text only",
                code="InvalidXml",
            )
        position = index
        found[qname.localname] = child.text or ""
    missing = sorted(required - found.keys())
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
    local = etree.QName(element).localname
    raw_type = element.get(_OBJECT_TYPE_ATTR)
    if raw_type is None:
        # X-Road: missing objectType -> Client.InvalidXml (missingobjecttype.query).
        raise MalformedMessage(f"{local} lacks id:objectType", code="InvalidXml")
    try:
        kind = XRoadObjectType(raw_type)
    except ValueError:
        raise MalformedMessage(
            f"{local} has the unknown objectType {raw_type!r}", code="InvalidXml"
        ) from None
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
        raise MalformedMessage(
            f"{local}: {exc.message}", code=_BAD_VALUE_CODE[kind], detail=exc.detail
        ) from exc
    if expected is not None and not isinstance(ident, expected):
        raise MalformedMessage(
            f"{local} must not be of objectType {kind.value}", code="InvalidXml"
        )
    return ident
