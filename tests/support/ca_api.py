"""The CA's enrolment API driven as an operator would (issue, revoke), for tests."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from aiohttp.test_utils import TestServer
from cryptography import x509

from jplink.security.certs import CertProfile, MemberSubject


@dataclass
class CaApiClient:
    """A running CA (``ca_tsa.app.make_app`` on a test server) and its API key."""

    server: TestServer
    http: aiohttp.ClientSession
    api_key: str

    @property
    def ocsp_url(self) -> str:
        return str(self.server.make_url("/ocsp"))

    async def issue(
        self, profile: CertProfile, subject: MemberSubject, csr: bytes
    ) -> x509.Certificate:
        body = {
            "csr": csr.decode(),
            "profile": profile.value,
            "instance": subject.instance,
            "member_class": subject.member_class,
            "member_code": subject.member_code,
            "member_name": subject.member_name,
        }
        if subject.server_code:
            body["server_code"] = subject.server_code
        async with self.http.post(
            self.server.make_url("/api/v1/certificates"),
            json=body,
            headers={"Authorization": f"Bearer {self.api_key}"},
        ) as resp:
            assert resp.status == 201, await resp.text()
            data = await resp.json()
        return x509.load_pem_x509_certificate(data["certificate"].encode())

    async def revoke(self, cert: x509.Certificate) -> None:
        async with self.http.post(
            self.server.make_url(f"/api/v1/certificates/{cert.serial_number:x}/revoke"),
            json={"reason": "keyCompromise"},
            headers={"Authorization": f"Bearer {self.api_key}"},
        ) as resp:
            assert resp.status == 200, await resp.text()
