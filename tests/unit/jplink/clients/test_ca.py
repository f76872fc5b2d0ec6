"""The CA enrolment client: pure body/response checks, HTTP seam, fake CA."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from jplink.clients import (
    AiohttpCaEnrolmentClient,
    EnrolmentRequest,
    FakeCaEnrolmentClient,
    HttpResponse,
    build_enrolment_body,
    parse_enrolment_response,
)
from jplink.clients.http import map_transport_errors, request_json
from jplink.errors import InvalidRequest, MalformedMessage, TransportError
from jplink.security.certs import CertProfile, MemberSubject
from tests.support.ports import free_port as _free_port

SUBJECT = MemberSubject("JP-TEST", "COM", "1234", "Acme Corp")


def _csr(cn: str = "1234") -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme Corp"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(name)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(Encoding.PEM).decode()


@pytest.fixture
async def issued(now):
    """A real certificate from the fake CA, to build canned responses from."""
    fake = FakeCaEnrolmentClient(now=now)
    return await fake.enrol(EnrolmentRequest(_csr(), CertProfile.SIGN, SUBJECT))


def test_body_has_the_ca_api_fields():
    req = EnrolmentRequest(
        "PEM",
        CertProfile.AUTH,
        MemberSubject("JP", "GOV", "9", "Gov", server_code="ss"),
    )
    assert build_enrolment_body(req) == {
        "csr": "PEM",
        "profile": "auth",
        "instance": "JP",
        "member_class": "GOV",
        "member_code": "9",
        "member_name": "Gov",
        "server_code": "ss",
    }
    sign = EnrolmentRequest("PEM", CertProfile.SIGN, SUBJECT)
    assert "server_code" not in build_enrolment_body(sign)


def _resp(status: int, body: object) -> HttpResponse:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpResponse(
        status=status, body=raw, url="http://ca.test/api/v1/certificates"
    )


def test_parse_accepts_201(issued):
    got = parse_enrolment_response(
        _resp(
            201,
            {"certificate": issued.certificate_pem, "serial": issued.serial.upper()},
        )
    )
    cert = x509.load_pem_x509_certificate(got.certificate_pem.encode())
    assert got.serial == format(cert.serial_number, "x")


@pytest.mark.parametrize(
    ("status", "body", "error", "code"),
    [
        (
            400,
            {"code": "InvalidSubject", "detail": "bad CN"},
            InvalidRequest,
            "InvalidSubject",
        ),
        (400, b"<html>", InvalidRequest, "CaRefused"),
        (
            401,
            {"code": "Unauthorized", "detail": "bad key"},
            TransportError,
            "NetworkError",
        ),
        (500, b"", TransportError, "NetworkError"),
        (201, b"not json", MalformedMessage, "InvalidMessage"),
        (201, ["a list"], MalformedMessage, "InvalidMessage"),
        (201, {"serial": "01"}, MalformedMessage, "InvalidMessage"),
        (
            201,
            {"certificate": "junk", "serial": "01"},
            MalformedMessage,
            "InvalidMessage",
        ),
    ],
)
def test_parse_refuses(status, body, error, code):
    with pytest.raises(error) as info:
        parse_enrolment_response(_resp(status, body))
    assert info.value.code == code


def test_parse_refuses_serial_mismatch(issued):
    with pytest.raises(MalformedMessage, match="serial"):
        parse_enrolment_response(
            _resp(201, {"certificate": issued.certificate_pem, "serial": "abc"})
        )


async def test_fake_ca_checks_the_csr_like_the_real_one(now):
    fake = FakeCaEnrolmentClient(now=now)
    with pytest.raises(InvalidRequest):  # CN does not match the member code
        await fake.enrol(EnrolmentRequest(_csr("999"), CertProfile.SIGN, SUBJECT))
    assert fake.issued == []


async def test_http_client_against_a_server(aiohttp_server, issued):
    seen: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.Response:
        seen["auth"] = request.headers.get("Authorization")
        seen["body"] = await request.json()
        return web.json_response(
            {"certificate": issued.certificate_pem, "serial": issued.serial}, status=201
        )

    app = web.Application()
    app.router.add_post("/api/v1/certificates", handler)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        client = AiohttpCaEnrolmentClient(session, str(server.make_url("/")), "k3y")
        got = await client.enrol(EnrolmentRequest("CSR", CertProfile.SIGN, SUBJECT))
    assert got.serial == issued.serial
    assert seen["auth"] == "Bearer k3y"
    assert seen["body"]["member_code"] == "1234"


async def test_connection_refused_becomes_transport_error():
    url = f"http://127.0.0.1:{_free_port()}/x"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(TransportError) as info:
            await request_json(session, "GET", url)
    assert info.value.url == url
    assert isinstance(info.value.__cause__, aiohttp.ClientError)


async def test_timeout_becomes_transport_error(aiohttp_server):
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response()

    app = web.Application()
    app.router.add_get("/", slow)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(TransportError, match="in time"):
            await request_json(session, "GET", str(server.make_url("/")), timeout=0.2)


def test_map_transport_errors_leaves_other_errors_alone():
    with pytest.raises(KeyError), map_transport_errors("http://x"):
        raise KeyError("not ours")


def test_response_json_refuses_garbage():
    with pytest.raises(MalformedMessage):
        HttpResponse(status=200, body=b"\xff", url="u").json()


async def test_request_json_reads_a_body_sent_in_many_packets(aiohttp_server) -> None:
    """A body streamed in pieces is read whole (read(n) alone would cut it)."""
    import asyncio
    import json

    import aiohttp
    from aiohttp import web

    from jplink.clients.http import request_json

    payload = json.dumps({"pem": "x" * 200_000}).encode()

    async def slow(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        for i in range(0, len(payload), 7_000):
            await resp.write(payload[i : i + 7_000])
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/slow", slow)
    server = await aiohttp_server(app)
    async with aiohttp.ClientSession() as session:
        got = await request_json(session, "GET", str(server.make_url("/slow")))
    assert got.body == payload
    assert got.json()["pem"] == "x" * 200_000
