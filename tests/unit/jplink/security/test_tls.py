"""Mutual TLS between security servers: contexts on real loopback sockets, peer checks.

The TLS handshake checks certificate validity against the machine clock, so
this PKI is issued around the real current time (not the fixed ``now``).
OCSP responses come from ``ca_tsa``'s responder at chosen times. The
handshake is also checked with ``openssl s_client`` as an independent client.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca_tsa.ocsp.request import parse_ocsp_request
from ca_tsa.ocsp.responder import GOOD, CertStatusAnswer, OcspResponder
from jplink.errors import CertificateValidationError, ConfigurationError
from jplink.globalconf import SharedParameters
from jplink.globalconf.authorities import ApprovedCA, CaInfo
from jplink.globalconf.authorities import OcspResponder as ConfOcspResponder
from jplink.globalconf.model import (
    GlobalSettings,
    Member,
    SecurityServer,
    auth_cert_hash,
)
from jplink.identifiers import SecurityServerId
from jplink.security.certs import CertProfile, MemberSubject
from jplink.security.keys import PrivateKey, serialize_private_key_pem
from jplink.security.ocsp import OcspCertStatus, build_ocsp_request
from jplink.security.tls import (
    SSL_AUTHENTICATION_FAILED,
    TLS12_CIPHERS,
    XROAD_TLS12_CIPHERS,
    PeerIdentity,
    client_ssl_context,
    peer_certificate_der,
    server_ssl_context,
    verify_peer_auth_certificate,
)
from tests.conftest import require_tool
from tests.support.pki import TestPki, build_test_pki, pem

pytestmark = pytest.mark.timeout(60)

REAL_NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
ISSUED = REAL_NOW - dt.timedelta(hours=1)
OCSP_AT = REAL_NOW - dt.timedelta(minutes=5)
CONSUMER = SecurityServerId("JP", "COM", "1111", "ss1")
PROVIDER = SecurityServerId("JP", "COM", "2222", "ss2")


def _subject(server: SecurityServerId) -> MemberSubject:
    return MemberSubject(
        server.instance,
        server.member_class,
        server.member_code,
        f"Member {server.member_code}",
        server.server_code,
    )


@dataclasses.dataclass
class Node:
    """One security server's authentication material."""

    server_id: SecurityServerId
    cert: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...]


@dataclasses.dataclass
class World:
    pki: TestPki
    consumer: Node
    provider: Node
    conf: SharedParameters
    responder: OcspResponder

    def ocsp(
        self,
        cert: x509.Certificate,
        *,
        issuer: x509.Certificate | None = None,
        answer: CertStatusAnswer = GOOD,
        at: dt.datetime = OCSP_AT,
        responder: OcspResponder | None = None,
    ) -> bytes:
        issuer = issuer or self.pki.issuing.cert
        request = parse_ocsp_request(build_ocsp_request(cert, issuer))
        return (responder or self.responder).sign_response(request, [answer], now=at)


def _node(pki: TestPki, server: SecurityServerId, **kwargs: Any) -> Node:
    cert, key = pki.issue(
        CertProfile.AUTH, _subject(server), not_before=ISSUED, **kwargs
    )
    chain = (cert, pki.intermediate.cert) if pki.intermediate else (cert,)
    return Node(server, cert, key, chain)


def _conf(pki: TestPki, *nodes: Node, freshness: int = 3600) -> SharedParameters:
    intermediates: tuple[CaInfo, ...] = ()
    if pki.intermediate is not None:
        intermediates = (CaInfo(pki.intermediate.cert),)
    ca = ApprovedCA(
        name="Test CA",
        top_ca=CaInfo(pki.root.cert, (ConfOcspResponder(pki.ocsp_url, pki.ocsp.cert),)),
        certificate_profile_info="ee.ria.xroad.common.certificateprofile.impl."
        "FiVRKCertificateProfileInfoProvider",
        intermediate_cas=intermediates,
    )
    members = tuple(
        Member(n.server_id.owner, "Commercial", f"Member {n.server_id.member_code}")
        for n in nodes
    )
    servers = tuple(
        SecurityServer(
            n.server_id,
            address="127.0.0.1",
            auth_cert_hashes=(auth_cert_hash(n.cert),),
        )
        for n in nodes
    )
    return SharedParameters(
        instance_identifier="JP",
        global_settings=GlobalSettings(ocsp_freshness_seconds=freshness),
        approved_cas=(ca,),
        members=members,
        security_servers=servers,
    )


