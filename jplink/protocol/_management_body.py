"""Management request bodies (PR-MSERV, ``request.xsd``): build and parse.

Sans-IO. One body wrapper per operation, ``<xroad:{operation}>`` in the
namespace ``http://x-road.eu/xsd/xroad.xsd``, with the operation's fields in
schema order; the central server's response echoes them inside
``<xroad:{operation}Response>`` plus a ``requestId``. Parsing refuses unknown,
repeated, misordered, missing and malformed fields. Re-exported by
:mod:`jplink.protocol.management`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
import re
from dataclasses import dataclass, field

from lxml import etree

from ..errors import InvalidRequest, MalformedMessage
from ..identifiers import (
    ClientId,
    SecurityServerId,
    identifier_from_xml,
    identifier_to_xml,
)
from ..ns import NS_XROAD

__all__ = [
    "ManagementRequest",
    "ManagementRequestType",
    "SignerRole",
    "body_element",
    "build_management_body",
    "check_address",
    "parse_management_body",
]

_MAX_TEXT = 1024
_MAX_CERT_TEXT = 65536
# RFC 1123 host name labels; X-Road's assertAddress accepts an IP or a domain.
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class SignerRole(enum.Enum):
    """Whose signing key must sign a request (PR-MSERV §2)."""

    NONE = "none"
    SERVER_OWNER = "serverOwner"
    CLIENT_OWNER = "clientOwner"


class ManagementRequestType(enum.Enum):
    """The management operations; the value is the serviceCode and body name."""

    AUTH_CERT_REG = "authCertReg"
    AUTH_CERT_DELETION = "authCertDeletion"
    CLIENT_REG = "clientReg"
    CLIENT_DELETION = "clientDeletion"
    CLIENT_DISABLE = "clientDisable"
    CLIENT_ENABLE = "clientEnable"
    CLIENT_RENAME = "clientRename"
    OWNER_CHANGE = "ownerChange"
    ADDRESS_CHANGE = "addressChange"
    MAINTENANCE_MODE_ENABLE = "maintenanceModeEnable"
    MAINTENANCE_MODE_DISABLE = "maintenanceModeDisable"

    @property
    def signer(self) -> SignerRole:
        """Whose signing key signs this request."""
        return _SIGNERS.get(self, SignerRole.CLIENT_OWNER)

    @property
    def fields(self) -> tuple[tuple[str, bool], ...]:
        """Body fields in ``request.xsd`` order, with whether each is required."""
        return _FIELDS[self]


_T = ManagementRequestType
_SIGNERS = {
    _T.AUTH_CERT_REG: SignerRole.SERVER_OWNER,
    _T.ADDRESS_CHANGE: SignerRole.SERVER_OWNER,
    _T.MAINTENANCE_MODE_ENABLE: SignerRole.SERVER_OWNER,
    _T.MAINTENANCE_MODE_DISABLE: SignerRole.SERVER_OWNER,
    _T.CLIENT_DELETION: SignerRole.NONE,
    _T.AUTH_CERT_DELETION: SignerRole.NONE,
}
_CLIENT = (("server", True), ("client", True))
_FIELDS: dict[ManagementRequestType, tuple[tuple[str, bool], ...]] = {
    _T.AUTH_CERT_REG: (
        ("server", True),
        ("address", False),
        ("authCert", True),
        ("dryRun", False),
    ),
    _T.AUTH_CERT_DELETION: (("server", True), ("authCert", True)),
    _T.CLIENT_REG: (*_CLIENT, ("subsystemName", False)),
    _T.CLIENT_DELETION: _CLIENT,
    _T.CLIENT_DISABLE: _CLIENT,
    _T.CLIENT_ENABLE: _CLIENT,
    _T.CLIENT_RENAME: (*_CLIENT, ("subsystemName", True)),
    _T.OWNER_CHANGE: _CLIENT,
    _T.ADDRESS_CHANGE: (("server", True), ("address", True)),
    _T.MAINTENANCE_MODE_ENABLE: (("server", True), ("message", False)),
    _T.MAINTENANCE_MODE_DISABLE: (("server", True),),
}
_ATTR = {
    "server": "server",
    "client": "client",
    "address": "address",
    "authCert": "auth_cert",
    "dryRun": "dry_run",
    "subsystemName": "subsystem_name",
    "message": "message",
}


@dataclass(frozen=True, slots=True)
class ManagementRequest:
    """The body of one management request (or response, with ``request_id``).

    Attributes:
        type: the operation.
        server: the security server concerned.
        client: the client (or, for ``ownerChange``, the new owner).
        address: the server's address (``authCertReg``, ``addressChange``).
        auth_cert: the DER authentication certificate.
        subsystem_name: the subsystem's name (``clientReg``, ``clientRename``).
        message: the maintenance-mode message.
        dry_run: ``authCertReg`` validation only.
        request_id: the central server's request number (responses).

    Raises:
        ValueError: a required field is missing or a foreign field is set.
    """

    type: ManagementRequestType
    server: SecurityServerId
    client: ClientId | None = None
    address: str | None = None
    auth_cert: bytes | None = field(default=None, repr=False)
    subsystem_name: str | None = None
    message: str | None = None
    dry_run: bool = False
    request_id: int | None = None

    def __post_init__(self) -> None:
        spec = dict(self.type.fields)
        for wire, attr in _ATTR.items():
            value = getattr(self, attr)
            present = value not in (None, False)
            if wire not in spec and present:
                raise ValueError(f"{self.type.value} has no field {wire}")
            if spec.get(wire) and value is None:
                raise ValueError(f"{self.type.value} needs {wire}")


def _xroad(parent: etree._Element, name: str, text: str) -> None:
    etree.SubElement(parent, f"{{{NS_XROAD}}}{name}").text = text


def body_element(
    request: ManagementRequest, local: str, request_id: int | None
) -> etree._Element:
    """The wrapper ``<xroad:{local}>`` with the request's fields in schema order.

    Args:
        request: the request.
        local: the wrapper's local name (the operation, or ``...Response``).
        request_id: appended as ``requestId`` unless None.

    Returns:
        The element.
    """
    wrapper = etree.Element(f"{{{NS_XROAD}}}{local}", nsmap={"xroad": NS_XROAD})
    for wire, _required in request.type.fields:
        value = getattr(request, _ATTR[wire])
        if value is None or (wire == "dryRun" and not value):
            continue
        if isinstance(value, SecurityServerId | ClientId):
            identifier_to_xml(value, f"{{{NS_XROAD}}}{wire}", parent=wrapper)
        elif isinstance(value, bytes):
            _xroad(wrapper, wire, base64.b64encode(value).decode("ascii"))
        elif isinstance(value, bool):
            _xroad(wrapper, wire, "true")
        else:
            _xroad(wrapper, wire, value)
    if request_id is not None:
        _xroad(wrapper, "requestId", str(request_id))
    return wrapper


def build_management_body(request: ManagementRequest) -> etree._Element:
    """The body wrapper element of a request (``request_id`` is not written).

    Args:
        request: the request.

    Returns:
        ``<xroad:{type}>`` with the fields in ``request.xsd`` order.
    """
    return body_element(request, request.type.value, None)


def _text(element: etree._Element, wire: str) -> str:
    if len(element):
        raise MalformedMessage(f"{wire} must hold text only", code="InvalidXml")
    text = element.text or ""
    if wire == "authCert":
        if len(text) > _MAX_CERT_TEXT:
            raise MalformedMessage("authCert is too long", code="InvalidXml")
        return text
    if len(text) > _MAX_TEXT or any(ord(c) < 0x20 and c != "\t" for c in text):
        raise MalformedMessage(
            f"{wire} is too long or has control characters", code="InvalidXml"
        )
    return text


def _check_host(host: str, address: str) -> None:
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    try:
        ascii_name = host.encode("idna").decode("ascii").rstrip(".")
    except UnicodeError:
        ascii_name = ""
    labels = ascii_name.split(".")
    if (
        not ascii_name
        or len(ascii_name) > 253
        or not all(map(_LABEL.fullmatch, labels))
    ):
        raise InvalidRequest(f"Invalid server address {address!r}")


def _split_port(address: str) -> tuple[str, int | None]:
    if address.startswith("[") and "]:" in address:  # [IPv6]:port
        host, _, port = address[1:].partition("]:")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise InvalidRequest(f"Invalid server address {address!r}") from None
    elif address.count(":") == 1:  # host:port (a bare IPv6 has several colons)
        host, _, port = address.partition(":")
    else:
        return address, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidRequest(f"Invalid server address {address!r}")
    return host, int(port)


def check_address(address: str) -> str:
    """Refuse an address that is neither an IP address nor a DNS name.

    X-Road's ``assertAddress`` accepts ``InetAddresses.isInetAddress`` or a
    valid (IDN) domain name, and answers ``InvalidRequest`` otherwise.
    JP-LINK also accepts a port after it (``host:5501``, ``[::1]:5501``):
    servers that share one host (test and demo networks) cannot all listen
    on 5500, and the global configuration carries the address as given.

    Raises:
        InvalidRequest: not an IP address or host name, or a bad port.
    """
    host, _port = _split_port(address)
    _check_host(host, address)
    return address


def _value(wire: str, element: etree._Element) -> object:
    if wire == "server":
        return identifier_from_xml(element, SecurityServerId)
    if wire == "client":
        return identifier_from_xml(element, ClientId)
    text = _text(element, wire)
    if wire == "authCert":
        try:
            return base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedMessage("authCert is not base64", code="InvalidXml") from exc
    if wire == "dryRun":
        if text.strip() not in ("true", "false", "1", "0"):
            raise MalformedMessage("dryRun is not a boolean", code="InvalidXml")
        return text.strip() in ("true", "1")
    if wire == "address":
        return check_address(text.strip())
    return text


def parse_management_body(
    wrapper: etree._Element, *, response: bool = False
) -> ManagementRequest:
    """Read a management request (or response) body wrapper.

    Args:
        wrapper: the element inside ``SOAP-ENV:Body``.
        response: expect ``<type>Response`` with a ``requestId``.

    Returns:
        The request.

    Raises:
        MalformedMessage: an unknown operation, or fields unknown, repeated,
            out of order, missing or malformed (``InvalidXml`` or an
            identifier code).
        InvalidRequest: an address that is not an IP address or host name.
    """
    qname = etree.QName(wrapper)
    local = qname.localname
    if response:
        if not local.endswith("Response"):
            raise MalformedMessage(f"{local} is not a response", code="InvalidBody")
        local = local[: -len("Response")]
    try:
        kind = ManagementRequestType(local)
    except ValueError:
        raise MalformedMessage(
            f"Unknown management request {qname.localname}", code="InvalidBody"
        ) from None
    if qname.namespace != NS_XROAD:
        raise MalformedMessage(f"{local} is not in {NS_XROAD}", code="InvalidBody")
    order = [wire for wire, _required in kind.fields] + ["requestId"]
    values: dict[str, object] = {}
    position = -1
    for child in wrapper:
        if not isinstance(child.tag, str):
            continue
        cq = etree.QName(child)
        if cq.namespace != NS_XROAD or cq.localname not in order:
            raise MalformedMessage(
                f"Unexpected {cq.localname} in {local}", code="InvalidXml"
            )
        index = order.index(cq.localname)
        if index <= position:
            raise MalformedMessage(
                f"{cq.localname} repeated or out of order in {local}", code="InvalidXml"
            )
        position = index
        if cq.localname == "requestId":
            text = _text(child, "requestId").strip()
            if not re.fullmatch(r"[0-9]{1,18}", text):
                raise MalformedMessage("requestId is not an integer", code="InvalidXml")
            values["requestId"] = int(text)
        else:
            values[cq.localname] = _value(cq.localname, child)
    for wire, required in kind.fields:
        if required and wire not in values:
            raise MalformedMessage(f"{local} lacks {wire}", code="InvalidXml")
    if response and "requestId" not in values:
        raise MalformedMessage(f"{local}Response lacks requestId", code="InvalidXml")
    kwargs = {_ATTR[w]: v for w, v in values.items() if w != "requestId"}
    return ManagementRequest(
        kind,
        request_id=values.get("requestId"),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )
