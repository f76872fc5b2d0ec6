"""The JP-LINK certificate profile: subjects, member mapping and CSR checks.

The profile itself (which attribute holds what) is described in
:mod:`jplink.security.certs`, which re-exports every public name here. This
module maps a :class:`MemberSubject` to a subject DN and back, and checks a
CSR's signature, key and subject against the profile before anything is
issued (:mod:`._certs_build`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ..errors import CertificateValidationError, InvalidRequest
from .keys import KeyStrength, PublicKey, verify_key_strength

__all__ = [
    "COUNTRY",
    "CertProfile",
    "MemberSubject",
    "VerifiedCsr",
    "build_subject_name",
    "member_subject_from_certificate",
    "verify_csr",
    "verify_csr_subject",
]

#: The country every JP-LINK certificate subject carries.
COUNTRY = "JP"

# PROTOCOLS.md §2: codes allow "A–Z a–z 0–9 and '()+,-.=?" only.
_CODE_RE = re.compile(r"[A-Za-z0-9'()+,\-.=?]{1,64}")
# RFC 5280 upper bounds: ub-organization-name, ub-common-name, ub-serial-number: 64.
_MAX_ATTR = 64
_PROFILE_ATTRS = frozenset(
    {
        NameOID.COUNTRY_NAME,
        NameOID.ORGANIZATION_NAME,
        NameOID.COMMON_NAME,
        NameOID.SERIAL_NUMBER,
    }
)


class CertProfile(enum.Enum):
    """End-entity certificate profiles; the value is the API/CLI word."""

    AUTH = "auth"
    SIGN = "sign"


@dataclass(frozen=True, slots=True)
class MemberSubject:
    """The member identifier a certificate is issued for.

    Attributes:
        instance: X-Road instance (``JP``, ``JP-TEST``).
        member_class: member class (``COM``, ``GOV``).
        member_code: member code.
        member_name: the member's registered name (``O``).
        server_code: the security server code; required for ``auth``.

    Raises:
        InvalidRequest: a code with characters PROTOCOLS.md §2 forbids, or a
            name that is empty, too long or contains control characters.
    """

    instance: str
    member_class: str
    member_code: str
    member_name: str
    server_code: str | None = None

    def __post_init__(self) -> None:
        for label, value in (
            ("instance", self.instance),
            ("member class", self.member_class),
            ("member code", self.member_code),
            ("server code", self.server_code),
        ):
            if value is None:
                continue
            if not isinstance(value, str) or not _CODE_RE.fullmatch(value):
                raise InvalidRequest(
                    f"Invalid {label} {value!r}: use 1-64 of A-Z a-z 0-9 '()+,-.=?",
                    code="InvalidIdentifier",
                )
        name = self.member_name
        if (
            not isinstance(name, str)
            or not name.strip()
            or len(name) > _MAX_ATTR
            or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)
        ):
            raise InvalidRequest(
                "Member name must be 1-64 printable characters",
                code="InvalidIdentifier",
            )

    @property
    def member_id(self) -> str:
        """The member identifier in text form, ``<instance>/<class>/<code>``."""
        return f"{self.instance}/{self.member_class}/{self.member_code}"


@dataclass(frozen=True, slots=True)
class VerifiedCsr:
    """A CSR whose self-signature verified and whose key passed the policy."""

    csr: x509.CertificateSigningRequest
    public_key: PublicKey
    strength: KeyStrength


def build_subject_name(profile: CertProfile, subject: MemberSubject) -> x509.Name:
    """The subject DN the JP-LINK profile gives ``subject`` (see module docstring).

    Raises:
        InvalidRequest: an ``auth`` subject without a server code.
    """
    serial = subject.member_id
    cn = subject.member_code
    if profile is CertProfile.AUTH:
        if subject.server_code is None:
            raise InvalidRequest(
                "An auth certificate needs the security server code",
                code="InvalidIdentifier",
            )
        serial = f"{serial}/{subject.server_code}"
        cn = subject.server_code
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject.member_name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, serial),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def member_subject_from_certificate(
    cert: x509.Certificate, profile: CertProfile
) -> MemberSubject:
    """Map a certificate to its member with the JP-LINK profile.

    Returns:
        The member (and server code for ``auth``) the certificate names.

    Raises:
        CertificateValidationError: the subject does not follow the profile.
    """
    try:
        attrs = {a.oid: str(a.value) for a in cert.subject}
        parts = attrs[NameOID.SERIAL_NUMBER].split("/")
        expected = 4 if profile is CertProfile.AUTH else 3
        if len(parts) != expected or attrs[NameOID.COUNTRY_NAME] != COUNTRY:
            raise ValueError("serialNumber or C does not follow the profile")
        subject = MemberSubject(
            instance=parts[0],
            member_class=parts[1],
            member_code=parts[2],
            member_name=attrs[NameOID.ORGANIZATION_NAME],
            server_code=parts[3] if profile is CertProfile.AUTH else None,
        )
        if build_subject_name(profile, subject) != cert.subject:
            raise ValueError("subject attributes disagree")
    except (KeyError, ValueError, InvalidRequest) as exc:
        raise CertificateValidationError(
            f"Certificate subject {cert.subject.rfc4514_string()} does not follow "
            f"the JP-LINK {profile.value} profile",
            code="IncorrectCertificate",
        ) from exc
    return subject


def verify_csr(data: bytes, *, min_rsa_bits: int = 2048) -> VerifiedCsr:
    """Parse a PKCS#10 CSR (PEM or DER) and check its signature and key.

    Args:
        data: the CSR as received.
        min_rsa_bits: the smallest RSA modulus accepted.

    Returns:
        The verified CSR.

    Raises:
        InvalidRequest: unparsable data, a self-signature that does not verify
            (the requester must prove possession of the key), or a weak key.
    """
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            csr = x509.load_pem_x509_csr(data)
        else:
            csr = x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise InvalidRequest(
            "The CSR is not a PKCS#10 request", code="InvalidCsr"
        ) from exc
    try:
        valid = csr.is_signature_valid
        public_key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidRequest(
            f"The CSR cannot be checked: {exc}", code="InvalidCsr"
        ) from exc
    if not valid:
        raise InvalidRequest("The CSR signature does not verify", code="InvalidCsr")
    strength = verify_key_strength(public_key, min_rsa_bits=min_rsa_bits)
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        # verify_key_strength already refuses these; narrow the type for mypy.
        raise InvalidRequest("Only RSA and EC keys are accepted", code="WeakKey")
    return VerifiedCsr(csr=csr, public_key=public_key, strength=strength)


def verify_csr_subject(
    csr: x509.CertificateSigningRequest, profile: CertProfile, subject: MemberSubject
) -> x509.Name:
    """Check that a CSR's subject fits the profile for ``subject``.

    Returns:
        The subject DN to issue (built from ``subject``, not copied from the CSR).

    Raises:
        InvalidRequest: unknown or repeated attributes, a missing CN, or any
            value that differs from the one the profile derives.
    """
    expected = build_subject_name(profile, subject)
    wanted = {a.oid: a.value for a in expected}
    seen: set[x509.ObjectIdentifier] = set()
    for rdn in csr.subject.rdns:
        if len(rdn) != 1:
            raise InvalidRequest(
                "CSR subject has a multi-valued RDN", code="InvalidSubject"
            )
        (attr,) = tuple(rdn)
        if attr.oid not in _PROFILE_ATTRS or attr.oid in seen:
            raise InvalidRequest(
                f"CSR subject attribute {attr.oid.dotted_string} is not allowed "
                f"(or repeated) in the {profile.value} profile",
                code="InvalidSubject",
            )
        seen.add(attr.oid)
        if attr.value != wanted[attr.oid]:
            raise InvalidRequest(
                f"CSR subject {attr.rfc4514_string()} does not match the "
                f"{profile.value} profile (expected {expected.rfc4514_string()})",
                code="InvalidSubject",
            )
    if NameOID.COMMON_NAME not in seen:
        raise InvalidRequest("CSR subject has no CN", code="InvalidSubject")
    return expected