def _world(*, intermediate: bool = False) -> World:
    pki = build_test_pki(ISSUED - dt.timedelta(days=1), intermediate=intermediate)
    consumer = _node(pki, CONSUMER)
    provider = _node(pki, PROVIDER)
    responder = OcspResponder.create(
        issuer=pki.issuing.cert,
        responder_cert=pki.ocsp.cert,
        responder_key=pki.ocsp.key,
        next_update=None,
    )
    return World(pki, consumer, provider, _conf(pki, consumer, provider), responder)


@pytest.fixture(scope="module")
def world() -> World:
    return _world()


def _server_ctx(world: World) -> ssl.SSLContext:
    return server_ssl_context(
        world.provider.chain, world.provider.key, client_ca_certs=[world.pki.root.cert]
    )


def _client_ctx(world: World, node: Node | None = None) -> ssl.SSLContext:
    node = node or world.consumer
    return client_ssl_context(
        node.chain, node.key, server_ca_certs=[world.pki.root.cert]
    )


# --------------------------------------------------------------------------
# Real sockets on loopback


class PeerServer:
    """A 5500-style server: TLS handshake, then the application-level check."""

    def __init__(self, world: World, ctx: ssl.SSLContext) -> None:
        self.world = world
        self.ctx = ctx
        self.results: list[PeerIdentity | CertificateValidationError] = []
        self.handshake_errors: list[str] = []
        self.server: asyncio.Server | None = None
        self._debug = False

    def _record(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # asyncio reports a failed server-side handshake only in debug mode,
        # through the loop's exception handler.
        self.handshake_errors.append(str(context.get("exception")))

    def refused_with(self, reason: str) -> bool:
        """Whether the server's handshake failed with this OpenSSL reason."""
        return any(reason in error for error in self.handshake_errors)

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            der = peer_certificate_der(writer.get_extra_info("ssl_object"))
            cert = x509.load_der_x509_certificate(der)
            # The OCSP part of a request message: here the consumer's own.
            ocsp = self.world.ocsp(cert)
            try:
                peer = verify_peer_auth_certificate(
                    der, conf=self.world.conf, ocsp_der=ocsp, now=REAL_NOW
                )
            except CertificateValidationError as exc:
                self.results.append(exc)
                writer.write(f"DENIED {exc.code}\n".encode())
            else:
                self.results.append(peer)
                writer.write(f"OK {peer.server_id}\n".encode())
            await writer.drain()
        finally:
            writer.close()

    async def __aenter__(self) -> int:
        loop = asyncio.get_running_loop()
        self._debug = loop.get_debug()
        loop.set_debug(True)
        loop.set_exception_handler(self._record)
        self.server = await asyncio.start_server(
            self.handle, "127.0.0.1", 0, ssl=self.ctx
        )
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(None)
        loop.set_debug(self._debug)


async def _exchange(port: int, ctx: ssl.SSLContext) -> tuple[bytes, bytes, str, str]:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx), 10
    )
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        server_der = peer_certificate_der(ssl_object)
        line = await asyncio.wait_for(reader.readline(), 10)
        return line, server_der, ssl_object.version(), ssl_object.cipher()[0]
    finally:
        writer.close()


async def test_mutual_tls_with_registered_certificates(world: World) -> None:
    peer_server = PeerServer(world, _server_ctx(world))
    async with peer_server as port:
        line, server_der, version, _ = await _exchange(port, _client_ctx(world))
    assert line == f"OK {CONSUMER}\n".encode()
    assert peer_server.handshake_errors == []
    [identity] = peer_server.results
    assert isinstance(identity, PeerIdentity)
    assert identity.server_id == CONSUMER
    assert identity.certificate == world.consumer.cert
    assert identity.path == (world.consumer.cert, world.pki.root.cert)
    assert identity.ocsp.status is OcspCertStatus.GOOD
    assert version in ("TLSv1.2", "TLSv1.3")
    # The client side checks the provider the same way, with the OCSP
    # response it would download from the provider's port 5577.
    provider = verify_peer_auth_certificate(
        server_der,
        conf=world.conf,
        ocsp_der=world.ocsp(world.provider.cert),
        now=REAL_NOW,
        expected_server=PROVIDER,
    )
    assert provider.server_id == PROVIDER
    assert provider.auth_cert_hash == auth_cert_hash(world.provider.cert)


