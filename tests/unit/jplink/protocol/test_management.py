"""Management request bodies: build -> parse round trips, XSD, malformed input."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from jplink.errors import InvalidRequest, MalformedMessage
from jplink.identifiers import ClientId
from jplink.ns import NS_SOAP_ENV, NS_XROAD
from jplink.protocol import MessageRole, parse_soap_message
from jplink.protocol.management import (
    ManagementRequest,
    ManagementRequestType,
    build_management_body,
    build_management_request,
    build_management_response,
    check_address,
    parse_management_body,
    parse_management_request,
    parse_management_response,
)
from tests.support.pki import build_test_pki

from .test_management_helpers import OWNER, PROVIDER, SERVER

T = ManagementRequestType
SUB = OWNER.subsystem("sub1")


@pytest.fixture(scope="module")
def auth_der(now_module) -> bytes:
    pki = build_test_pki(now_module)
    cert = pki.root.cert
    return cert.public_bytes(Encoding.DER)


@pytest.fixture(scope="module")
def now_module():
    from tests.conftest import FIXED_NOW

    return FIXED_NOW


def _cases(auth: bytes) -> list[ManagementRequest]:
    return [
        ManagementRequest(
            T.AUTH_CERT_REG, SERVER, address="ss1.example.jp", auth_cert=auth
        ),
        ManagementRequest(T.AUTH_CERT_REG, SERVER, auth_cert=auth, dry_run=True),
        ManagementRequest(T.AUTH_CERT_DELETION, SERVER, auth_cert=auth),
        ManagementRequest(T.CLIENT_REG, SERVER, client=SUB, subsystem_name="Sub one"),
        ManagementRequest(T.CLIENT_REG, SERVER, client=OWNER),
        ManagementRequest(T.CLIENT_DELETION, SERVER, client=SUB),
        ManagementRequest(T.CLIENT_DISABLE, SERVER, client=SUB),
        ManagementRequest(T.CLIENT_ENABLE, SERVER, client=SUB),
        ManagementRequest(T.CLIENT_RENAME, SERVER, client=SUB, subsystem_name="New"),
        ManagementRequest(
            T.OWNER_CHANGE, SERVER, client=ClientId("JP-TEST", "GOV", "9")
        ),
        ManagementRequest(T.ADDRESS_CHANGE, SERVER, address="10.0.0.7"),
        ManagementRequest(T.MAINTENANCE_MODE_ENABLE, SERVER, message="Back at 10:00"),
        ManagementRequest(T.MAINTENANCE_MODE_ENABLE, SERVER),
        ManagementRequest(T.MAINTENANCE_MODE_DISABLE, SERVER),
    ]


class _Resolver(etree.Resolver):
    def __init__(self, vectors: Path) -> None:
        super().__init__()
        self.vectors = vectors

    def resolve(self, system_url, public_id, context):  # type: ignore[override]
        if system_url.endswith("identifiers.xsd"):
            return self.resolve_filename(
                str(self.vectors / "xsd-identifiers.xsd"), context
            )
        return None


@pytest.fixture(scope="module")
def schema(xroad_vectors: Path) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_Resolver(xroad_vectors))
    doc = etree.parse(str(xroad_vectors / "xsd-management-request.xsd"), parser)
    return etree.XMLSchema(doc)


def test_every_type_round_trips_and_validates(auth_der, schema):
    seen = set()
    for request in _cases(auth_der):
        seen.add(request.type)
        soap = build_management_request(
            request, service_provider=PROVIDER, message_id="id-1"
        )
        message = parse_soap_message(soap, content_type="text/xml; charset=UTF-8")
        assert message.client == SERVER.owner
        assert message.service.client == PROVIDER
        assert message.service.service_code == request.type.value
        assert parse_management_request(message) == request
        body = message.envelope.find(f"{{{NS_SOAP_ENV}}}Body")[0]
        schema.assertValid(body)
        answer = build_management_response(message, 394)
        parsed = parse_soap_message(
            answer, content_type="text/xml", role=MessageRole.RESPONSE
        )
        echoed = parse_management_response(parsed)
        assert echoed.request_id == 394
        assert echoed == ManagementRequest(**{**_fields(request), "request_id": 394})
    assert seen == set(T)


def _fields(request: ManagementRequest) -> dict:
    return {name: getattr(request, name) for name in request.__slots__}


def test_requests_with_request_id_validate(auth_der, schema):
    # request.xsd lets every request type carry requestId last.
    request = ManagementRequest(T.CLIENT_REG, SERVER, client=SUB)
    wrapper = build_management_body(request)
    etree.SubElement(wrapper, f"{{{NS_XROAD}}}requestId").text = "7"
    schema.assertValid(wrapper)
    assert parse_management_body(wrapper).request_id == 7


def _wrapper(xml: str) -> etree._Element:
    ids = 'xmlns:id="http://x-road.eu/xsd/identifiers"'
    return etree.fromstring(
        f'<xroad:{xml.split(">", 1)[0]} xmlns:xroad="{NS_XROAD}" {ids}>'
        + xml.split(">", 1)[1]
    )


SERVER_XML = (
    '<xroad:server id:objectType="SERVER"><id:xRoadInstance>JP-TEST</id:xRoadInstance>'
    "<id:memberClass>COM</id:memberClass><id:memberCode>1234</id:memberCode>"
    "<id:serverCode>ss1</id:serverCode></xroad:server>"
)


@pytest.mark.parametrize(
    ("xml", "code"),
    [
        ("maintenanceModeDisable></xroad:maintenanceModeDisable>", "InvalidXml"),
        (f"addressChange>{SERVER_XML}</xroad:addressChange>", "InvalidXml"),
        (
            f"maintenanceModeDisable>{SERVER_XML}{SERVER_XML}"
            "</xroad:maintenanceModeDisable>",
            "InvalidXml",
        ),
        (
            f"maintenanceModeDisable>{SERVER_XML}<xroad:extra/>"
            "</xroad:maintenanceModeDisable>",
            "InvalidXml",
        ),
        (
            f"authCertDeletion>{SERVER_XML}<xroad:authCert>@@not base64@@"
            "</xroad:authCert></xroad:authCertDeletion>",
            "InvalidXml",
        ),
        (
            f"maintenanceModeDisable>{SERVER_XML}<xroad:requestId>x1</xroad:requestId>"
            "</xroad:maintenanceModeDisable>",
            "InvalidXml",
        ),
        ("getSecrets></xroad:getSecrets>", "InvalidBody"),
        (
            'maintenanceModeDisable><xroad:server id:objectType="SERVER">'
            "<id:xRoadInstance>JP</id:xRoadInstance><id:memberClass>C</id:memberClass>"
            "<id:memberCode>a/b</id:memberCode><id:serverCode>s</id:serverCode>"
            "</xroad:server></xroad:maintenanceModeDisable>",
            "InvalidSecurityServer",
        ),
    ],
)
def test_malformed_bodies_are_refused(xml, code):
    with pytest.raises(MalformedMessage) as info:
        parse_management_body(_wrapper(xml))
    assert info.value.code == code


@pytest.mark.parametrize(
    "address",
    [
        "",
        "bad host",
        "-x.example",
        "a" * 64 + ".jp",
        "ss1:0",
        "ss1:65536",
        "ss1:http",
        "bad host:5500",
        "[::1]:x",
        "[bad]:5500",
    ],
)
def test_bad_addresses_are_refused(address):
    with pytest.raises(InvalidRequest):
        check_address(address)
    body = (
        f"addressChange>{SERVER_XML}<xroad:address>{address}</xroad:address>"
        "</xroad:addressChange>"
    )
    with pytest.raises(InvalidRequest):
        parse_management_body(_wrapper(body))


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "::1",
        "ss1.example.jp",
        "ss1",
        "127.0.0.1:5501",
        "ss1.example.jp:5500",
        "[::1]:5501",
    ],
)
def test_good_addresses_pass(address):
    assert check_address(address) == address


def test_authcert_base64_may_be_wrapped(auth_der):
    text = base64.encodebytes(auth_der).decode()
    body = (
        f"authCertDeletion>{SERVER_XML}<xroad:authCert>{text}</xroad:authCert>"
        "</xroad:authCertDeletion>"
    )
    assert parse_management_body(_wrapper(body)).auth_cert == auth_der


def test_response_without_request_id_is_refused():
    wrapper = _wrapper(
        f"maintenanceModeDisableResponse>{SERVER_XML}"
        "</xroad:maintenanceModeDisableResponse>"
    )
    with pytest.raises(MalformedMessage):
        parse_management_body(wrapper, response=True)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"type": T.CLIENT_REG},  # no client
        {"type": T.ADDRESS_CHANGE},  # no address
        {"type": T.MAINTENANCE_MODE_DISABLE, "client": SUB},  # foreign field
        {"type": T.CLIENT_DELETION, "client": SUB, "dry_run": True},
    ],
)
def test_misuse_of_the_dataclass_is_a_value_error(kwargs):
    with pytest.raises(ValueError):
        ManagementRequest(server=SERVER, **kwargs)
