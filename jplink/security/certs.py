"""Certificates: the JP-LINK certificate profile, CSR checks and certificate building.

Sans-IO: CSR bytes and keys in, ``x509.Certificate`` objects out; ``now`` is a
parameter. The CA (``ca_tsa``) issues with these functions and verifiers map a
certificate back to its member with :func:`member_subject_from_certificate`.

The JP-LINK certificate profile (``JpLinkCertificateProfileInfoProvider``)
==========================================================================

X-Road maps a certificate to a member with a per-CA ``certificateProfileInfo``
(PROTOCOLS.md §6.4): the FiVRK profile puts the member code in ``CN`` and
``INSTANCE/serverCode/memberClass`` in ``serialNumber``; the EJBCA profile uses
``C``/``O``/``CN``. JP-LINK's profile is modelled on FiVRK but puts the *whole*
member identifier in ``serialNumber`` so the mapping needs no other attribute,
and identifier codes can never contain ``/`` (PROTOCOLS.md §2 allows only
``A-Z a-z 0-9 '()+,-.=?``), so the split is unambiguous:

- ``C``: ``JP`` (both profiles).
- ``O``: the member name (both profiles).
- ``CN``: ``sign``: the member code; ``auth``: the security server code.
- ``serialNumber``: ``sign``: ``<instance>/<memberClass>/<memberCode>``;
  ``auth``: ``<instance>/<memberClass>/<memberCode>/<serverCode>``.

The issued subject is always built from the member identifier the central
server approved; a CSR's own subject must *fit* it: only these four attributes,
each single-valued, ``CN`` present, and every value present equal to the one
the profile derives.

Extensions of issued certificates: basicConstraints CA:FALSE (critical);
keyUsage (critical): ``sign`` nonRepudiation, ``auth`` digitalSignature plus
keyEncipherment for RSA keys (an EC key cannot encipher, so EC auth keys get
digitalSignature only); extendedKeyUsage ``auth``: clientAuth, serverAuth;
authorityInfoAccess with the OCSP URL; subject and authority key identifiers.
Every signature is SHA-256 (RSA PKCS#1 v1.5 or ECDSA).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
)

from ..errors import CertificateValidationError, InvalidRequest
from .keys import (
    KeyStrength,
    PrivateKey,
    PublicKey,
    signature_hash,
    verify_key_strength,
)

__all__ = [
    "COUNTRY",
    "CertProfile",
    "Issuer",
    "MemberSubject",
    "VerifiedCsr",
    "build_ca_certificate",
    "build_end_entity_certificate",
    "build_ocsp_signing_certificate",
    "build_subject_name",
    "build_tsa_certificate",
    "member_subject_from_certificate",
    "random_serial_number",
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
class Issuer:
    """A CA certificate with its private key, used to sign new certificates."""

    cert: x509.Certificate
    key: PrivateKey


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


def random_serial_number() -> int:
    """A positive serial with 159 random bits (RFC 5280 §4.1.2.2: at most 20 octets)."""
    while True:
        serial = secrets.randbits(159)
        if serial >= 1 << 64:  # also guarantees > 0 and at least 64 bits of entropy
            return serial


def _base_builder(
    subject: x509.Name,
    public_key: PublicKey,
    issuer: Issuer | None,
    *,
    now: dt.datetime,
    validity: dt.timedelta,
    serial: int | None,
) -> x509.CertificateBuilder:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    not_before = now.astimezone(dt.UTC).replace(microsecond=0)
    not_after = not_before + validity
    if issuer is not None:
        # A certificate never outlives the CA that issued it.
        not_after = min(not_after, issuer.cert.not_valid_after_utc)
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    if issuer is None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    else:
        # RFC 5280 §4.2.1.1: the keyIdentifier is the issuer's SKI value.
        try:
            issuer_ski = issuer.cert.extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier
            ).value
        except x509.ExtensionNotFound:
            issuer_ski = x509.SubjectKeyIdentifier.from_public_key(
                issuer.key.public_key()
            )
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(public_key)
        .serial_number(serial if serial is not None else random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(ski, critical=False)
        .add_extension(aki, critical=False)
    )


def _usage(**bits: bool) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
    )
    return x509.KeyUsage(
        **{n: bits.get(n, False) for n in names},
        encipher_only=False,
        decipher_only=False,
    )


def _ocsp_aia(url: str) -> x509.AuthorityInformationAccess:
    return x509.AuthorityInformationAccess(
        [
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP,
                x509.UniformResourceIdentifier(url),
            )
        ]
    )


def _sign(builder: x509.CertificateBuilder, signer: PrivateKey) -> x509.Certificate:
    return builder.sign(signer, signature_hash(signer))


def build_ca_certificate(
    subject: x509.Name,
    key: PrivateKey,
    *,
    issuer: Issuer | None = None,
    path_length: int | None = None,
    now: dt.datetime,
    validity: dt.timedelta,
) -> x509.Certificate:
    """A CA certificate: self-signed root (``issuer=None``) or intermediate.

    Args:
        subject: the CA's DN.
        key: the CA's private key (its public half goes into the certificate).
        issuer: the parent CA, or None for a self-signed root.
        path_length: basicConstraints pathLenConstraint (None = unlimited).
        now: start of validity.
        validity: lifetime (capped at the issuer's notAfter).
    """
    builder = _base_builder(
        subject, key.public_key(), issuer, now=now, validity=validity, serial=None
    )
    builder = builder.add_extension(
        x509.BasicConstraints(ca=True, path_length=path_length), critical=True
    ).add_extension(
        _usage(digital_signature=True, key_cert_sign=True, crl_sign=True), critical=True
    )
    return _sign(builder, issuer.key if issuer else key)


def build_ocsp_signing_certificate(
    subject: x509.Name,
    public_key: PublicKey,
    issuer: Issuer,
    *,
    now: dt.datetime,
    validity: dt.timedelta,
) -> x509.Certificate:
    """A delegated OCSP responder certificate.

    RFC 6960 §4.2.2.2: a delegated responder's certificate "MUST ... include a
    value of id-kp-OCSPSigning in an extended key usage extension" and be
    issued directly by the CA. It carries id-pkix-ocsp-nocheck (§4.2.2.2.1) so
    clients do not ask the responder about its own certificate.
    """
    builder = (
        _base_builder(
            subject, public_key, issuer, now=now, validity=validity, serial=None
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(digital_signature=True), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False
        )
        .add_extension(x509.OCSPNoCheck(), critical=False)
    )
    return _sign(builder, issuer.key)


def build_tsa_certificate(
    subject: x509.Name,
    public_key: PublicKey,
    issuer: Issuer,
    *,
    ocsp_url: str,
    now: dt.datetime,
    validity: dt.timedelta,
) -> x509.Certificate:
    """A time-stamping authority certificate.

    RFC 3161 §2.3: the TSA's certificate "MUST contain only one instance of the
    extended key usage field extension ... with KeyPurposeID having value
    id-kp-timeStamping. This extension MUST be critical."
    """
    builder = (
        _base_builder(
            subject, public_key, issuer, now=now, validity=validity, serial=None
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            _usage(digital_signature=True, content_commitment=True), critical=True
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
        .add_extension(_ocsp_aia(ocsp_url), critical=False)
    )
    return _sign(builder, issuer.key)


def build_end_entity_certificate(
    csr: VerifiedCsr,
    subject: x509.Name,
    profile: CertProfile,
    issuer: Issuer,
    *,
    serial: int,
    ocsp_url: str,
    now: dt.datetime,
    validity: dt.timedelta,
) -> x509.Certificate:
    """Issue an ``auth`` or ``sign`` certificate for a verified CSR.

    Args:
        csr: the verified CSR (its key is certified; its extensions are ignored).
        subject: the DN from :func:`verify_csr_subject`.
        profile: which profile's extensions to use.
        issuer: the issuing CA.
        serial: from :func:`random_serial_number`, unique at this CA.
        ocsp_url: written into authorityInfoAccess (id-ad-ocsp).
        now: start of validity.
        validity: lifetime (capped at the CA's notAfter).
    """
    if profile is CertProfile.SIGN:
        # PROTOCOLS.md §6.4: "The signing cert ... must have the nonRepudiation
        # key-usage bit".
        usage = _usage(content_commitment=True)
        eku: x509.ExtendedKeyUsage | None = None
    else:
        is_rsa = isinstance(csr.public_key, rsa.RSAPublicKey)
        usage = _usage(digital_signature=True, key_encipherment=is_rsa)
        eku = x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
        )
    builder = (
        _base_builder(
            subject, csr.public_key, issuer, now=now, validity=validity, serial=serial
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(_ocsp_aia(ocsp_url), critical=False)
    )
    if eku is not None:
        builder = builder.add_extension(eku, critical=False)
    return _sign(builder, issuer.key)