async def test_tls12_uses_an_ecdhe_suite(world: World) -> None:
    ctx = _client_ctx(world)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    async with PeerServer(world, _server_ctx(world)) as port:
        line, _, version, cipher = await _exchange(port, ctx)
    assert line.startswith(b"OK ")
    assert version == "TLSv1.2"
    assert cipher in TLS12_CIPHERS


async def _expect_refused(port: int, ctx: ssl.SSLContext) -> None:
    # With TLS 1.3 the server's verdict on the client certificate arrives
    # after the client's handshake has finished, so the refusal may show up
    # on the first read: an SSL error, a reset or an empty read.
    try:
        line, *_ = await _exchange(port, ctx)
    except (ssl.SSLError, ConnectionError):
        return
    assert line == b""


async def test_handshake_fails_without_client_certificate(world: World) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=pem(world.pki.root.cert).decode())
    peer_server = PeerServer(world, _server_ctx(world))
    async with peer_server as port:
        await _expect_refused(port, ctx)
    assert peer_server.results == []  # the handler never ran
    assert peer_server.refused_with("PEER_DID_NOT_RETURN_A_CERTIFICATE")


async def test_handshake_fails_for_a_certificate_of_an_unapproved_ca(
    world: World,
) -> None:
    rogue_pki = build_test_pki(ISSUED - dt.timedelta(days=1))
    # Same server identity, but issued by a CA the configuration does not list.
    rogue = _node(rogue_pki, CONSUMER)
    ctx = client_ssl_context(
        rogue.chain, rogue.key, server_ca_certs=[world.pki.root.cert]
    )
    peer_server = PeerServer(world, _server_ctx(world))
    async with peer_server as port:
        await _expect_refused(port, ctx)
    assert peer_server.results == []
    assert peer_server.refused_with("CERTIFICATE_VERIFY_FAILED")
    # And the application check refuses it on its own too.
    with pytest.raises(CertificateValidationError) as info:
        verify_peer_auth_certificate(
            rogue.cert.public_bytes(Encoding.DER),
            conf=_conf(world.pki, rogue),
            ocsp_der=b"unused",
            now=REAL_NOW,
        )
    assert info.value.code == SSL_AUTHENTICATION_FAILED


async def test_client_refuses_a_server_of_an_unapproved_ca(world: World) -> None:
    rogue_pki = build_test_pki(ISSUED - dt.timedelta(days=1))
    rogue = _node(rogue_pki, PROVIDER)
    ctx = server_ssl_context(
        rogue.chain, rogue.key, client_ca_certs=[world.pki.root.cert]
    )
    async with PeerServer(world, ctx) as port:
        with pytest.raises(ssl.SSLCertVerificationError):
            await _exchange(port, _client_ctx(world))


async def test_unregistered_certificate_passes_tls_but_not_the_check(
    world: World,
) -> None:
    stranger = _node(world.pki, SecurityServerId("JP", "COM", "1111", "ss9"))
    peer_server = PeerServer(world, _server_ctx(world))
    async with peer_server as port:
        line, *_ = await _exchange(port, _client_ctx(world, stranger))
    assert line == b"DENIED SslAuthenticationFailed\n"
    [error] = peer_server.results
    assert isinstance(error, CertificateValidationError)
    assert error.detail["reason"] == "UnregisteredCertificate"


# --------------------------------------------------------------------------
# verify_peer_auth_certificate on its own


def _verify(world: World, node: Node | None = None, **kwargs: Any) -> PeerIdentity:
    node = node or world.consumer
    kwargs.setdefault("ocsp_der", world.ocsp(node.cert))
    kwargs.setdefault("now", REAL_NOW)
    return verify_peer_auth_certificate(
        node.cert.public_bytes(Encoding.DER), conf=world.conf, **kwargs
    )


def _refused(
    world: World, reason: str, node: Node | None = None, **kwargs: Any
) -> None:
    with pytest.raises(CertificateValidationError) as info:
        _verify(world, node, **kwargs)
    assert info.value.code == SSL_AUTHENTICATION_FAILED
    assert info.value.detail["reason"] == reason, info.value.message


