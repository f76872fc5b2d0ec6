"""Shared and private parameters: real vectors, queries, XSD validity, errors."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from jplink.errors import (
    CertificateValidationError,
    GlobalConfError,
    NotFound,
    XmlSecurityError,
)
from jplink.globalconf import (
    CostType,
    CsrFormat,
    Member,
    PrivateParameters,
    SecurityServer,
    SharedParameters,
    SharedSource,
    auth_cert_hash,
    parse_private_parameters,
    parse_shared_parameters,
    serialize_private_parameters,
    serialize_shared_parameters,
)
from jplink.globalconf.model import GlobalSettings
from jplink.identifiers import ClientId, GlobalGroupId, SecurityServerId

from .helpers import load_schema, rsa_pair

DEV_COM_1234 = ClientId("DEV", "COM", "1234")
DEV_COM_4321 = ClientId("DEV", "COM", "4321")


@pytest.fixture
def v6_bytes(xroad_vectors):
    return (xroad_vectors / "gconf-V6-shared-params.xml").read_bytes()


@pytest.fixture
def v6(v6_bytes):
    return parse_shared_parameters(v6_bytes)


def test_v6_shared_params_model(v6):
    assert v6.instance_identifier == "DEV"
    assert v6.global_settings.ocsp_freshness_seconds == 3600
    assert [c.code for c in v6.global_settings.member_classes] == ["COM", "GOV", "ORG"]
    assert [m.id for m in v6.members] == [DEV_COM_1234, DEV_COM_4321]
    first = v6.members[0]
    assert first.name == "Test member"
    assert first.class_description == "Commercial"
    assert [(s.id.subsystem_code, s.name) for s in first.subsystems] == [
        ("MANAGEMENT", "Management services"),
        ("TestService", "Test service"),
        ("TestSaved", "Test saved"),
        ("test-consumer", "Test consumer"),
    ]
    ss0, ss1 = v6.security_servers
    assert ss0.id == SecurityServerId("DEV", "COM", "1234", "SS0")
    assert ss0.address == "ss0"
    assert ss0.auth_cert_hashes == (
        base64.b64decode("7Meh1uzLrM0z4DWhf30PPzICihqTHGgRSmWczyAIWB8="),
    )
    # IDREFs resolved: id1, id2, id3 are 1234's subsystems, id6 is 4321/TestClient.
    assert ss0.clients == (
        DEV_COM_1234.subsystem("MANAGEMENT"),
        DEV_COM_1234.subsystem("TestService"),
        DEV_COM_1234.subsystem("TestSaved"),
        DEV_COM_4321.subsystem("TestClient"),
    )
    assert ss1.id.owner == DEV_COM_4321
    assert ss1.clients == (
        DEV_COM_4321.subsystem("TestClient"),
        DEV_COM_1234.subsystem("test-consumer"),
    )
    (group,) = v6.global_groups
    assert group.id == GlobalGroupId("DEV", "security-server-owners")
    assert group.members == (DEV_COM_1234, DEV_COM_4321)


def test_v6_cas_and_tsa(v6):
    test_ca, new_ca = v6.approved_cas
    assert test_ca.name == "Test CA"
    assert test_ca.authentication_only is False
    assert test_ca.certificate_profile_info.endswith(
        "FiVRKCertificateProfileInfoProvider"
    )
    # Certs are stored as base64 of PEM text in this file; still parsed.
    assert test_ca.top_ca.cert.subject.rfc4514_string() == "CN=Test CA,O=Test"
    (ocsp,) = test_ca.top_ca.ocsp
    assert ocsp.url == "http://testca:8888"
    assert ocsp.cost_type is CostType.FREE
    assert ocsp.cert is not None
    assert test_ca.acme_server is not None
    assert test_ca.acme_server.directory_url == "http://testca:8887"
    assert test_ca.default_csr_format is None
    assert new_ca.default_csr_format is CsrFormat.PEM
    (tsa,) = v6.approved_tsas
    assert (tsa.name, tsa.url, tsa.cost_type) == (
        "Test TSA",
        "http://testca:8899",
        CostType.FREE,
    )
    assert "Test TSA" in tsa.cert.subject.rfc4514_string()
    (source,) = v6.sources
    assert source.address == "cs"
    assert [c.subject.rfc4514_string() for c in source.internal_verification_certs] == [
        "CN=internalSigningKey"
    ]


def test_v6_queries(v6):
    assert [
        s.id.server_code
        for s in v6.servers_for_client(DEV_COM_4321.subsystem("TestClient"))
    ] == ["SS0", "SS1"]
    assert v6.servers_for_client(DEV_COM_1234.subsystem("nope")) == ()
    assert v6.member_name(DEV_COM_1234.subsystem("TestService")) == "Test member"
    with pytest.raises(NotFound):
        v6.member_name(ClientId("DEV", "GOV", "999"))
    assert v6.is_registered(DEV_COM_1234.subsystem("MANAGEMENT"))
    assert not v6.is_registered(DEV_COM_1234.subsystem("nope"))
    assert v6.global_groups_of(DEV_COM_4321) == (
        GlobalGroupId("DEV", "security-server-owners"),
    )
    assert v6.global_groups_of(DEV_COM_4321.subsystem("TestClient")) == ()
    assert v6.server(SecurityServerId("DEV", "COM", "4321", "SS1")).address == "ss1"
    with pytest.raises(NotFound):
        v6.global_group(GlobalGroupId("DEV", "none"))
    anchors = v6.trusted_ca_certs()
    assert len(anchors) == 2
    assert v6.approved_ca_for_issuer(anchors[1]).name == "New CA"
    assert v6.ocsp_responders(anchors[0])[0].url == "http://testca:8888"
    assert len(v6.ocsp_responder_certs()) == 2
    assert v6.tsa_certs() == (v6.approved_tsas[0].cert,)
    stranger = rsa_pair("stranger")[1]
    with pytest.raises(CertificateValidationError):
        v6.approved_ca_for_issuer(stranger)
    with pytest.raises(CertificateValidationError):
        v6.ocsp_responders(stranger)
    with pytest.raises(CertificateValidationError):
        v6.server_for_auth_cert(stranger)


def test_auth_cert_lookup_by_sha256_of_der():
    _, cert = rsa_pair("ss-auth")
    owner = ClientId("JP", "COM", "1")
    expected = hashlib.sha256(cert.public_bytes(Encoding.DER)).digest()
    assert auth_cert_hash(cert) == expected
    server = SecurityServer(
        SecurityServerId("JP", "COM", "1", "ss1"), auth_cert_hashes=(expected,)
    )
    params = SharedParameters(
        "JP",
        GlobalSettings(),
        sources=(SharedSource("cs.example", (rsa_pair()[1],)),),
        members=(Member(owner, "Commercial", "One"),),
        security_servers=(server,),
    )
    assert params.server_for_auth_cert(cert) is server
    again = parse_shared_parameters(serialize_shared_parameters(params))
    assert again.server_for_auth_cert(cert).id == server.id


def test_v3_asic_trust_with_pem_certs(xroad_vectors):
    params = parse_shared_parameters(
        (xroad_vectors / "asic-trust-DEV-shared-params.xml").read_bytes()
    )
    (ca,) = params.approved_cas
    assert ca.top_ca.cert.subject.rfc4514_string() == "CN=Test CA,O=Test"
    (ocsp,) = ca.top_ca.ocsp
    assert ocsp.cert is not None
    assert ocsp.cert.subject.rfc4514_string() == "CN=Test OCSP,O=Test"
    assert ocsp.cost_type is None
    assert params.tsa_certs()[0].subject.rfc4514_string() == "CN=Test TSA,O=Test"
    assert params.members[0].subsystems[0].name is None  # no subsystemName in V3


def test_v3_mlog_trust_with_der_certs(xroad_vectors):
    params = parse_shared_parameters(
        (xroad_vectors / "mlog-trust-CS-shared-params.xml").read_bytes()
    )
    assert params.instance_identifier == "CS"
    assert "X-Road Test CA CN" in params.trusted_ca_certs()[0].subject.rfc4514_string()
    assert len(params.verification_certs(external=False)) == 2
    assert params.member_name(ClientId("CS", "GOV", "0245437-2")) == "TestGov"


def test_private_params(xroad_vectors):
    params = parse_private_parameters(
        (xroad_vectors / "gconf-V6-private-params.xml").read_bytes()
    )
    assert isinstance(params, PrivateParameters)
    assert params.instance_identifier == "DEV"
    assert params.time_stamping_interval_seconds == 60
    ms = params.management_service
    assert ms.auth_cert_reg_service_address == "https://cs:4001/managementservice/"
    assert ms.provider_id == DEV_COM_1234.subsystem("MANAGEMENT")
    assert ms.auth_cert_reg_service_cert is not None
    assert ms.auth_cert_reg_service_cert.subject.rfc4514_string() == "CN=localhost"
    assert params.configuration_anchors == ()


@pytest.mark.parametrize(
    "name",
    [
        "gconf-V6-shared-params.xml",
        "asic-trust-DEV-shared-params.xml",
        "mlog-trust-CS-shared-params.xml",
    ],
)
def test_generated_shared_params_validate_and_round_trip(xroad_vectors, name):
    schema = load_schema(xroad_vectors, "xsd-shared-parameters-v6.xsd")
    # Sanity: the schema accepts X-Road's own file.
    schema.assertValid(etree.parse(str(xroad_vectors / "gconf-V6-shared-params.xml")))
    params = parse_shared_parameters((xroad_vectors / name).read_bytes())
    out = serialize_shared_parameters(params)
    schema.assertValid(etree.fromstring(out).getroottree())
    assert parse_shared_parameters(out) == params
    assert serialize_shared_parameters(params) == out  # deterministic


def test_generated_private_params_validate_and_round_trip(xroad_vectors):
    schema = load_schema(xroad_vectors, "xsd-private-parameters-v3.xsd")
    params = parse_private_parameters(
        (xroad_vectors / "gconf-V6-private-params.xml").read_bytes()
    )
    out = serialize_private_parameters(params)
    schema.assertValid(etree.fromstring(out).getroottree())
    assert parse_private_parameters(out) == params


def test_schema_catches_broken_output(xroad_vectors, v6):
    # The validation used above is not vacuous: a misordered document fails.
    schema = load_schema(xroad_vectors, "xsd-shared-parameters-v6.xsd")
    root = etree.fromstring(serialize_shared_parameters(v6))
    settings = root.find("globalSettings")
    assert settings is not None
    root.remove(settings)
    root.insert(1, settings)
    assert not schema.validate(root.getroottree())


def _edit(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"<owner>id0</owner>", b"<owner>id99</owner>", "unknown id"),
        (b"<owner>id0</owner>", b"<owner>id1</owner>", "must be a member"),
        (b"<client>id6</client>", b"<client>nope</client>", "unknown id"),
        (b'<member id="id5">', b'<member id="id0">', "Duplicate xml id"),
        (b"<ocspFreshnessSeconds>3600", b"<ocspFreshnessSeconds>soon", "integer"),
        (b"<authenticationOnly>false", b"<authenticationOnly>maybe", "boolean"),
        (b"<costType>FREE</costType>", b"<costType>CHEAP</costType>", "unknown value"),
        (b"<cert>LS0tLS1CRUdJTi", b"<cert>!!!!LS0tLS1CRUdJTi", "base64"),
        (b"<cert>LS0tLS1CRUdJTi", b"<cert>AAAALS0tLS1CRUdJTi", "certificate"),
        (b"<authCertHash>7Meh", b"<authCertHash>*Meh", "base64"),
        (
            b"<serverCode>SS0</serverCode>",
            b"<serverCode>S/S0</serverCode>",
            "forbidden",
        ),
        (b"<memberCode>1234</memberCode>", b"<memberCode>4321</memberCode>", "twice"),
        (b"<instanceIdentifier>DEV</instanceIdentifier>", b"", "instanceIdentifier"),
        (b"<name>Test member</name>", b"", "<name>"),
        (b"<globalSettings>", b"<globalSettingz>", "globalSettings"),
        (b"<subsystemCode>MANAGEMENT</subsystemCode>", b"<x>1</x>", "subsystemCode"),
        (b'ns2:objectType="MEMBER"', b'ns2:objectType="SERVER"', "groupMember"),
        (b"ns3:conf xmlns", b"ns3:cont xmlns", "root element"),
    ],
)
def test_malformed_shared_params(v6_bytes, old, new, message):
    data = _edit(v6_bytes, old, new)
    if old == b"ns3:conf xmlns":
        data = data.replace(b"</ns3:conf>", b"</ns3:cont>")
    if new == b"<globalSettingz>":
        data = data.replace(b"</globalSettings>", b"</globalSettingz>")
    with pytest.raises(GlobalConfError, match=message):
        parse_shared_parameters(data)


def test_malformed_xml_goes_through_the_hardened_parser(v6_bytes):
    with pytest.raises(XmlSecurityError):
        parse_shared_parameters(v6_bytes[:-20])
    evil = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'
    with pytest.raises(XmlSecurityError):
        parse_shared_parameters(evil)
    with pytest.raises(XmlSecurityError):
        parse_private_parameters(b"")


def test_extension_elements_are_ignored_but_stray_ones_refused(v6_bytes, v6):
    extended = _edit(
        v6_bytes,
        b"</ns3:conf>",
        b'<ext:future xmlns:ext="urn:x">1</ext:future></ns3:conf>',
    )
    assert parse_shared_parameters(extended) == v6
    stray = _edit(v6_bytes, b"</ns3:conf>", b"<member/></ns3:conf>")
    with pytest.raises(GlobalConfError, match="unexpected element"):
        parse_shared_parameters(stray)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            b"<timeStampingIntervalSeconds>60",
            b"<timeStampingIntervalSeconds>x",
            "integer",
        ),
        (
            b"<authCertRegServiceAddress>",
            b"<authCertRegServiceAddresz>",
            "authCertRegServiceAddress",
        ),
        (b"<ns2:memberCode>1234</ns2:memberCode>", b"", "memberCode"),
        (b'ns2:objectType="SUBSYSTEM"', b"", "objectType"),
    ],
)
def test_malformed_private_params(xroad_vectors, old, new, message):
    data = (xroad_vectors / "gconf-V6-private-params.xml").read_bytes()
    if old == b"<authCertRegServiceAddress>":
        data = data.replace(
            b"</authCertRegServiceAddress>", b"</authCertRegServiceAddresz>"
        )
    with pytest.raises(GlobalConfError, match=message):
        parse_private_parameters(_edit(data, old, new))


def test_v6_output_needs_a_source():
    with pytest.raises(ValueError, match="source"):
        serialize_shared_parameters(SharedParameters("JP", GlobalSettings()))


def test_model_refuses_dangling_references():
    owner = ClientId("JP", "COM", "1")
    server = SecurityServer(SecurityServerId("JP", "COM", "2", "ss"), clients=(owner,))
    with pytest.raises(ValueError, match="owner"):
        SharedParameters(
            "JP",
            GlobalSettings(),
            members=(Member(owner, "c", "n"),),
            security_servers=(server,),
        )
