"""Mutual TLS between security servers (PR-MESSTRANSP §2.1, PROTOCOLS.md §5.1).

Two parts:

- :func:`server_ssl_context` / :func:`client_ssl_context` build
  :class:`ssl.SSLContext` objects for port 5500: TLS 1.2 or newer, X-Road's
  TLS 1.2 cipher suites (plus AES-GCM ones; TLS 1.3 keeps OpenSSL's AEAD
  suites), a client certificate *required* by the server, and no host-name
  check, because a peer's identity comes from its registered authentication
  certificate, not from DNS. The TLS layer only admits certificates that
  chain to an approved CA.
- :func:`verify_peer_auth_certificate` is the trust decision after the
  handshake, on the peer's certificate: chain to an approved CA at ``now``,
  authentication key usage, registration of its hash in the global
  configuration and a fresh ``good`` OCSP response. It returns a frozen
  :class:`PeerIdentity` or raises ``CertificateValidationError`` with code
  ``SslAuthenticationFailed``; it never returns a flag.

The ``ssl`` module loads a certificate chain and key only from a file, so the
key is written PKCS#8-encrypted with a random one-time password into a fresh
private (0700) directory, as a 0600 file that is deleted right after loading.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import secrets
import ssl
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    PublicFormat,
)
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..errors import CertificateValidationError, ConfigurationError, JPLinkError
from ..globalconf.model import SecurityServer, SharedParameters, auth_cert_hash
from ..identifiers import ClientId, SecurityServerId
from .certpath import build_certificate_path
from .keys import PrivateKey
from .ocsp import OcspVerified, parse_ocsp_response, verify_ocsp_response

__all__ = [
    "SSL_AUTHENTICATION_FAILED",
    "TLS12_CIPHERS",
    "XROAD_TLS12_CIPHERS",
    "PeerIdentity",
    "client_ssl_context",
    "peer_certificate_der",
    "server_ssl_context",
    "verify_peer_auth_certificate",
]

#: The X-Road error code of every failed peer authentication.
SSL_AUTHENTICATION_FAILED = "SslAuthenticationFailed"

#: X-Road's default ``proxy.xroad-tls-ciphers`` for TLS 1.2 in OpenSSL names
#: (``TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384``,
#: ``TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384``). X-Road's third default,
#: ``DHE-RSA-AES256-SHA256``, is left out: X-Road offers the ECDHE suites
#: first and finite-field DHE needs parameters we do not want to manage.
XROAD_TLS12_CIPHERS = ("ECDHE-RSA-AES256-SHA384", "ECDHE-ECDSA-AES256-SHA384")

#: TLS 1.2 suites we offer, best first: ECDHE with AES-GCM, then X-Road's.
TLS12_CIPHERS = (
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    *XROAD_TLS12_CIPHERS,
)


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """A peer security server whose authentication certificate verified.

    Attributes:
        server_id: the registered server the certificate belongs to.
        server: its global-configuration entry (owner, clients, address).
        certificate: the peer's authentication certificate.
        path: the certificate path, leaf first, approved top CA last.
        ocsp: the verified ``good`` OCSP status of the certificate.
        auth_cert_hash: SHA-256 of the certificate's DER (``authCertHash``).
    """

    server_id: SecurityServerId
    server: SecurityServer
    certificate: x509.Certificate
    path: tuple[x509.Certificate, ...]
    ocsp: OcspVerified
    auth_cert_hash: bytes

    @property
    def owner(self) -> ClientId:
        """The member that owns the peer server."""
        return self.server_id.owner


# --------------------------------------------------------------------------
# SSL contexts


def _pem(certs: Sequence[x509.Certificate]) -> str:
    return "".join(c.public_bytes(Encoding.PEM).decode("ascii") for c in certs)


def _load_chain(
    ctx: ssl.SSLContext, cert_chain: Sequence[x509.Certificate], key: PrivateKey
) -> None:
    if not cert_chain:
        raise ValueError("cert_chain needs at least the leaf certificate")
    spki = (Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if cert_chain[0].public_key().public_bytes(*spki) != key.public_key().public_bytes(
        *spki
    ):
        raise ConfigurationError("The TLS key does not match the certificate")
    password = secrets.token_urlsafe(32).encode("ascii")
    key_pem = key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(password)
    )
    with tempfile.TemporaryDirectory(prefix="jplink-tls-") as directory:
        path = os.path.join(directory, "chain.pem")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(_pem(cert_chain).encode("ascii") + key_pem)
        try:
            ctx.load_cert_chain(path, password=password)
        except ssl.SSLError as exc:
            raise ConfigurationError(f"Cannot load the TLS key: {exc}") from exc


def _context(
    protocol: int,
    cert_chain: Sequence[x509.Certificate],
    key: PrivateKey,
    ca_certs: Sequence[x509.Certificate],
) -> ssl.SSLContext:
    if not ca_certs:
        raise ValueError("give the approved CA certificates to verify peers with")
    ctx = ssl.SSLContext(protocol)
    # PROTOCOLS.md §5.1: "The protocol is TLSv1.2 only"; we also allow 1.3.
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(":".join(TLS12_CIPHERS))
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    # "No hostname verification; the trust decision is made at the
    # application level" (PROTOCOLS.md §5.1).
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=_pem(ca_certs))
    _load_chain(ctx, cert_chain, key)
    return ctx


def server_ssl_context(
    cert_chain: Sequence[x509.Certificate],
    key: PrivateKey,
    *,
    client_ca_certs: Sequence[x509.Certificate],
) -> ssl.SSLContext:
    """The TLS context of the server proxy (port 5500).

    A client certificate is required ("the server requires a client
    certificate", PROTOCOLS.md §5.1) and must chain to ``client_ca_certs``;
    after the handshake, call :func:`verify_peer_auth_certificate`.

    Args:
        cert_chain: this server's authentication certificate, then any
            intermediate CA certificates to send.
        key: its private key.
        client_ca_certs: approved CA certificates (top CAs; intermediates
            may be added for path building).

    Returns:
        A server-side context.

    Raises:
        ConfigurationError: the key does not match the certificate.
        ValueError: an empty chain or no CA certificates.
    """
    ctx = _context(ssl.PROTOCOL_TLS_SERVER, cert_chain, key, client_ca_certs)
    ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx


def client_ssl_context(
    cert_chain: Sequence[x509.Certificate],
    key: PrivateKey,
    *,
    server_ca_certs: Sequence[x509.Certificate],
) -> ssl.SSLContext:
    """The TLS context the client proxy uses to reach a peer's port 5500.

    Args:
        cert_chain: this server's authentication certificate (and
            intermediates), presented as the client certificate.
        key: its private key.
        server_ca_certs: approved CA certificates the peer must chain to.

    Returns:
        A client-side context without host-name checking.

    Raises:
        ConfigurationError: the key does not match the certificate.
        ValueError: an empty chain or no CA certificates.
    """
    return _context(ssl.PROTOCOL_TLS_CLIENT, cert_chain, key, server_ca_certs)


def peer_certificate_der(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> bytes:
    """The DER certificate the peer presented in the handshake.

    Args:
        ssl_object: e.g. ``writer.get_extra_info("ssl_object")``.

    Returns:
        The peer's leaf certificate.

    Raises:
        CertificateValidationError: (``SslAuthenticationFailed``) the peer
            presented none.
    """
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        raise CertificateValidationError(
            "The peer presented no TLS certificate", code=SSL_AUTHENTICATION_FAILED
        )
    return der


# --------------------------------------------------------------------------
# Peer verification


def _fail(message: str, reason: str) -> CertificateValidationError:
    return CertificateValidationError(
        f"Peer authentication failed: {message}",
        code=SSL_AUTHENTICATION_FAILED,
        detail={"reason": reason},
    )


def _check_auth_usage(cert: x509.Certificate) -> None:
    # PROTOCOLS.md §5.1: the authentication certificate has key usage
    # digitalSignature (needed to sign an ECDHE key exchange) and, if it has
    # an extended key usage, clientAuth; it is never a CA certificate.
    ext = cert.extensions
    try:
        if ext.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise _fail("the certificate is a CA certificate", "KeyUsage")
    except x509.ExtensionNotFound:
        pass
    try:
        usage = ext.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise _fail("the certificate has no key usage", "KeyUsage") from None
    if not usage.digital_signature:
        raise _fail("the certificate lacks digitalSignature key usage", "KeyUsage")
    try:
        eku = ext.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        raise _fail("the certificate is not for TLS client authentication", "KeyUsage")


def _registered_server(
    conf: SharedParameters,
    cert: x509.Certificate,
    expected_server: SecurityServerId | None,
    expected_client: ClientId | None,
) -> SecurityServer:
    server = conf.server_for_auth_cert(cert)
    if expected_server is not None and server.id != expected_server:
        raise _fail(
            f"the certificate is registered to {server.id}, not {expected_server}",
            "WrongServer",
        )
    # PROTOCOLS.md §5.1 step 4: the server "has the service provider (its
    # member or subsystem) as owner or client".
    if expected_client is not None and not (
        expected_client.member == server.id.owner
        or expected_client in server.clients
        or expected_client.member in server.clients
    ):
        raise _fail(f"{server.id} does not host {expected_client}", "WrongMember")
    return server


def _responders(
    conf: SharedParameters, issuer: x509.Certificate
) -> tuple[x509.Certificate, ...]:
    try:
        responders = conf.ocsp_responders(issuer)
    except CertificateValidationError:
        return ()  # an unlisted intermediate: only the CA or its delegate
    return tuple(r.cert for r in responders if r.cert is not None)


def _ocsp_for(cert: x509.Certificate, responses: Sequence[bytes]) -> bytes:
    for der in responses:
        parsed = parse_ocsp_response(der)
        if any(s.serial_number == cert.serial_number for s in parsed.responses):
            return der
    raise _fail(f"no OCSP response for {cert.subject.rfc4514_string()}", "MissingOcsp")


def _verify_peer(
    cert_der: bytes,
    conf: SharedParameters,
    ocsp_der: bytes | None,
    chain_ocsp: Sequence[bytes],
    issuer_certs: Sequence[x509.Certificate],
    now: dt.datetime,
    max_age: dt.timedelta,
    expected: tuple[SecurityServerId | None, ClientId | None],
) -> PeerIdentity:
    try:
        cert = x509.load_der_x509_certificate(cert_der)
    except ValueError:
        raise _fail(
            "the certificate is not valid DER", "MalformedCertificate"
        ) from None
    _check_auth_usage(cert)
    server = _registered_server(conf, cert, *expected)
    path = build_certificate_path(
        cert,
        anchors=conf.trusted_ca_certs(),
        intermediates=(*conf.intermediate_ca_certs(), *issuer_certs),
        at=now,
    )
    if ocsp_der is None:
        # PROTOCOLS.md §5.1: "Missing OCSP parts also count as an SSL auth
        # failure."
        raise _fail("no OCSP response for the certificate", "MissingOcsp")
    ocsp = verify_ocsp_response(
        ocsp_der,
        cert=cert,
        issuer=path[1],
        now=now,
        max_age=max_age,
        trusted_responders=_responders(conf, path[1]),
    )
    # "Get OCSP responses for every chain cert except the trusted root"
    # (PROTOCOLS.md §5.1 step 2).
    for link, issuer in itertools.pairwise(path[1:]):
        verify_ocsp_response(
            _ocsp_for(link, chain_ocsp),
            cert=link,
            issuer=issuer,
            now=now,
            max_age=max_age,
            trusted_responders=_responders(conf, issuer),
        )
    return PeerIdentity(
        server_id=server.id,
        server=server,
        certificate=cert,
        path=path,
        ocsp=ocsp,
        auth_cert_hash=auth_cert_hash(cert),
    )


def verify_peer_auth_certificate(
    cert_der: bytes,
    *,
    conf: SharedParameters,
    ocsp_der: bytes | None,
    now: dt.datetime,
    issuer_certs: Sequence[x509.Certificate] = (),
    max_ocsp_age: dt.timedelta | None = None,
    expected_server: SecurityServerId | None = None,
    expected_client: ClientId | None = None,
    chain_ocsp: Sequence[bytes] = (),
) -> PeerIdentity:
    """Decide whether a TLS peer is a registered security server in good standing.

    Fails closed unless all of these hold (PROTOCOLS.md §5.1, §8): the
    certificate is an authentication certificate (digitalSignature, clientAuth
    if it has an EKU, not a CA); its SHA-256 is a registered ``authCertHash``
    (of ``expected_server``, and of a server hosting ``expected_client``, when
    given); it chains to an approved top CA with every certificate valid at
    ``now``; and a ``good`` OCSP response no older than ``max_ocsp_age``
    verifies for it and for every intermediate CA on the path.

    Args:
        cert_der: the peer's certificate (:func:`peer_certificate_der`).
        conf: the current, verified shared parameters.
        ocsp_der: the OCSP response for ``cert_der`` (the first OCSP part of
            a request; downloaded from the peer's port 5577 by a client).
        now: the validation time (timezone-aware).
        issuer_certs: extra untrusted CA certificates for path building.
        max_ocsp_age: largest accepted OCSP age; the configuration's
            ``ocspFreshnessSeconds`` by default.
        expected_server: the server the client meant to reach.
        expected_client: the member or subsystem the server must host (the
            SOAP ``client`` on the provider side, the provider on the
            consumer side).
        chain_ocsp: OCSP responses for intermediate CA certificates.

    Returns:
        The verified peer identity.

    Raises:
        CertificateValidationError: code ``SslAuthenticationFailed`` for every
            failure; ``detail["reason"]`` names the failed check and the
            original error is chained as ``__cause__``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    max_age = max_ocsp_age
    if max_age is None:
        max_age = dt.timedelta(seconds=conf.global_settings.ocsp_freshness_seconds)
    try:
        return _verify_peer(
            cert_der,
            conf,
            ocsp_der,
            chain_ocsp,
            issuer_certs,
            now,
            max_age,
            (expected_server, expected_client),
        )
    except JPLinkError as exc:
        if exc.code == SSL_AUTHENTICATION_FAILED and "reason" in exc.detail:
            raise  # one of ours, already worded
        reason = exc.code
        if reason == SSL_AUTHENTICATION_FAILED:  # from server_for_auth_cert
            reason = "UnregisteredCertificate"
        raise _fail(exc.message, reason) from exc