def test_revoked_certificate_is_refused(world: World) -> None:
    revoked = CertStatusAnswer(
        OcspCertStatus.REVOKED,
        revoked_at=ISSUED,
        reason=x509.ReasonFlags.key_compromise,
    )
    ocsp = world.ocsp(world.consumer.cert, answer=revoked)
    _refused(world, "CertValidation", ocsp_der=ocsp)
    with pytest.raises(CertificateValidationError) as info:
        _verify(world, ocsp_der=ocsp)
    assert "revoked" in str(info.value.__cause__)


def test_stale_ocsp_is_refused(world: World) -> None:
    old = world.ocsp(world.consumer.cert, at=REAL_NOW - dt.timedelta(minutes=61))
    _refused(world, "CertValidation", ocsp_der=old)
    # The same response is fine under a longer freshness limit.
    assert _verify(world, ocsp_der=old, max_ocsp_age=dt.timedelta(hours=2))


def test_freshness_defaults_to_the_global_configuration(world: World) -> None:
    ocsp = world.ocsp(world.consumer.cert, at=REAL_NOW - dt.timedelta(minutes=30))
    assert _verify(world, ocsp_der=ocsp).ocsp.this_update == REAL_NOW - dt.timedelta(
        minutes=30
    )
    strict = dataclasses.replace(
        world, conf=_conf(world.pki, world.consumer, world.provider, freshness=600)
    )
    _refused(strict, "CertValidation", ocsp_der=ocsp)


def test_missing_ocsp_is_refused(world: World) -> None:
    _refused(world, "MissingOcsp", ocsp_der=None)


def test_ocsp_for_another_certificate_is_refused(world: World) -> None:
    _refused(world, "InvalidOcspResponse", ocsp_der=world.ocsp(world.provider.cert))


def test_ocsp_from_an_unauthorised_responder_is_refused(world: World) -> None:
    other = build_test_pki(ISSUED - dt.timedelta(days=1))
    forged = OcspResponder.create(
        issuer=world.pki.issuing.cert,
        responder_cert=other.ocsp.cert,
        responder_key=other.ocsp.key,
        next_update=None,
    )
    _refused(
        world,
        "InvalidOcspResponse",
        ocsp_der=world.ocsp(world.consumer.cert, responder=forged),
    )


def test_garbage_ocsp_and_certificate_are_refused(world: World) -> None:
    _refused(world, "InvalidOcspResponse", ocsp_der=b"\x30\x03\x0a\x01\x00garbage")
    with pytest.raises(CertificateValidationError) as info:
        verify_peer_auth_certificate(
            b"not a certificate", conf=world.conf, ocsp_der=None, now=REAL_NOW
        )
    assert info.value.detail["reason"] == "MalformedCertificate"


def test_expected_server_must_match(world: World) -> None:
    assert _verify(world, expected_server=CONSUMER).server_id == CONSUMER
    _refused(world, "WrongServer", expected_server=PROVIDER)


def test_expected_client_must_be_hosted(world: World) -> None:
    owner = CONSUMER.owner
    assert _verify(world, expected_client=owner.subsystem("sys1")).owner == owner
    _refused(world, "WrongMember", expected_client=PROVIDER.owner)


def test_signing_certificate_is_not_an_auth_certificate(world: World) -> None:
    cert, key = world.pki.issue(
        CertProfile.SIGN,
        MemberSubject("JP", "COM", "1111", "Member 1111"),
        not_before=ISSUED,
    )
    node = Node(CONSUMER, cert, key, (cert,))
    _refused(world, "KeyUsage", node)


def test_expired_certificate_is_refused(world: World) -> None:
    later = REAL_NOW + dt.timedelta(days=400)  # the auth cert lives 365 days
    ocsp = world.ocsp(world.consumer.cert, at=later)
    _refused(world, "CertValidation", now=later, ocsp_der=ocsp)


def test_naive_time_is_misuse(world: World) -> None:
    with pytest.raises(ValueError):
        _verify(world, now=REAL_NOW.replace(tzinfo=None))


