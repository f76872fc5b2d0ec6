"""Shared test material for management requests: a PKI with OCSP and signers.

Imported by the unit tests of :mod:`jplink.protocol.management` and by the
central server's management integration tests. Keys are generated per run.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from ca_tsa.ocsp.request import parse_ocsp_request
from ca_tsa.ocsp.responder import GOOD, CertStatusAnswer, OcspResponder
from jplink.identifiers import ClientId, SecurityServerId
from jplink.protocol.management import (
    ManagementRequest,
    ManagementSigner,
    ManagementTrust,
    build_management_message,
    build_management_request,
)
from jplink.security.certs import CertProfile, MemberSubject
from jplink.security.ocsp import build_ocsp_request
from tests.support.pki import TestPki, build_test_pki

INSTANCE = "JP-TEST"
PROVIDER = ClientId(INSTANCE, "GOV", "0001", "MANAGEMENT")
OWNER = ClientId(INSTANCE, "COM", "1234")
SERVER = SecurityServerId(INSTANCE, "COM", "1234", "ss1")
OTHER = ClientId(INSTANCE, "COM", "5678")


@dataclass
class MgmtPki:
    """A test PKI plus an OCSP responder, issuing member and server keys."""

    pki: TestPki
    now: dt.datetime

    def ocsp(
        self, cert: x509.Certificate, answer: CertStatusAnswer = GOOD, *, at=None
    ) -> bytes:
        responder = OcspResponder.create(
            issuer=self.pki.issuing.cert,
            responder_cert=self.pki.ocsp.cert,
            responder_key=self.pki.ocsp.key,
            next_update=None,
        )
        request = parse_ocsp_request(build_ocsp_request(cert, self.pki.issuing.cert))
        when = at or self.now - dt.timedelta(minutes=1)
        return responder.sign_response(request, [answer], now=when)

    def member(self, member: ClientId, name: str = "Acme") -> ManagementSigner:
        subject = MemberSubject(
            member.instance, member.member_class, member.member_code, name
        )
        cert, key = self.pki.issue(CertProfile.SIGN, subject)
        assert isinstance(key, rsa.RSAPrivateKey)
        return ManagementSigner(key, cert, self.ocsp(cert))

    def auth(self, server: SecurityServerId, name: str = "Acme") -> ManagementSigner:
        subject = MemberSubject(
            server.instance,
            server.member_class,
            server.member_code,
            name,
            server.server_code,
        )
        cert, key = self.pki.issue(CertProfile.AUTH, subject)
        assert isinstance(key, rsa.RSAPrivateKey)
        return ManagementSigner(key, cert, self.ocsp(cert))

    def trust(self, **kwargs) -> ManagementTrust:
        anchors = (self.pki.root.cert,)
        return ManagementTrust(auth_anchors=anchors, sign_anchors=anchors, **kwargs)


def build_mgmt_pki(now: dt.datetime) -> MgmtPki:
    return MgmtPki(build_test_pki(now - dt.timedelta(days=1)), now)


def signed_message(
    request: ManagementRequest,
    *,
    member: ManagementSigner | None = None,
    auth: ManagementSigner | None = None,
    client: ClientId | None = None,
    provider: ClientId = PROVIDER,
    message_id: str | None = None,
    extra_auth_ocsp: bool | None = None,
) -> tuple[str, bytes, bytes]:
    """``(content_type, http_body, soap)`` of a signed management request.

    ``extra_auth_ocsp`` defaults to JP-LINK's layout (the auth certificate's
    OCSP response appended) whenever ``auth`` carries one; pass False, or an
    ``auth`` without ``ocsp_der``, for X-Road's PR-MSERV layout.
    """
    if extra_auth_ocsp is None:
        extra_auth_ocsp = auth is not None and auth.ocsp_der is not None
    soap = build_management_request(
        request,
        service_provider=provider,
        message_id=message_id or str(uuid.uuid4()),
        client=client,
    )
    ctype, body = build_management_message(
        soap, request.type, member=member, auth=auth, extra_auth_ocsp=extra_auth_ocsp
    )
    return ctype, body, soap
