"""SOAP messages: the real X-Road vectors, own negatives, builders, XSD checks."""

from __future__ import annotations

import pytest
from lxml import etree

from jplink.errors import MalformedMessage, SoapFault, XmlSecurityError
from jplink.identifiers import ClientId, SecurityServerId, ServiceId
from jplink.ns import NS_IDENTIFIERS, NS_SOAP_ENV, NS_XROAD
from jplink.protocol import (
    MessageRole,
    RepresentedParty,
    XRoadHeader,
    build_fault,
    build_request,
    build_response_from,
    parse_soap_message,
)

TEXT_XML = "text/xml; charset=utf-8"
SWA_TYPE = "multipart/related; charset=UTF-8; boundary=jetty771207119h3h10dty"
MTOM_TYPE = (
    'Multipart/Related; start-info="application/soap+xml"; '
    'type="application/xop+xml"; boundary="jetty771207119h3h10dty"'
)
WSDL_TYPE = (
    'multipart/related; type="text/xml"; charset=UTF-8; '
    "boundary=xroadZTLLyIMMYnAYliBumWCqHJYAhutxNf"
)


def test_getstate_request_vector(xroad_vectors):
    data = (xroad_vectors / "soap-getstate-request.xml").read_bytes()
    msg = parse_soap_message(data, content_type=TEXT_XML)
    assert msg.client == ClientId("EE", "BUSINESS", "consumer")
    assert msg.service == ServiceId("EE", "BUSINESS", "producer", None, "getState")
    assert msg.id == "411d6755661409fed365ad8135f8210be07613da"
    assert msg.protocol_version == "4.0"
    assert msg.user_id == "EE:PIN:abc4567"
    assert msg.issue == ""
    assert msg.role is MessageRole.REQUEST
    assert msg.body_tag == f"{{{NS_XROAD}}}getState"
    assert msg.soap == data  # raw bytes kept exactly
    assert msg.attachments == ()
    assert not msg.is_multipart
    assert msg.envelope is not None
    assert msg.envelope.findtext(f".//{{{NS_XROAD}}}getState") == "aäõ"
    assert "aäõ".encode() in msg.soap


def test_getstate_response_vector_is_a_response(xroad_vectors):
    data = (xroad_vectors / "soap-getstate-response.xml").read_bytes()
    msg = parse_soap_message(data, content_type=TEXT_XML, role=MessageRole.RESPONSE)
    assert msg.role is MessageRole.RESPONSE
    with pytest.raises(MalformedMessage) as info:
        parse_soap_message(data, content_type=TEXT_XML, role=MessageRole.REQUEST)
    assert info.value.code == "InconsistentHeaders"


def test_swa_vector_keeps_attachment_headers(xroad_vectors):
    data = (xroad_vectors / "soap-swa-attachment-request.mime").read_bytes()
    msg = parse_soap_message(data, content_type=SWA_TYPE)
    assert msg.service.service_code == "test"
    assert msg.is_multipart and not msg.is_mtom
    # The SOAP part body is the bytes between its header block and the LF
    # that belongs to the next delimiter.
    start = data.index(b"<?xml")
    assert msg.soap == data[start : data.index(b"\n--jetty771207119h3h10dty", start)]
    (attachment,) = msg.attachments
    assert attachment.header("client-header") == "FooBar"
    assert attachment.raw_headers == b"Content-Type: text/plain\nClient-Header: FooBar"
    assert attachment.body == b"blaah"


def test_mtom_vector(xroad_vectors):
    data = (xroad_vectors / "soap-mtom-request.mime").read_bytes()
    msg = parse_soap_message(data, content_type=MTOM_TYPE)
    assert msg.is_mtom
    assert msg.soap_part is not None and msg.soap_part.content_id == "foo"
    (attachment,) = msg.attachments
    assert attachment.content_id == "42a7ee0a-20ee-426b-a135-094d72bc138f@example.org"
    assert attachment.content_type.param("name") == "attachment.txt"
    assert attachment.body == b"foobar"


def test_getwsdl_response_vector(xroad_vectors):
    data = (xroad_vectors / "soap-getWsdl-response.mime").read_bytes()
    msg = parse_soap_message(data, content_type=WSDL_TYPE)
    assert msg.role is MessageRole.RESPONSE
    assert msg.service.service_code == "getWsdl"
    assert msg.request_hash is not None and msg.request_hash.startswith("nO1xqQVm")
    assert msg.request_hash_algorithm == "http://www.w3.org/2001/04/xmlenc#sha512"
    (wsdl,) = msg.attachments
    assert wsdl.content_type.media_type == "text/xml"
    assert wsdl.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<wsdl:def')
    assert wsdl.body.endswith(b"</wsdl:definitions>\n")


