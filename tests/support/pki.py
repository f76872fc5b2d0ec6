"""A test PKI built in memory: root, optional intermediate, OCSP, TSA, auth/sign certs.

Built with the same :mod:`jplink.security.certs` functions the CA uses, so the
certificates have exactly the production profile. Keys are generated per test
run; nothing is written unless a test calls :meth:`TestPki.write`.

Example::

    pki = build_test_pki(now, intermediate=True)
    cert, key = pki.issue(CertProfile.SIGN, MemberSubject("JP", "COM", "1234", "Acme"))
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from jplink.security.certs import (
    CertProfile,
    Issuer,
    MemberSubject,
    build_ca_certificate,
    build_end_entity_certificate,
    build_ocsp_signing_certificate,
    build_subject_name,
    build_tsa_certificate,
    random_serial_number,
    verify_csr,
)
from jplink.security.keys import (
    KeyType,
    PrivateKey,
    generate_private_key,
    serialize_private_key_pem,
)

__all__ = ["TestPki", "build_test_pki", "make_csr", "pem"]

OCSP_URL = "http://127.0.0.1:8888/ocsp"


def pem(cert: x509.Certificate) -> bytes:
    """PEM bytes of a certificate."""
    return cert.public_bytes(Encoding.PEM)


def make_csr(key: PrivateKey, subject: x509.Name) -> bytes:
    """A PEM PKCS#10 request for ``key``, signed with SHA-256."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(Encoding.PEM)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JP-LINK Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass(frozen=True)
class TestPki:
    """A complete test PKI; ``issuing`` signs end-entity, OCSP and TSA certs."""

    __test__ = False  # not a pytest test class

    now: dt.datetime
    root: Issuer
    intermediate: Issuer | None
    ocsp: Issuer
    tsa: Issuer
    ocsp_url: str
    key_type: KeyType

    @property
    def issuing(self) -> Issuer:
        """The CA that issues end-entity certificates."""
        return self.intermediate or self.root

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """Issuing CA first, root last."""
        if self.intermediate is None:
            return (self.root.cert,)
        return (self.intermediate.cert, self.root.cert)

    def issue(
        self,
        profile: CertProfile,
        subject: MemberSubject,
        key: PrivateKey | None = None,
        *,
        validity: dt.timedelta = dt.timedelta(days=365),
        not_before: dt.datetime | None = None,
    ) -> tuple[x509.Certificate, PrivateKey]:
        """An ``auth`` or ``sign`` certificate (and its key) for ``subject``."""
        key = key or generate_private_key(self.key_type)
        name = build_subject_name(profile, subject)
        csr = verify_csr(make_csr(key, name))
        cert = build_end_entity_certificate(
            csr,
            name,
            profile,
            self.issuing,
            serial=random_serial_number(),
            ocsp_url=self.ocsp_url,
            now=not_before or self.now,
            validity=validity,
        )
        return cert, key

    def write(self, directory: Path) -> dict[str, Path]:
        """Write PEM certificates and keys (keys mode 0600) for openssl tools."""
        directory.mkdir(parents=True, exist_ok=True)
        out: dict[str, Path] = {}
        items = {"root": self.root, "ocsp": self.ocsp, "tsa": self.tsa}
        if self.intermediate is not None:
            items["intermediate"] = self.intermediate
        for stem, issuer in items.items():
            cert_path = directory / f"{stem}.pem"
            cert_path.write_bytes(pem(issuer.cert))
            key_path = directory / f"{stem}.key"
            key_path.touch(mode=0o600)
            key_path.write_bytes(serialize_private_key_pem(issuer.key))
            out[stem] = cert_path
            out[f"{stem}.key"] = key_path
        return out


def build_test_pki(
    now: dt.datetime,
    *,
    intermediate: bool = False,
    key_type: KeyType = KeyType.RSA,
    ocsp_url: str = OCSP_URL,
    validity: dt.timedelta = dt.timedelta(days=3650),
) -> TestPki:
    """Build a root (and intermediate) CA with OCSP and TSA certificates."""
    root_key = generate_private_key(key_type)
    root = Issuer(
        build_ca_certificate(
            _name("Test Root CA"), root_key, path_length=1, now=now, validity=validity
        ),
        root_key,
    )
    inter: Issuer | None = None
    if intermediate:
        int_key = generate_private_key(key_type)
        inter = Issuer(
            build_ca_certificate(
                _name("Test Issuing CA"),
                int_key,
                issuer=root,
                path_length=0,
                now=now,
                validity=validity,
            ),
            int_key,
        )
    issuing = inter or root
    ocsp_key = generate_private_key(key_type)
    ocsp_cert = build_ocsp_signing_certificate(
        _name("Test OCSP"), ocsp_key.public_key(), issuing, now=now, validity=validity
    )
    tsa_key = generate_private_key(key_type)
    tsa_cert = build_tsa_certificate(
        _name("Test TSA"),
        tsa_key.public_key(),
        issuing,
        ocsp_url=ocsp_url,
        now=now,
        validity=validity,
    )
    return TestPki(
        now=now,
        root=root,
        intermediate=inter,
        ocsp=Issuer(ocsp_cert, ocsp_key),
        tsa=Issuer(tsa_cert, tsa_key),
        ocsp_url=ocsp_url,
        key_type=key_type,
    )
