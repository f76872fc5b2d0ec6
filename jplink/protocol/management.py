"""X-Road management requests (PR-MSERV): bodies, signed multiparts, verification.

Sans-IO. A security server tells the central server about changes with one
SOAP request per operation (``authCertReg``, ``clientReg`` ...), whose body
follows ``request.xsd`` (namespace ``http://x-road.eu/xsd/xroad.xsd``) and
whose header names the management service (PROTOCOLS.md §10)::

    client  = the security server's owner member
    service = managementRequestServiceProviderId + serviceCode = operation

Most operations travel as ``multipart/related`` with proof parts after the
SOAP part; every signature is a detached PKCS#1 signature over the **raw bytes
of the SOAP part** with the algorithm named in ``signature-algorithm-id``:

- ``authCertReg`` (PR-MSERV §2.3): auth-key signature, owner signature, auth
  certificate, owner signing certificate, OCSP response of the owner
  certificate; JP-LINK appends the auth certificate's OCSP response as a 6th
  proof part (our central server requires a fresh GOOD status for both).
- ``clientReg``, ``clientDisable``, ``clientEnable``, ``clientRename``,
  ``ownerChange``, ``addressChange``, ``maintenanceMode*``: signature, signing
  certificate, OCSP response.
- ``clientDeletion``, ``authCertDeletion``: plain ``text/xml``, no proof.

:func:`verify_management_request` is the trust decision: it returns a frozen
:class:`VerifiedManagementRequest` or raises.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from ..asic.trust import build_certificate_path
from ..errors import (
    CertificateValidationError,
    InvalidRequest,
    InvalidSignature,
    MalformedMessage,
)
from ..identifiers import (
    ClientId,
    SecurityServerId,
    ServiceId,
    identifier_from_xml,
    identifier_to_xml,
)
from ..ns import NS_XROAD
from ..security.c14n import SignatureMethod, sign_octets, verify_octets
from ..security.certs import CertProfile, member_subject_from_certificate
from ..security.ocsp import OcspVerified, verify_ocsp_response
from .headers import XRoadHeader
from .mime import MimePart, build_multipart, make_boundary
from .soap import MessageRole, SoapMessage, build_request, build_response_from

__all__ = [
    "SIGNATURE_ALGORITHM_HEADER",
    "ManagementRequest",
    "ManagementRequestType",
    "ManagementSignatureAlgorithm",
    "ManagementSigner",
    "ManagementTrust",
    "SignerRole",
    "VerifiedManagementRequest",
    "build_management_body",
    "build_management_message",
    "build_management_request",
    "build_management_response",
    "check_address",
    "parse_management_body",
    "parse_management_request",
    "parse_management_response",
    "verify_management_request",
]

#: MIME header naming the algorithm of a signature part (PR-MSERV §2.1).
SIGNATURE_ALGORITHM_HEADER = "signature-algorithm-id"
_BINARY = "application/octet-stream"
_SOAP_PART_TYPE = "text/xml; charset=UTF-8"
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


def _body(
    request: ManagementRequest, local: str, request_id: int | None
) -> etree._Element:
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
    return _body(request, request.type.value, None)


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


def check_address(address: str) -> str:
    """Refuse an address that is neither an IP address nor a DNS name.

    X-Road's ``assertAddress`` accepts ``InetAddresses.isInetAddress`` or a
    valid (IDN) domain name, and answers ``InvalidRequest`` otherwise.

    Raises:
        InvalidRequest: not an IP address or host name.
    """
    try:
        ipaddress.ip_address(address)
        return address
    except ValueError:
        pass
    try:
        ascii_name = address.encode("idna").decode("ascii").rstrip(".")
    except UnicodeError:
        ascii_name = ""
    labels = ascii_name.split(".")
    if (
        not ascii_name
        or len(ascii_name) > 253
        or not all(map(_LABEL.fullmatch, labels))
    ):
        raise InvalidRequest(f"Invalid server address {address!r}")
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


def build_management_request(
    request: ManagementRequest,
    *,
    service_provider: ClientId,
    message_id: str,
    client: ClientId | None = None,
) -> bytes:
    """The ``text/xml`` SOAP request for ``request``.

    Args:
        request: the body.
        service_provider: ``managementRequestServiceProviderId`` (private params).
        message_id: the X-Road message id (a fresh UUID).
        client: the header client; default the server's owner (PR-MSERV:
            X-Road refuses "Sender does not match server owner").

    Returns:
        The SOAP envelope bytes: these exact bytes are what gets signed.
    """
    service = ServiceId(
        service_provider.instance,
        service_provider.member_class,
        service_provider.member_code,
        service_provider.subsystem_code,
        request.type.value,
    )
    header = XRoadHeader(
        client=client or request.server.owner, service=service, id=message_id
    )
    return build_request(header, build_management_body(request))


def parse_management_request(message: SoapMessage) -> ManagementRequest:
    """The management body of a parsed SOAP request.

    Raises:
        MalformedMessage: not a request, or the body is not a management body.
    """
    if message.role is not MessageRole.REQUEST or message.envelope is None:
        raise MalformedMessage("Not a management request", code="InvalidBody")
    body = message.envelope.find(f"{{{_SOAP}}}Body")
    assert body is not None  # parse_soap_message checked the envelope
    return parse_management_body(next(c for c in body if isinstance(c.tag, str)))


def build_management_response(message: SoapMessage, request_id: int | None) -> bytes:
    """The central server's answer: the request's fields echoed plus requestId.

    Args:
        message: the parsed request.
        request_id: the stored request's number (None for a dry run).

    Returns:
        The ``text/xml`` response envelope.

    Raises:
        MalformedMessage: ``message`` does not hold a management body.
    """
    request = parse_management_request(message)
    return build_response_from(
        message, _body(request, request.type.value + "Response", request_id)
    )


def parse_management_response(message: SoapMessage) -> ManagementRequest:
    """The body of a parsed management response, with its ``request_id``.

    Raises:
        MalformedMessage: not a response, or a malformed body.
    """
    if message.role is not MessageRole.RESPONSE or message.envelope is None:
        raise MalformedMessage("Not a management response", code="InvalidBody")
    body = message.envelope.find(f"{{{_SOAP}}}Body")
    assert body is not None
    return parse_management_body(
        next(c for c in body if isinstance(c.tag, str)), response=True
    )


_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


class ManagementSignatureAlgorithm(enum.Enum):
    """``signature-algorithm-id`` values PR-MSERV §2.1 lists (Java names)."""

    SHA256_WITH_RSA = "SHA256withRSA"
    SHA384_WITH_RSA = "SHA384withRSA"
    SHA512_WITH_RSA = "SHA512withRSA"
    SHA256_WITH_RSA_MGF1 = "SHA256withRSAandMGF1"
    SHA384_WITH_RSA_MGF1 = "SHA384withRSAandMGF1"
    SHA512_WITH_RSA_MGF1 = "SHA512withRSAandMGF1"

    @property
    def method(self) -> SignatureMethod:
        """The equivalent signature method (PSS: MGF1 same hash, salt = hash)."""
        bits = self.value[3:6]
        pss = "_PSS" if self.value.endswith("MGF1") else ""
        return SignatureMethod[f"RSA{pss}_SHA{bits}"]

    @classmethod
    def from_header(cls, value: str | None) -> ManagementSignatureAlgorithm:
        """The algorithm named by a signature part.

        Raises:
            MalformedMessage: a missing or unsupported algorithm id.
        """
        try:
            return cls((value or "").strip())
        except ValueError:
            raise MalformedMessage(
                f"Unsupported signature algorithm {value!r}",
                code="InvalidSignatureValue",
            ) from None


@dataclass(frozen=True, slots=True)
class ManagementSigner:
    """A key that signs the SOAP part, with the evidence sent beside it.

    Attributes:
        key: the RSA private key (auth key or member signing key).
        cert: its certificate.
        ocsp_der: an OCSP response for ``cert`` (required for member signers;
            for the auth key it becomes JP-LINK's extra proof part).
        algorithm: the signature algorithm.
    """

    key: rsa.RSAPrivateKey = field(repr=False)
    cert: x509.Certificate
    ocsp_der: bytes | None = field(default=None, repr=False)
    algorithm: ManagementSignatureAlgorithm = (
        ManagementSignatureAlgorithm.SHA512_WITH_RSA
    )


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def _sig_part(signer: ManagementSigner, soap: bytes) -> MimePart:
    value = sign_octets(signer.key, signer.algorithm.method, soap)
    return MimePart.create(
        [
            ("Content-Type", _BINARY),
            (SIGNATURE_ALGORITHM_HEADER, signer.algorithm.value),
        ],
        value,
    )


def _bin_part(data: bytes) -> MimePart:
    return MimePart.create([("Content-Type", _BINARY)], data)


def build_management_message(
    soap: bytes,
    request_type: ManagementRequestType,
    *,
    member: ManagementSigner | None = None,
    auth: ManagementSigner | None = None,
    boundary: str | None = None,
) -> tuple[str, bytes]:
    """Wrap a management SOAP request with its proof parts.

    Args:
        soap: the SOAP bytes from :func:`build_management_request`.
        request_type: the operation (decides the parts).
        member: the owner's or client owner's signing key, cert and OCSP.
        auth: the auth key and cert (``authCertReg`` only); its ``ocsp_der``,
            if given, is appended as JP-LINK's extra part.
        boundary: the MIME boundary (default: random).

    Returns:
        ``(content_type, body)`` for the HTTP POST.

    Raises:
        ValueError: a signer missing or superfluous for ``request_type``.
    """
    if request_type.signer is SignerRole.NONE:
        if member or auth:
            raise ValueError(f"{request_type.value} carries no signatures")
        return _SOAP_PART_TYPE, soap
    if member is None or member.ocsp_der is None:
        raise ValueError(f"{request_type.value} needs a member signer with OCSP")
    is_reg = request_type is ManagementRequestType.AUTH_CERT_REG
    if is_reg != (auth is not None):
        raise ValueError("an auth signer is required for, and only for, authCertReg")
    parts = [MimePart.create([("Content-Type", _SOAP_PART_TYPE)], soap)]
    if auth is not None:
        parts += [
            _sig_part(auth, soap),
            _sig_part(member, soap),
            _bin_part(_der(auth.cert)),
            _bin_part(_der(member.cert)),
            _bin_part(member.ocsp_der),
        ]
        if auth.ocsp_der is not None:
            parts.append(_bin_part(auth.ocsp_der))
    else:
        parts += [
            _sig_part(member, soap),
            _bin_part(_der(member.cert)),
            _bin_part(member.ocsp_der),
        ]
    boundary = boundary or make_boundary()
    ctype = f'multipart/related; type="{_BINARY}"; charset=UTF-8; boundary={boundary}'
    return ctype, build_multipart(parts, boundary)


@dataclass(frozen=True, slots=True)
class ManagementTrust:
    """What the central server trusts when verifying proofs.

    Attributes:
        auth_anchors: top CAs that may issue authentication certificates.
        sign_anchors: top CAs that may issue signing certificates (approved
            CAs marked authentication-only are left out).
        intermediates: intermediate CA certificates, for path building.
        ocsp_responders: configured OCSP responder certificates.
        ocsp_freshness: the largest accepted OCSP age (``ocspFreshnessSeconds``).
        require_auth_cert_ocsp: refuse ``authCertReg`` without a GOOD OCSP
            response for the auth certificate (JP-LINK's extra part). X-Road's
            own central server checks only the auth certificate's chain.
    """

    auth_anchors: tuple[x509.Certificate, ...]
    sign_anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    ocsp_responders: tuple[x509.Certificate, ...] = ()
    ocsp_freshness: dt.timedelta = dt.timedelta(seconds=3600)
    require_auth_cert_ocsp: bool = True


@dataclass(frozen=True, slots=True)
class VerifiedManagementRequest:
    """A management request whose header, body and proofs all checked out.

    Attributes:
        request: the body.
        message: the SOAP message (its raw ``soap`` bytes are what was signed).
        signer: the member whose signing key signed (None for unsigned types).
        sign_cert: that member's signing certificate.
        sign_ocsp: its verified GOOD status.
        auth_cert: the verified auth certificate (``authCertReg``).
        auth_ocsp: its verified GOOD status, if the request carried one.
    """

    request: ManagementRequest
    message: SoapMessage
    signer: ClientId | None = None
    sign_cert: x509.Certificate | None = None
    sign_ocsp: OcspVerified | None = None
    auth_cert: x509.Certificate | None = None
    auth_ocsp: OcspVerified | None = None


def _load_cert(der: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CertificateValidationError(
            f"The {what} is not a DER certificate"
        ) from exc


def _key_usage(cert: x509.Certificate, bit: str, what: str) -> None:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        ok = bool(getattr(usage, bit))
    except x509.ExtensionNotFound:
        ok = False
    if not ok:
        raise CertificateValidationError(
            f"The {what} lacks keyUsage {bit}", code="IncorrectCertificate"
        )


def _status(
    cert: x509.Certificate,
    ocsp_der: bytes,
    anchors: Sequence[x509.Certificate],
    trust: ManagementTrust,
    now: dt.datetime,
) -> OcspVerified:
    path = build_certificate_path(
        cert, anchors=anchors, intermediates=trust.intermediates, at=now
    )
    return verify_ocsp_response(
        ocsp_der,
        cert=cert,
        issuer=path[1],
        now=now,
        max_age=trust.ocsp_freshness,
        trusted_responders=trust.ocsp_responders,
    )


def _check_sig(part: MimePart, cert: x509.Certificate, soap: bytes, what: str) -> None:
    if part.content_type.media_type != _BINARY:
        raise MalformedMessage(
            f"The {what} part is not {_BINARY}", code="InvalidMessage"
        )
    algorithm = ManagementSignatureAlgorithm.from_header(
        part.header(SIGNATURE_ALGORITHM_HEADER)
    )
    try:
        verify_octets(cert.public_key(), algorithm.method, part.body, soap)
    except InvalidSignature as exc:
        raise InvalidSignature(f"The {what} does not verify") from exc


def _proof_parts(
    message: SoapMessage, kind: ManagementRequestType
) -> tuple[bytes, ...]:
    parts = message.attachments
    wanted = {SignerRole.NONE: (0, 0), SignerRole.SERVER_OWNER: (3, 3)}
    low, high = wanted.get(kind.signer, (3, 3))
    if kind is ManagementRequestType.AUTH_CERT_REG:
        low, high = 5, 6
    if not low <= len(parts) <= high:
        raise MalformedMessage(
            f"{kind.value} needs {low} proof part(s) after the SOAP part, "
            f"not {len(parts)}",
            code="MissingSignature" if len(parts) < low else "InvalidMessage",
        )
    for part in parts:
        if part.content_type.media_type != _BINARY:
            raise MalformedMessage("A proof part is not binary", code="InvalidMessage")
    return tuple(p.body for p in parts)


def _member_of(cert: x509.Certificate) -> ClientId:
    subject = member_subject_from_certificate(cert, CertProfile.SIGN)
    return ClientId(subject.instance, subject.member_class, subject.member_code)


def verify_management_request(
    message: SoapMessage,
    *,
    service_provider: ClientId,
    trust: ManagementTrust,
    now: dt.datetime,
) -> VerifiedManagementRequest:
    """Check a management request's header, body and proofs at ``now``.

    Checks, failing closed: the service is ``service_provider``'s operation
    and the header client is the server's owner (X-Road: "Sender does not
    match server owner"); every signature verifies over the raw SOAP bytes;
    the attached auth certificate is the one in the body, chains to an
    approved CA, has keyUsage digitalSignature, names the server (JP-LINK auth
    profile) and (unless the trust says otherwise) has a fresh GOOD OCSP
    status; the signing certificate chains to a signing-capable approved CA,
    has nonRepudiation, a fresh GOOD OCSP status and names the member who must
    sign (PR-MSERV: the server owner, or the client's owner member).

    Args:
        message: the parsed SOAP message with its attachments.
        service_provider: ``managementRequestServiceProviderId``.
        trust: approved CAs, OCSP responders and freshness.
        now: the validation time (aware).

    Returns:
        The verified request.

    Raises:
        MalformedMessage: a malformed body or proof layout.
        InvalidRequest: wrong service, sender or address.
        InvalidSignature: a signature does not verify.
        CertificateValidationError: a certificate is untrusted, of the wrong
            usage or member, or not the one in the body (and its subclasses).
        OcspError: a missing, bad, unknown or stale OCSP status (subclasses).
    """
    request = parse_management_request(message)
    service = message.service
    if (
        service.client != service_provider
        or service.service_code != request.type.value
        or service.service_version is not None
    ):
        raise InvalidRequest(
            "Invalid management service address. Contact the central server operator."
        )
    if message.client != request.server.owner:
        raise InvalidRequest("Sender does not match server owner.")
    if request.type.signer is SignerRole.NONE:
        _proof_parts(message, request.type)
        return VerifiedManagementRequest(request, message)
    parts = _proof_parts(message, request.type)
    soap, attachments = message.soap, message.attachments
    auth_cert: x509.Certificate | None = None
    auth_ocsp: OcspVerified | None = None
    if request.type is ManagementRequestType.AUTH_CERT_REG:
        # PR-MSERV §2.3 part 4: "Authentication certificate that is being
        # registered (authCert field of the SOAP message)".
        if parts[2] != request.auth_cert:
            raise CertificateValidationError(
                "Authentication certificates do not match."
            )
        auth_cert = _load_cert(parts[2], "authentication certificate")
        _key_usage(auth_cert, "digital_signature", "authentication certificate")
        named = member_subject_from_certificate(auth_cert, CertProfile.AUTH)
        if (
            named.instance,
            named.member_class,
            named.member_code,
            named.server_code,
        ) != (
            request.server.instance,
            request.server.member_class,
            request.server.member_code,
            request.server.server_code,
        ):
            raise CertificateValidationError(
                f"The authentication certificate is not for {request.server}",
                code="IncorrectCertificate",
            )
        build_certificate_path(
            auth_cert,
            anchors=trust.auth_anchors,
            intermediates=trust.intermediates,
            at=now,
        )
        if len(parts) == 6:
            auth_ocsp = _status(auth_cert, parts[5], trust.auth_anchors, trust, now)
        elif trust.require_auth_cert_ocsp:
            raise CertificateValidationError(
                "No OCSP response for the authentication certificate",
                code="MissingSignature",
            )
        # PR-MSERV §2.3 part 2: proof of possession of the authentication key.
        _check_sig(attachments[0], auth_cert, soap, "authentication key signature")
        sig_part, cert_der, ocsp_der = attachments[1], parts[3], parts[4]
    else:
        sig_part, cert_der, ocsp_der = attachments[0], parts[1], parts[2]
    sign_cert = _load_cert(cert_der, "signing certificate")
    _key_usage(sign_cert, "content_commitment", "signing certificate")
    sign_ocsp = _status(sign_cert, ocsp_der, trust.sign_anchors, trust, now)
    _check_sig(sig_part, sign_cert, soap, "member signature")
    signer = _member_of(sign_cert)
    if request.type.signer is SignerRole.SERVER_OWNER:
        expected = request.server.owner
    else:
        assert request.client is not None
        expected = request.client.member
    if signer != expected:
        raise CertificateValidationError(
            f"Subject identifier ({signer}) in certificate does not match "
            f"{expected} in request",
            code="IncorrectCertificate",
        )
    return VerifiedManagementRequest(
        request, message, signer, sign_cert, sign_ocsp, auth_cert, auth_ocsp
    )