def test_intermediate_ca_needs_its_own_ocsp() -> None:
    world = _world(intermediate=True)
    assert world.pki.intermediate is not None
    inter, root = world.pki.intermediate.cert, world.pki.root.cert
    root_responder = OcspResponder.create(
        issuer=root,
        responder_cert=root,
        responder_key=world.pki.root.key,
        next_update=None,
    )
    inter_ocsp = world.ocsp(inter, issuer=root, responder=root_responder)
    identity = _verify(world, chain_ocsp=[inter_ocsp])
    assert identity.path == (world.consumer.cert, inter, root)
    _refused(world, "MissingOcsp")  # no response for the intermediate
    revoked = CertStatusAnswer(OcspCertStatus.REVOKED, revoked_at=ISSUED)
    bad = world.ocsp(inter, issuer=root, responder=root_responder, answer=revoked)
    _refused(world, "CertValidation", chain_ocsp=[bad])


def test_context_refuses_a_key_of_another_certificate(world: World) -> None:
    with pytest.raises(ConfigurationError):
        server_ssl_context(
            world.provider.chain,
            world.consumer.key,
            client_ca_certs=[world.pki.root.cert],
        )
    with pytest.raises(ValueError):
        client_ssl_context(world.consumer.chain, world.consumer.key, server_ca_certs=[])


def test_contexts_are_tls12_plus_with_required_client_certificates(
    world: World,
) -> None:
    server, client = _server_ctx(world), _client_ctx(world)
    for ctx in (server, client):
        assert ctx.minimum_version is ssl.TLSVersion.TLSv1_2
        assert ctx.verify_mode is ssl.CERT_REQUIRED
        assert ctx.check_hostname is False
    tls12 = {c["name"] for c in server.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == set(TLS12_CIPHERS)
    assert set(XROAD_TLS12_CIPHERS) <= tls12


# --------------------------------------------------------------------------
# openssl s_client as an independent peer


async def _s_client(port: int, *args: str) -> tuple[int, str]:
    openssl = require_tool("openssl")
    process = await asyncio.create_subprocess_exec(
        openssl,
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(b""), 30)
    assert process.returncode is not None
    return process.returncode, out.decode("utf-8", "replace")


def _files(world: World, node: Node, tmp_path: Path) -> list[str]:
    cert, key, ca = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.write_bytes(pem(node.cert))
    key.touch(mode=0o600)
    key.write_bytes(serialize_private_key_pem(node.key))
    ca.write_bytes(pem(world.pki.root.cert))
    return ["-cert", str(cert), "-key", str(key), "-CAfile", str(ca)]


async def test_openssl_s_client_with_a_registered_certificate(
    world: World, tmp_path: Path
) -> None:
    files = _files(world, world.consumer, tmp_path)
    peer_server = PeerServer(world, _server_ctx(world))
    async with peer_server as port:
        code, out = await _s_client(
            port, *files, "-tls1_2", "-cipher", XROAD_TLS12_CIPHERS[0], "-ign_eof"
        )
    assert code == 0, out
    assert "Verify return code: 0 (ok)" in out
    assert "Protocol  : TLSv1.2" in out
    assert f"Cipher    : {XROAD_TLS12_CIPHERS[0]}" in out
    assert f"OK {CONSUMER}" in out
    [identity] = peer_server.results
    assert isinstance(identity, PeerIdentity) and identity.server_id == CONSUMER


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        pytest.param(("-tls1_1",), "UNSUPPORTED_PROTOCOL", id="tls1.1"),
        pytest.param(
            ("-tls1_2", "-cipher", "AES256-SHA256"), "NO_SHARED_CIPHER", id="no-ecdhe"
        ),
    ],
)
async def test_openssl_s_client_old_protocols_fail(
    world: World, tmp_path: Path, args: tuple[str, ...], reason: str
) -> None:
    files = _files(world, world.consumer, tmp_path)
    peer_server = PeerServer(world, _server_ctx(world))
    async with peer_server as port:
        code, out = await _s_client(port, *files, *args)
    assert code != 0, out
    assert peer_server.results == []
    assert peer_server.refused_with(reason), peer_server.handshake_errors


async def test_openssl_s_client_without_client_certificate_fails(
    world: World, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pem(world.pki.root.cert))
    peer_server = PeerServer(world, _server_ctx(world))
    async with peer_server as port:
        code, out = await _s_client(port, "-CAfile", str(ca), "-tls1_2")
    assert code != 0, out
    assert "OK " not in out
    assert peer_server.results == []
    assert peer_server.refused_with("PEER_DID_NOT_RETURN_A_CERTIFICATE")
