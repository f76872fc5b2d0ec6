"""The client proxy's HTTPS site (port 8443): internal TLS key and IS certificates.

X-Road generates a self-signed "internal" TLS certificate at installation and
serves the client proxy's HTTPS port with it; information systems pin that
certificate. :func:`ensure_internal_tls` does the same in the instance home
on first serve (``internal-tls.crt`` / ``internal-tls.key``, mode 0600). To
replace it, stop the server, put your own PEM certificate (chain) and
unencrypted PEM key at those paths, and start it again.

Information systems authenticate with their own TLS certificates, registered
per client (``jplink ss clients is-cert add``); they are usually
self-signed, so they are not checked against any CA: the handshake accepts
exactly the registered certificates (each one is a trust anchor of its own,
OpenSSL's partial-chain mode) and :mod:`.exchange_is_auth` then checks that
the certificate belongs to the request's client. A certificate that is
registered for no client is refused in the handshake (a TLS alert). Python's
``ssl`` has no per-handshake verify callback, so :class:`ClientProxyTls`
swaps the context of each new handshake to the newest one built from the
database (``sni_callback``, which OpenSSL calls for every ClientHello).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from jplink.errors import ConfigurationError, InvalidRequest, StorageError
from jplink.storage import Database
from jplink.tasks import cancel_and_wait

from .models import ClientIsCertificate

_log = logging.getLogger(__name__)

__all__ = [
    "INTERNAL_TLS_CERT",
    "INTERNAL_TLS_KEY",
    "ClientProxyTls",
    "IsCertificateInfo",
    "ensure_internal_tls",
    "info_of",
    "load_is_certificate",
    "open_client_tls",
]

#: File names in the instance home.
INTERNAL_TLS_CERT = "internal-tls.crt"
INTERNAL_TLS_KEY = "internal-tls.key"
#: X-Road's internal certificate is valid for 20 years (7300 days).
_VALIDITY = dt.timedelta(days=7300)


@dataclass(frozen=True, slots=True)
class IsCertificateInfo:
    """A registered information-system TLS certificate."""

    sha256: str
    subject: str
    not_after: dt.datetime
    added_at: dt.datetime


def load_is_certificate(data: bytes) -> tuple[x509.Certificate, bytes]:
    """Parse a PEM or DER certificate; returns it and its DER.

    Raises:
        InvalidRequest: code ``InvalidCertificate``.
    """
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            cert = x509.load_pem_x509_certificate(data)
        else:
            cert = x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise InvalidRequest(
            "Not a PEM or DER X.509 certificate", code="InvalidCertificate"
        ) from exc
    return cert, cert.public_bytes(serialization.Encoding.DER)


def info_of(cert: x509.Certificate, der: bytes, now: dt.datetime) -> IsCertificateInfo:
    """The operator's view of an IS certificate registered at ``now``."""
    return IsCertificateInfo(
        hashlib.sha256(der).hexdigest(),
        cert.subject.rfc4514_string(),
        cert.not_valid_after_utc,
        now,
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def ensure_internal_tls(home: Path, *, now: dt.datetime) -> tuple[Path, Path]:
    """The internal TLS certificate and key; generated if both are absent.

    A new pair is an ECDSA P-256 key and a self-signed certificate for this
    host name, ``localhost`` and ``127.0.0.1``, valid for 20 years.

    Args:
        home: the instance home.
        now: the start of the validity of a new certificate.

    Returns:
        ``(certificate path, key path)``.

    Raises:
        ConfigurationError: only one of the two files exists, or they cannot
            be written.
    """
    cert_path, key_path = home / INTERNAL_TLS_CERT, home / INTERNAL_TLS_KEY
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    if cert_path.exists() or key_path.exists():
        raise ConfigurationError(
            f"Only one of {cert_path} and {key_path} exists; restore or remove it"
        )
    host = socket.gethostname() or "localhost"
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    names = {host, "localhost"}
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    *(x509.DNSName(n) for n in sorted(names)),
                    x509.IPAddress(IPv4Address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        _write_private(key_path, key_pem)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot write the internal TLS key pair: {exc}"
        ) from exc
    return cert_path, key_path


def _context(cert_path: Path, key_path: Path, trusted: list[bytes]) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert_path, key_path)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"Cannot load the internal TLS key pair {cert_path}: {exc}"
        ) from exc
    # Ask for a certificate, accept its absence (HTTP / HTTPS_NO_AUTH
    # clients); a certificate that is sent must be one of the registered.
    ctx.verify_mode = ssl.CERT_OPTIONAL
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    if trusted:
        ctx.load_verify_locations(cadata=b"".join(trusted))
    return ctx


class ClientProxyTls:
    """The SSLContext of the HTTPS site, following the registered IS certificates.

    Use :attr:`context` for the site; :meth:`refresh` re-reads the
    certificates (done every ``refresh_seconds`` by :meth:`run`).
    """

    def __init__(self, db: Database, cert_path: Path, key_path: Path) -> None:
        self._db = db
        self._paths = (cert_path, key_path)
        self._current = _context(cert_path, key_path, [])
        self.context = _context(cert_path, key_path, [])
        self.context.sni_callback = self._select
        self._task: asyncio.Task[None] | None = None

    def _select(
        self, ssl_object: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext
    ) -> None:
        ssl_object.context = self._current

    async def refresh(self) -> None:
        """Rebuild the handshake's trust store from the database.

        Raises:
            StorageError: the database failed (the previous store stays).
        """
        async with self._db.transaction() as session:
            ders = list(
                (await session.scalars(select(ClientIsCertificate.cert_der))).all()
            )
        self._current = _context(*self._paths, sorted(set(ders)))

    async def run(self, refresh_seconds: float) -> None:
        """Refresh every ``refresh_seconds`` until cancelled."""
        while True:
            await asyncio.sleep(refresh_seconds)
            try:
                await self.refresh()
            except StorageError as exc:
                # The previous store stays; the per-request check against the
                # database still refuses a certificate removed meanwhile.
                _log.warning("IS certificates not re-read: %s", exc.message)

    def start(self, refresh_seconds: float) -> None:
        """Run :meth:`run` as a background task (stopped by :meth:`close`)."""
        self._task = asyncio.create_task(self.run(max(0.5, refresh_seconds)))

    async def close(self) -> None:
        """Stop the background refresh."""
        await cancel_and_wait(self._task)
        self._task = None


async def open_client_tls(
    db: Database, home: Path, *, now: dt.datetime, refresh_seconds: float = 5.0
) -> ClientProxyTls:
    """The HTTPS site's TLS, ready to serve; call ``close()`` on shutdown.

    Args:
        db: the server's database (registered IS certificates).
        home: the instance home (the internal TLS key pair).
        now: the current time (a new internal certificate starts then).
        refresh_seconds: how often newly registered certificates are taken up.

    Returns:
        The running :class:`ClientProxyTls`; serve with its ``context``.

    Raises:
        ConfigurationError: the internal key pair is unusable.
        StorageError: the database failed.
    """
    cert_path, key_path = ensure_internal_tls(home, now=now)
    tls = ClientProxyTls(db, cert_path, key_path)
    await tls.refresh()
    tls.start(refresh_seconds)
    return tls
