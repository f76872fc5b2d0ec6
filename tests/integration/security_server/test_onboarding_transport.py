"""The onboarding clients' answer checks and the authCertReg TLS pin.

The parsers get whole HTTP answers (status, headers, body) of every shape a
central server, a proxy or something else on the port could send; the pin is
tried against a real TLS server on loopback: the published certificate is
accepted, any other certificate is refused before a byte of the request is
sent.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from cryptography.x509.oid import NameOID

from jplink.clients.http import HttpResponse
from jplink.errors import (
    ConfigurationError,
    Conflict,
    InvalidRequest,
    JPLinkError,
    MalformedMessage,
    NotFound,
    SoapFault,
    TransportError,
)
from jplink.identifiers import SecurityServerId
from jplink.protocol.faults import build_fault
from jplink.protocol.management import (
    ManagementRequest,
    ManagementRequestType,
    build_management_request,
    build_management_response,
)
from jplink.protocol.soap import MessageRole, parse_soap_message
from security_server.central_client import (
    CentralCertRequestStatus,
    parse_cert_request_state,
    parse_management_answer,
    parse_submitted,
    post_management_request,
    tls_pin,
)

from .helpers import INSTANCE, OWNER

URL = "http://cs.example.jp:4001/register/v1/certificate-requests"
SERVER = SecurityServerId(INSTANCE, OWNER.member_class, OWNER.member_code, "ss1")
PROVIDER = OWNER.subsystem("management")
T = ManagementRequestType


def _json(status: int, doc: Any) -> HttpResponse:
    return HttpResponse(
        status=status,
        body=json.dumps(doc).encode(),
        url=URL,
        headers={"Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, InvalidRequest),
        (422, InvalidRequest),
        (404, NotFound),
        (409, Conflict),
        (500, TransportError),
        (502, TransportError),
    ],
)
def test_refusals_keep_the_central_servers_reason(
    status: int, error: type[JPLinkError]
) -> None:
    with pytest.raises(error) as caught:
        parse_submitted(_json(status, {"detail": "member COM/9 is not registered"}))
    assert "member COM/9 is not registered" in caught.value.message


def test_receipts_and_states() -> None:
    got = parse_submitted(_json(201, {"id": 7, "token": "s3cret"}))
    assert (got.request_id, got.token) == (7, "s3cret")
    assert "s3cret" not in repr(got)
    for bad in ({"id": "7", "token": "x"}, {"id": 7}, {"id": 7, "token": ""}, [1]):
        with pytest.raises(MalformedMessage):
            parse_submitted(_json(201, bad))
    with pytest.raises(MalformedMessage):
        parse_submitted(HttpResponse(status=201, body=b"<html>", url=URL))

    state = parse_cert_request_state(
        _json(200, {"id": 7, "status": "declined", "declineReason": "Wrong O"})
    )
    assert state.status is CentralCertRequestStatus.DECLINED
    assert state.decline_reason == "Wrong O"
    with pytest.raises(MalformedMessage):  # approved without its certificate
        parse_cert_request_state(_json(200, {"id": 7, "status": "approved"}))
    with pytest.raises(MalformedMessage):
        parse_cert_request_state(_json(200, {"id": 7, "status": "lost"}))


def _request(kind: ManagementRequestType = T.CLIENT_DELETION) -> bytes:
    return build_management_request(
        ManagementRequest(kind, SERVER, client=OWNER.subsystem("client")),
        service_provider=PROVIDER,
        message_id=str(uuid.uuid4()),
    )


def _response(request_id: int | None, kind: ManagementRequestType) -> bytes:
    message = parse_soap_message(
        _request(kind), content_type="text/xml", role=MessageRole.REQUEST
    )
    return build_management_response(message, request_id)


def _soap(status: int, body: bytes) -> HttpResponse:
    return HttpResponse(
        status=status,
        body=body,
        url="http://127.0.0.1:8080/",
        headers={"Content-Type": "text/xml; charset=UTF-8"},
    )


def test_management_answers() -> None:
    answer = parse_management_answer(
        _soap(200, _response(42, T.CLIENT_DELETION)), T.CLIENT_DELETION
    )
    assert answer.request_id == 42
    with pytest.raises(MalformedMessage):  # an answer to another operation
        parse_management_answer(
            _soap(200, _response(42, T.CLIENT_DELETION)), T.CLIENT_REG
        )
    with pytest.raises(MalformedMessage):  # no requestId
        parse_management_answer(
            _soap(200, _response(None, T.CLIENT_DELETION)), T.CLIENT_DELETION
        )
    fault = build_fault("Server.ClientProxy.ServiceFailed", "no route")
    with pytest.raises(SoapFault) as caught:
        parse_management_answer(_soap(500, fault), T.CLIENT_DELETION)
    assert caught.value.faultcode == "Server.ClientProxy.ServiceFailed"
    html = HttpResponse(
        status=502,
        body=b"<html/>",
        url="http://x/",
        headers={"Content-Type": "text/html"},
    )
    with pytest.raises(TransportError):
        parse_management_answer(html, T.CLIENT_DELETION)
    ok_html = HttpResponse(
        status=200,
        body=b"<html/>",
        url="http://x/",
        headers={"Content-Type": "text/html"},
    )
    with pytest.raises(MalformedMessage):
        parse_management_answer(ok_html, T.CLIENT_DELETION)


def _self_signed(tmp_path: Path, name: str) -> tuple[x509.Certificate, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (tmp_path / f"{name}.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    (tmp_path / f"{name}.key").write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / f"{name}.pem", tmp_path / f"{name}.key")
    return cert, context


def test_pin_rules(tmp_path: Path) -> None:
    cert, _ = _self_signed(tmp_path, "cs")
    assert tls_pin("http://127.0.0.1:4001/managementservice/", None) is None
    with pytest.raises(ConfigurationError):
        tls_pin("https://cs.example.jp:4001/managementservice/", None)
    with pytest.raises(ConfigurationError):
        tls_pin("ftp://cs.example.jp/", cert)
    assert isinstance(tls_pin("https://cs:4001/", cert), aiohttp.Fingerprint)


async def test_auth_cert_reg_is_pinned_to_the_published_certificate(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    served, context = _self_signed(tmp_path, "cs")
    other, _ = _self_signed(tmp_path, "other")
    received: list[bytes] = []

    async def handler(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(
            body=_response(5, T.CLIENT_DELETION),
            content_type="text/xml",
            charset="utf-8",
        )

    app = web.Application()
    app.router.add_post("/managementservice/", handler)
    server = await aiohttp_server(app, ssl=context)
    url = str(server.make_url("/managementservice/"))
    assert url.startswith("https://")
    body = _request()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(TransportError):
            await post_management_request(
                http, url, "text/xml", body, T.CLIENT_DELETION, pin=tls_pin(url, other)
            )
        assert received == []  # refused in the handshake, nothing sent
        answer = await post_management_request(
            http, url, "text/xml", body, T.CLIENT_DELETION, pin=tls_pin(url, served)
        )
    assert answer.request_id == 5
    assert received == [body]
