"""A throw-away TLS identity for 127.0.0.1, for client tests.

It is the security server's own internal TLS certificate
(:func:`security_server.client_tls.ensure_internal_tls`: self-signed ECDSA
P-256 for this host, ``localhost`` and ``127.0.0.1``), which clients pin.
"""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from security_server.client_tls import ensure_internal_tls

__all__ = ["ClientIdentity", "LoopbackTls", "client_identity", "loopback_tls"]


@dataclass(frozen=True)
class LoopbackTls:
    """A server context, a client context trusting it, and the certificate."""

    server: ssl.SSLContext
    client: ssl.SSLContext
    cert: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def loopback_tls(directory: Path) -> LoopbackTls:
    """Make the identity; its key and certificate files go to ``directory``."""
    cert_file, key_file = ensure_internal_tls(directory, now=dt.datetime.now(dt.UTC))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return LoopbackTls(server, client, cert)


@dataclass(frozen=True)
class ClientIdentity:
    """A self-signed TLS client certificate and its PEM files."""

    cert: x509.Certificate
    cert_file: Path
    key_file: Path

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def client_identity(
    directory: Path, name: str, *, client_auth_usage: bool = False
) -> ClientIdentity:
    """A self-signed ECDSA P-256 certificate ``CN=name``, valid for 30 days.

    Args:
        directory: where ``<name>.crt`` and ``<name>.key`` (mode 0600) go.
        name: the common name and file stem.
        client_auth_usage: add the clientAuth extended key usage.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
    )
    if client_auth_usage:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        ).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    cert = builder.sign(key, hashes.SHA256())
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return ClientIdentity(cert, cert_file, key_file)