@pytest.mark.parametrize(
    ("vector", "code"),
    [
        ("soap-NEG-missing-body.xml", "MissingBody"),
        ("soap-NEG-wrong-protocolVersion.xml", "InvalidProtocolVersion"),
        ("soap-NEG-inconsistent-headers.xml", "InconsistentHeaders"),
    ],
)
def test_negative_vectors(xroad_vectors, vector, code):
    data = (xroad_vectors / vector).read_bytes()
    with pytest.raises(MalformedMessage) as info:
        parse_soap_message(data, content_type=TEXT_XML)
    assert info.value.code == code


# --- own negatives, named after their defect ----------------------------------

CLIENT = (
    '<xroad:client id:objectType="MEMBER"><id:xRoadInstance>EE</id:xRoadInstance>'
    "<id:memberClass>GOV</id:memberClass><id:memberCode>1</id:memberCode>"
    "</xroad:client>"
)
SERVICE = (
    '<xroad:service id:objectType="SERVICE"><id:xRoadInstance>EE</id:xRoadInstance>'
    "<id:memberClass>GOV</id:memberClass><id:memberCode>2</id:memberCode>"
    "<id:serviceCode>getX</id:serviceCode></xroad:service>"
)
ID = "<xroad:id>m1</xroad:id>"
VERSION = "<xroad:protocolVersion>4.0</xroad:protocolVersion>"
BODY = "<SOAP-ENV:Body><xroad:getX/></SOAP-ENV:Body>"


def envelope(header: str | None, body: str = BODY) -> bytes:
    head = "" if header is None else f"<SOAP-ENV:Header>{header}</SOAP-ENV:Header>"
    return (
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{NS_SOAP_ENV}" xmlns:xroad="{NS_XROAD}" '
        f'xmlns:id="{NS_IDENTIFIERS}">{head}{body}</SOAP-ENV:Envelope>'
    ).encode()


NEGATIVES = {
    "envelope-no-header": (envelope(None), "MissingHeader"),
    "envelope-missing-client": (envelope(SERVICE + ID + VERSION), "MissingHeaderField"),
    "envelope-missing-service": (envelope(CLIENT + ID + VERSION), "MissingHeaderField"),
    "envelope-missing-id": (envelope(CLIENT + SERVICE + VERSION), "MissingHeaderField"),
    "envelope-empty-id": (
        envelope(CLIENT + SERVICE + "<xroad:id/>" + VERSION),
        "MissingHeaderField",
    ),
    "envelope-missing-protocolversion": (
        envelope(CLIENT + SERVICE + ID),
        "MissingHeaderField",
    ),
    "envelope-duplicate-id": (
        envelope(CLIENT + SERVICE + ID + ID + VERSION),
        "DuplicateHeaderField",
    ),
    "envelope-duplicate-client": (
        envelope(CLIENT + CLIENT + SERVICE + ID + VERSION),
        "DuplicateHeaderField",
    ),
    "envelope-missing-objecttype": (
        envelope(
            CLIENT.replace(' id:objectType="MEMBER"', "") + SERVICE + ID + VERSION
        ),
        "InvalidXml",
    ),
    "envelope-client-is-a-service": (
        envelope(
            SERVICE.replace("xroad:service", "xroad:client") + SERVICE + ID + VERSION
        ),
        "InvalidXml",
    ),
    "envelope-bad-client-characters": (
        envelope(CLIENT.replace(">1<", ">1/2<") + SERVICE + ID + VERSION),
        "InvalidClientIdentifier",
    ),
    "envelope-empty-body": (
        envelope(CLIENT + SERVICE + ID + VERSION, "<SOAP-ENV:Body/>"),
        "InvalidBody",
    ),
    "envelope-two-body-elements": (
        envelope(
            CLIENT + SERVICE + ID + VERSION,
            "<SOAP-ENV:Body><xroad:getX/><xroad:getX/></SOAP-ENV:Body>",
        ),
        "InvalidBody",
    ),
    "envelope-text-in-body": (
        envelope(CLIENT + SERVICE + ID + VERSION, "<SOAP-ENV:Body>hi</SOAP-ENV:Body>"),
        "InvalidBody",
    ),
    "envelope-protocolversion-4.1": (
        envelope(CLIENT + SERVICE + ID + VERSION.replace("4.0", "4.1")),
        "InvalidProtocolVersion",
    ),
    "envelope-element-before-header": (
        envelope("").replace(b"<SOAP-ENV:Header>", b"<x/><SOAP-ENV:Header>"),
        "InvalidMessage",
    ),
    "envelope-soap12-namespace": (
        envelope(CLIENT + SERVICE + ID + VERSION).replace(
            NS_SOAP_ENV.encode(), b"http://www.w3.org/2003/05/soap-envelope"
        ),
        "InvalidMessage",
    ),
    "envelope-header-field-with-children": (
        envelope(CLIENT + SERVICE + "<xroad:id><a/></xroad:id>" + VERSION),
        "InvalidXml",
    ),
}


