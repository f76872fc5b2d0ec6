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
from cryptography.hazmat.primitives import serialization

from security_server.client_tls import ensure_internal_tls

__all__ = ["LoopbackTls", "loopback_tls"]


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
