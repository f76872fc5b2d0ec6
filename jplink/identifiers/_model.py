"""Identifier objects and the character rule every identifier part obeys.

Frozen value objects whose constructors validate each part (see the rule in
:mod:`jplink.identifiers`, which re-exports every public name here).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Any, TypeAlias

from ..errors import InvalidRequest

__all__ = [
    "MAX_PART_LENGTH",
    "ClientId",
    "GlobalGroupId",
    "LocalGroupId",
    "SecurityServerId",
    "ServiceId",
    "XRoadId",
    "XRoadObjectType",
    "validate_part",
]

#: Longest identifier part accepted (X-Road stores them as varchar(255)).
MAX_PART_LENGTH = 255

# X-Road ClientMessageProcessor.validateIdentifierField: forbidden characters.
_FORBIDDEN = frozenset("%:;/\\\u200b\ufeff")


# Values that passed the full check. The rule depends on the value alone (the
# field name only shapes the error message), so a hit is exactly as good as a
# fresh check. Bounded: once full it starts again from empty (a network has
# far fewer distinct parts than this; a flood of new ones costs full checks).
_VALID: set[str] = set()
_MAX_VALID = 4096


def _remember(value: str) -> None:
    if len(_VALID) >= _MAX_VALID:
        _VALID.clear()
    _VALID.add(value)


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
    # Fast path: a value of the exact type str that passed the full check
    # before. Only plain str is memoised (a subclass could redefine equality).
    if type(value) is str and value in _VALID:
        return value
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
    if type(value) is str:
        _remember(value)
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