@pytest.mark.parametrize("name", sorted(NEGATIVES))
def test_own_negatives(name):
    data, code = NEGATIVES[name]
    with pytest.raises(MalformedMessage) as info:
        parse_soap_message(data, content_type="text/xml")
    assert info.value.code == code, name


def test_envelope_malformed_xml_gives_invalid_xml():
    with pytest.raises(XmlSecurityError) as info:
        parse_soap_message(envelope(CLIENT)[:-10], content_type="text/xml")
    assert info.value.code == "InvalidXml"


@pytest.mark.parametrize(
    ("content_type", "code"),
    [
        ("application/json", "InvalidContentType"),
        ("text/xml; charset=ISO-8859-1", "InvalidContentType"),
        ("multipart/related", "InvalidContentType"),  # no boundary
        ("multipart/related; boundary=b; start=<nope>", "InvalidContentType"),
        ("text/xml; charset", "InvalidContentType"),
    ],
)
def test_bad_content_types(content_type, code):
    body = b"--b\r\nContent-Type: text/xml\r\n\r\n" + envelope(None) + b"\r\n--b--\r\n"
    with pytest.raises(MalformedMessage) as info:
        parse_soap_message(body, content_type=content_type)
    assert info.value.code == code


def test_multipart_soap_part_must_be_xml():
    body = b"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n"
    with pytest.raises(MalformedMessage) as info:
        parse_soap_message(body, content_type="multipart/related; boundary=b")
    assert info.value.code == "InvalidContentType"


def test_fault_body_raises_the_fault():
    data = build_fault("Server.ServerProxy.AccessDenied", "no", detail="abc")
    with pytest.raises(SoapFault) as info:
        parse_soap_message(data, content_type="text/xml")
    assert info.value.faultcode == "Server.ServerProxy.AccessDenied"
    assert info.value.faultdetail == "abc"


# --- builders ------------------------------------------------------------------

HEADER = XRoadHeader(
    client=ClientId("JP", "COM", "1234", "client"),
    service=ServiceId("JP", "GOV", "5678", "prov", "getData", "v1"),
    id="2f1c4c1e-0000-4000-8000-000000000001",
    user_id="JP12345",
    issue="ticket-7",
    security_server=SecurityServerId("JP", "GOV", "5678", "ss1"),
    represented_party=RepresentedParty("9999", "COM"),
)


def wrapper(name: str, text: str = "データ") -> etree._Element:
    element = etree.Element(f"{{urn:example}}{name}", nsmap={"ex": "urn:example"})
    etree.SubElement(element, "{urn:example}value").text = text
    return element


def test_build_request_round_trips():
    data = build_request(HEADER, wrapper("getData"))
    msg = parse_soap_message(data, content_type="text/xml; charset=UTF-8")
    assert msg.header == HEADER
    assert msg.role is MessageRole.REQUEST
    assert msg.soap == data


def test_build_request_rejects_misuse():
    with pytest.raises(ValueError, match="serviceCode"):
        build_request(HEADER, wrapper("other"))


def test_build_response_echoes_the_request_header():
    request = parse_soap_message(
        build_request(HEADER, wrapper("getData")), content_type="text/xml"
    )
    data = build_response_from(request, wrapper("getDataResponse", "結果"))
    response = parse_soap_message(data, content_type="text/xml")
    assert response.role is MessageRole.RESPONSE
    assert response.header == HEADER
    assert response.envelope is not None and request.envelope is not None
    # Same header fields, same order (PR-MESS: echo in the same order).
    assert [c.tag for c in response.envelope[0]] == [c.tag for c in request.envelope[0]]
    with pytest.raises(ValueError):
        build_response_from(request, wrapper("getData"))


def test_build_response_drops_a_request_hash_from_the_echo(xroad_vectors):
    data = (xroad_vectors / "soap-getWsdl-response.mime").read_bytes()
    msg = parse_soap_message(data, content_type=WSDL_TYPE)
    rebuilt = build_response_from(msg, etree.Element(f"{{{NS_XROAD}}}getWsdlResponse"))
    assert b"requestHash" not in rebuilt
