"""The text form of identifiers: ``TYPE:part/part/...``.

Used in logs, ACLs and the admin UI. ``str(ident)`` writes it; the functions
here read it back (see :mod:`jplink.identifiers` for the rules, including the
empty subsystem segment of a versioned service without subsystem).
"""

from __future__ import annotations

from typing import TypeVar

from ..errors import InvalidRequest
from ._model import (
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    SecurityServerId,
    ServiceId,
    XRoadId,
    XRoadObjectType,
)

__all__ = [
    "parse_client_id",
    "parse_identifier",
    "parse_security_server_id",
    "parse_service_id",
]

_T = TypeVar("_T", ClientId, ServiceId, SecurityServerId, GlobalGroupId, LocalGroupId)


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
