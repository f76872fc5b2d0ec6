"""Certificate builders: CA, OCSP responder, TSA and end-entity certificates.

The extensions each kind gets are listed in :mod:`jplink.security.certs`,
which re-exports every public name here. ``now`` is a parameter; serial
numbers are random (:func:`random_serial_number`); every certificate is
signed with the issuer key's hash from :func:`~jplink.security.keys.signature_hash`.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from ._certs_profile import CertProfile, VerifiedCsr
from .keys import PrivateKey, PublicKey, signature_hash

__all__ = [
    "Issuer",
    "build_ca_certificate",
    "build_end_entity_certificate",
    "build_ocsp_signing_certificate",
    "build_tsa_certificate",
    "random_serial_number",
]


@dataclass(frozen=True, slots=True)
class Issuer:
    """A CA certificate with its private key, used to sign new certificates."""

    cert: x509.Certificate
    key: PrivateKey


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
