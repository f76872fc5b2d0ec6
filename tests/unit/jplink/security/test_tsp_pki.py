"""A throw-away PKI for the time-stamp tests (root CA + TSA certificates).

Imported by the other ``test_tsp*`` modules; its own tests check that the
certificates it makes look the way the TSP tests assume.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import FIXED_NOW

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TSP Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def new_key(kind: str = "rsa") -> Key:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class Pki:
    root: x509.Certificate
    root_key: Key
    tsa: x509.Certificate
    tsa_key: Key

    def issue_tsa(
        self,
        *,
        key: Key | None = None,
        critical: bool = True,
        usages: tuple[x509.ObjectIdentifier, ...] | None = (
            ExtendedKeyUsageOID.TIME_STAMPING,
        ),
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        cn: str = "TSA",
    ) -> x509.Certificate:
        """A TSA certificate from this root with the given EKU and validity."""
        return issue(
            self.root,
            self.root_key,
            (key or self.tsa_key).public_key(),
            name(cn),
            critical=critical,
            usages=usages,
            not_before=not_before,
            not_after=not_after,
        )


def issue(
    issuer: x509.Certificate | None,
    issuer_key: Key,
    public_key: object,
    subject: x509.Name,
    *,
    ca: bool = False,
    critical: bool = True,
    usages: tuple[x509.ObjectIdentifier, ...] | None = None,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> x509.Certificate:
    start = not_before or FIXED_NOW - dt.timedelta(days=30)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or start + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usages is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(usages)), critical=critical
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(kind: str = "rsa", *, start: dt.datetime | None = None) -> Pki:
    """Root + TSA; valid from ``start`` (default 30 days before FIXED_NOW)."""
    root_key = new_key(kind)
    root = issue(
        None,
        root_key,
        root_key.public_key(),
        name("Root CA"),
        ca=True,
        not_before=start,
    )
    tsa_key = new_key(kind)
    tsa = issue(
        root,
        root_key,
        tsa_key.public_key(),
        name("TSA"),
        usages=(ExtendedKeyUsageOID.TIME_STAMPING,),
        not_before=start,
    )
    return Pki(root, root_key, tsa, tsa_key)


def test_tsa_certificate_has_critical_timestamping_eku() -> None:
    pki = make_pki()
    eku = pki.tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    pki.tsa.verify_directly_issued_by(pki.root)
