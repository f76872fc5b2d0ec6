"""Management request proofs, sending side: signature parts and the multipart.

Every signature is a detached PKCS#1 signature over the **raw bytes of the
SOAP part**, with the algorithm named in the part's ``signature-algorithm-id``
header (PR-MSERV §2.1). :func:`build_management_message` puts the parts in
the order each operation needs; :mod:`._management_verify` checks them.
Re-exported by :mod:`jplink.protocol.management`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import MalformedMessage
from ..security.c14n import SignatureMethod, sign_octets
from ._management_body import ManagementRequestType, SignerRole
from .mime import MimePart, build_multipart, make_boundary

__all__ = [
    "BINARY",
    "SIGNATURE_ALGORITHM_HEADER",
    "ManagementSignatureAlgorithm",
    "ManagementSigner",
    "build_management_message",
]

#: MIME header naming the algorithm of a signature part (PR-MSERV §2.1).
SIGNATURE_ALGORITHM_HEADER = "signature-algorithm-id"
#: Content type of every signature, certificate and OCSP part.
BINARY = "application/octet-stream"
SOAP_PART_TYPE = "text/xml; charset=UTF-8"


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
            for the auth key it is sent only as JP-LINK's optional extra part,
            see :func:`build_management_message`).
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
            ("Content-Type", BINARY),
            (SIGNATURE_ALGORITHM_HEADER, signer.algorithm.value),
        ],
        value,
    )


def _bin_part(data: bytes) -> MimePart:
    return MimePart.create([("Content-Type", BINARY)], data)


def build_management_message(
    soap: bytes,
    request_type: ManagementRequestType,
    *,
    member: ManagementSigner | None = None,
    auth: ManagementSigner | None = None,
    extra_auth_ocsp: bool = False,
    boundary: str | None = None,
) -> tuple[str, bytes]:
    """Wrap a management SOAP request with its proof parts.

    Args:
        soap: the SOAP bytes from :func:`build_management_request`.
        request_type: the operation (decides the parts).
        member: the owner's or client owner's signing key, cert and OCSP.
        auth: the auth key and cert (``authCertReg`` only).
        extra_auth_ocsp: append ``auth.ocsp_der`` after the PR-MSERV parts
            (JP-LINK's optional 7th part). Off by default: X-Road 7 security
            servers send exactly the PR-MSERV §2.3 layout, and a JP-LINK
            central server then asks the CA's OCSP responder itself.
        boundary: the MIME boundary (default: random).

    Returns:
        ``(content_type, body)`` for the HTTP POST.

    Raises:
        ValueError: a signer missing or superfluous for ``request_type``, or
            ``extra_auth_ocsp`` without an auth OCSP response.
    """
    if request_type.signer is SignerRole.NONE:
        if member or auth:
            raise ValueError(f"{request_type.value} carries no signatures")
        return SOAP_PART_TYPE, soap
    if member is None or member.ocsp_der is None:
        raise ValueError(f"{request_type.value} needs a member signer with OCSP")
    is_reg = request_type is ManagementRequestType.AUTH_CERT_REG
    if is_reg != (auth is not None):
        raise ValueError("an auth signer is required for, and only for, authCertReg")
    if extra_auth_ocsp and (auth is None or auth.ocsp_der is None):
        raise ValueError("extra_auth_ocsp needs an auth signer with ocsp_der")
    parts = [MimePart.create([("Content-Type", SOAP_PART_TYPE)], soap)]
    if auth is not None:
        # PR-MSERV §2.3: SOAP, auth-key signature, owner signature, auth
        # certificate, owner signing certificate, owner's OCSP response.
        parts += [
            _sig_part(auth, soap),
            _sig_part(member, soap),
            _bin_part(_der(auth.cert)),
            _bin_part(_der(member.cert)),
            _bin_part(member.ocsp_der),
        ]
        if extra_auth_ocsp and auth.ocsp_der is not None:
            parts.append(_bin_part(auth.ocsp_der))
    else:
        parts += [
            _sig_part(member, soap),
            _bin_part(_der(member.cert)),
            _bin_part(member.ocsp_der),
        ]
    boundary = boundary or make_boundary()
    ctype = f'multipart/related; type="{BINARY}"; charset=UTF-8; boundary={boundary}'
    return ctype, build_multipart(parts, boundary)
