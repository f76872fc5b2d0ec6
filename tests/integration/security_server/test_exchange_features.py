"""Metaservices and SOAP attachments through the pair of security servers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from jplink.identifiers import ServiceId, identifier_from_xml
from jplink.ns import NS_XROAD
from jplink.protocol import MimePart, build_multipart, build_response_from
from jplink.protocol.mime import parse_content_type, parse_multipart
from jplink.protocol.request_hash import verify_request_hash
from jplink.protocol.soap import MessageRole, parse_soap_message
from jplink.xml import parse_xml
from security_server import access_rights, services
from security_server.metaservices import WSDL_ENDPOINT
from wsdl import WsdlOperation, WsdlSpec, build_wsdl

from .pair import Pair, open_pair, real_now, trades_request

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def pair(tmp_path: Path, aiohttp_server: Any) -> AsyncIterator[Pair]:
    async with open_pair(tmp_path, aiohttp_server) as opened:
        yield opened


def _listed(body: bytes, ctype: str, wrapper: str) -> list[str]:
    message = parse_soap_message(body, content_type=ctype, role=MessageRole.RESPONSE)
    assert message.envelope is not None
    found = message.envelope.findall(
        f".//{{{NS_XROAD}}}{wrapper}/{{{NS_XROAD}}}service"
    )
    ids = [identifier_from_xml(e, ServiceId) for e in found]
    return sorted(i.service_code for i in ids if isinstance(i, ServiceId))


async def test_metaservices_through_the_pair(pair: Pair) -> None:
    a, b = pair.a.subsystem, pair.b.subsystem
    request = trades_request(a, b, code="listMethods")
    status, ctype, body = await pair.post(request)
    assert status == 200, body.decode()
    assert _listed(body, ctype, "listMethodsResponse") == ["getBalance", "getTrades"]
    verify_request_hash(
        parse_soap_message(body, content_type=ctype, role=MessageRole.RESPONSE), request
    )

    status, ctype, body = await pair.post(trades_request(a, b, code="allowedMethods"))
    assert status == 200, body.decode()
    assert _listed(body, ctype, "allowedMethodsResponse") == ["getTrades"]

    extra = f'<xroad:serviceCode xmlns:xroad="{NS_XROAD}">getTrades</xroad:serviceCode>'
    request = trades_request(a, b, code="getWsdl", extra=extra)
    status, ctype, body = await pair.post(request)
    assert status == 200, body.decode()
    # getWsdl is multipart: the signed SOAP part, then the WSDL.
    parsed = parse_content_type(ctype)
    assert parsed.media_type == "multipart/related"
    boundary = parsed.param("boundary")
    assert boundary is not None
    soap_part, wsdl_part = parse_multipart(body, boundary)
    response = parse_soap_message(
        soap_part.body,
        content_type="text/xml; charset=UTF-8",
        role=MessageRole.RESPONSE,
    )
    verify_request_hash(response, request)
    wsdl = parse_xml(wsdl_part.body)
    locations = [
        e.get("location")
        for e in wsdl.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address")
    ]
    assert locations == [WSDL_ENDPOINT]
    assert pair.stub.received == []  # the service itself was never called


def _from_vector(data: bytes) -> bytes:
    # The vectors' members (EE/BUSINESS/consumer, .../producer) become the
    # pair's owners; the attachment parts are left byte for byte.
    return (
        data.replace(b">EE<", b">JP-TEST<")
        .replace(b">BUSINESS<", b">COM<")
        .replace(b">consumer<", b">1111<")
        .replace(b">producer<", b">2222<")
    )


def _answer_with_attachment(body: bytes, ctype: str) -> tuple[bytes, str]:
    request = parse_soap_message(body, content_type=ctype, role=MessageRole.REQUEST)
    wrapper = etree.Element("{http://cosumer.ee.xroad.net}testResponse")
    wrapper.text = "ok"
    soap = build_response_from(request, wrapper)
    parts = [
        MimePart.create([("Content-Type", "text/xml; charset=UTF-8")], soap),
        MimePart.create(
            [("Content-Type", "application/octet-stream"), ("X-Reply", "yes")],
            b"\x00\x01reply",
        ),
    ]
    boundary = "replyboundary42"
    return (
        build_multipart(parts, boundary),
        f'multipart/related; type="text/xml"; boundary={boundary}',
    )


@pytest.mark.parametrize(
    ("vector", "ctype"),
    [
        (
            "soap-swa-attachment-request.mime",
            "multipart/related; charset=UTF-8; boundary=jetty771207119h3h10dty",
        ),
        (
            "soap-mtom-request.mime",
            'Multipart/Related; start-info="application/soap+xml"; '
            'type="application/xop+xml"; boundary="jetty771207119h3h10dty"',
        ),
    ],
)
async def test_attachments_pass_through(
    pair: Pair, xroad_vectors: Path, vector: str, ctype: str
) -> None:
    db, owner, now = pair.b.res.db, pair.b.owner, real_now()
    wsdl = build_wsdl(
        WsdlSpec("t", "http://cosumer.ee.xroad.net", pair.stub_url,
                 (WsdlOperation(code="test", version="v1"),))
    )  # fmt: skip
    url = pair.stub_url + "?wsdl=test"
    await services.add_wsdl_description(db, "t", owner, url=url, wsdl=wsdl, now=now)
    await services.set_description_enabled(db, "t", owner, url, enabled=True, now=now)
    await access_rights.grant_access(db, "t", owner, "test", pair.a.owner, now=now)
    pair.stub.responder = _answer_with_attachment

    original = _from_vector((xroad_vectors / vector).read_bytes())
    status, rtype, body = await pair.post(original, ctype)
    assert status == 200, body.decode(errors="replace")

    # What the service got: the same parts, headers and bytes.
    ((got_type, got_body),) = pair.stub.received
    got = parse_content_type(got_type)
    sent = parse_content_type(ctype)
    assert got.media_type == sent.media_type
    assert got.param("type") == sent.param("type")
    got_boundary, sent_boundary = got.param("boundary"), sent.param("boundary")
    assert got_boundary and sent_boundary
    got_parts = parse_multipart(got_body, got_boundary)
    # Nested multiparts arrive flattened (as X-Road passes them on): every
    # leaf part with its own headers and bytes.
    request = parse_soap_message(original, content_type=ctype, role=MessageRole.REQUEST)
    assert request.soap_part is not None and request.attachments
    assert [(p.headers, p.body) for p in got_parts] == [
        (p.headers, p.body) for p in (request.soap_part, *request.attachments)
    ]
    if "swa" in vector:
        assert b"Client-Header: FooBar" in got_body

    # The answer comes back with its attachment and a valid requestHash.
    rparsed = parse_content_type(rtype)
    rboundary = rparsed.param("boundary")
    assert rparsed.media_type == "multipart/related" and rboundary
    _, attachment = parse_multipart(body, rboundary)
    assert attachment.header("X-Reply") == "yes"
    assert attachment.body == b"\x00\x01reply"
    response = parse_soap_message(body, content_type=rtype, role=MessageRole.RESPONSE)
    verify_request_hash(response, request.soap)
