"""WSDL generation (checked with lxml XMLSchema and zeep) and WSDL parsing."""

from __future__ import annotations

import copy

import pytest
import zeep
from lxml import etree

from jplink.errors import MalformedMessage, XmlSecurityError
from wsdl import (
    HEADER_FIELDS,
    WsdlField,
    WsdlOperation,
    WsdlSpec,
    XsdType,
    build_wsdl,
    parse_wsdl,
    schema_text,
    validate_header_element,
)

NS = {
    "wsdl": "http://schemas.xmlsoap.org/wsdl/",
    "soap": "http://schemas.xmlsoap.org/wsdl/soap/",
    "xs": "http://www.w3.org/2001/XMLSchema",
    "xrd": "http://x-road.eu/xsd/xroad.xsd",
}
TNS = "http://jplink.example/adapter/DATA"


def _spec() -> WsdlSpec:
    return WsdlSpec(
        name="DATA",
        namespace=TNS,
        address="http://127.0.0.1:8090/soap",
        operations=(
            WsdlOperation(
                "peopleByName",
                "v1",
                "People by name",
                "Exact match",
                inputs=(
                    WsdlField("name", XsdType.STRING, required=True),
                    WsdlField("minScore", XsdType.DECIMAL),
                ),
                row=(
                    WsdlField("id", XsdType.INTEGER),
                    WsdlField("born", XsdType.DATE),
                    WsdlField("active", XsdType.BOOLEAN),
                ),
            ),
            WsdlOperation(
                "countPeople", "v2", "Count", row=(WsdlField("n", XsdType.INTEGER),)
            ),
        ),
    )


@pytest.fixture
def wsdl_root():
    return etree.fromstring(build_wsdl(_spec()))


def _schemas(root):
    return root.findall("wsdl:types/xs:schema", NS)


def test_every_schema_in_types_compiles_and_validates_instances(wsdl_root):
    ids, xrd, tns = _schemas(wsdl_root)
    # The service schema stands alone (built-in types and its own namespace).
    service_schema = etree.XMLSchema(etree.ElementTree(copy.deepcopy(tns)))
    ok = etree.fromstring(
        f'<t:peopleByName xmlns:t="{TNS}"><t:name>Aiko</t:name>'
        "<t:minScore>1.5</t:minScore><t:pageOffset>10</t:pageOffset></t:peopleByName>"
    )
    assert service_schema.validate(ok), service_schema.error_log
    missing = etree.fromstring(f'<t:peopleByName xmlns:t="{TNS}"/>')
    assert not service_schema.validate(missing)
    bad_type = etree.fromstring(
        f'<t:peopleByName xmlns:t="{TNS}"><t:name>a</t:name>'
        "<t:minScore>1 OR 1=1</t:minScore></t:peopleByName>"
    )
    assert not service_schema.validate(bad_type)
    response = etree.fromstring(
        f'<t:peopleByNameResponse xmlns:t="{TNS}"><t:row><t:id>1</t:id>'
        "<t:born>1990-04-01</t:born><t:active>true</t:active></t:row>"
        "<t:nextOffset>1</t:nextOffset></t:peopleByNameResponse>"
    )
    assert service_schema.validate(response), service_schema.error_log
    # The embedded header schemas compile together.
    assert xrd.get("targetNamespace") == NS["xrd"]
    assert ids.get("targetNamespace") == "http://x-road.eu/xsd/identifiers"


def test_headers_in_every_operation_input_and_output(wsdl_root):
    ops = wsdl_root.findall("wsdl:binding/wsdl:operation", NS)
    assert [op.get("name") for op in ops] == ["peopleByName", "countPeople"]
    for op in ops:
        for direction in ("input", "output"):
            parts = [
                h.get("part") for h in op.findall(f"wsdl:{direction}/soap:header", NS)
            ]
            assert tuple(parts) == HEADER_FIELDS
    header_parts = wsdl_root.findall(
        "wsdl:message[@name='requestheader']/wsdl:part", NS
    )
    assert [p.get("element") for p in header_parts] == [
        f"xrd:{h}" for h in HEADER_FIELDS
    ]
    assert wsdl_root.find("wsdl:binding/soap:binding", NS).get("style") == "document"
    bodies = wsdl_root.findall("wsdl:binding/wsdl:operation/*/soap:body", NS)
    assert {b.get("use") for b in bodies} == {"literal"}


def test_annotations(wsdl_root):
    versions = [
        v.text for v in wsdl_root.findall("wsdl:binding/wsdl:operation/xrd:version", NS)
    ]
    assert versions == ["v1", "v2"]
    doc = wsdl_root.find("wsdl:portType/wsdl:operation/wsdl:documentation", NS)
    assert doc.find("xrd:title", NS).text == "People by name"
    assert doc.find("xrd:notes", NS).text == "Exact match"


def test_header_element_types_match_x_road_reference(xroad_vectors):
    ours = etree.fromstring(schema_text("xroad.xsd"))
    theirs = etree.parse(str(xroad_vectors / "xsd-xroad.xsd")).getroot()

    def types(root):
        out = {}
        for el in root.findall("xs:element", NS):
            t = el.get("type")
            out[el.get("name")] = t.split(":")[-1] if t else "complex"
        return out

    mine, ref = types(ours), types(theirs)
    for name in (*HEADER_FIELDS, "requestHash", "securityServer", "version"):
        assert mine[name] == ref[name], name
    # requestHash carries the algorithmId attribute in both.
    for root in (ours, theirs):
        assert (
            root.find(
                "xs:element[@name='requestHash']//xs:attribute[@name='algorithmId']", NS
            )
            is not None
        )


def test_identifier_types_match_x_road_reference(xroad_vectors):
    ours = etree.fromstring(schema_text("identifiers.xsd"))
    theirs = etree.parse(str(xroad_vectors / "xsd-identifiers.xsd")).getroot()
    for type_name in (
        "XRoadClientIdentifierType",
        "XRoadServiceIdentifierType",
        "XRoadSecurityServerIdentifierType",
    ):

        def seq(root, name=type_name):
            ct = root.find(f"xs:complexType[@name='{name}']", NS)
            return [
                (e.get("ref"), e.get("minOccurs"))
                for e in ct.iterfind(".//xs:element", NS)
            ]

        assert seq(ours) == seq(theirs)


def test_header_validation_against_our_xsd(xroad_vectors):
    request = etree.parse(str(xroad_vectors / "soap-getstate-request.xml")).getroot()
    header = request.find("{http://schemas.xmlsoap.org/soap/envelope/}Header")
    for element in header:
        validate_header_element(element)
    client = copy.deepcopy(header[0])
    del client.attrib["{http://x-road.eu/xsd/identifiers}objectType"]
    with pytest.raises(MalformedMessage) as err:
        validate_header_element(client)
    assert err.value.code == "InvalidXml"
    service = copy.deepcopy(header[1])
    service.remove(service[-1])  # no serviceCode
    with pytest.raises(MalformedMessage):
        validate_header_element(service)


def test_zeep_loads_the_wsdl(tmp_path):
    path = tmp_path / "data.wsdl"
    path.write_bytes(build_wsdl(_spec()))
    client = zeep.Client(str(path))
    op = client.service._binding._operations["peopleByName"]
    header_names = [e.name for e in op.input.header.type.elements_nested[0][1]]
    assert header_names == list(HEADER_FIELDS)
    envelope = client.create_message(
        client.service, "peopleByName", name="Aiko", _soapheaders={"id": "1"}
    )
    assert envelope.find(f".//{{{TNS}}}name").text == "Aiko"


def test_parse_round_trip():
    parsed = parse_wsdl(build_wsdl(_spec()))
    assert parsed.target_namespace == TNS
    assert [(o.name, o.version, o.title, o.notes) for o in parsed.operations] == [
        ("peopleByName", "v1", "People by name", "Exact match"),
        ("countPeople", "v2", "Count", None),
    ]
    assert parsed.addresses == ("http://127.0.0.1:8090/soap",)


def test_parse_x_road_test_wsdl(xroad_vectors):
    raw = (xroad_vectors / "soap-getWsdl-response.mime").read_bytes()
    boundary = b"--xroadZTLLyIMMYnAYliBumWCqHJYAhutxNf"
    wsdl_part = raw.split(boundary)[2].split(b"\r\n\r\n", 1)[-1]
    if wsdl_part == raw.split(boundary)[2]:
        wsdl_part = raw.split(boundary)[2].split(b"\n\n", 1)[1]
    parsed = parse_wsdl(wsdl_part.strip())
    assert [(o.name, o.version) for o in parsed.operations] == [
        ("getRandom", "v1"),
        ("helloService", "v1"),
    ]
    assert parsed.target_namespace == "http://test.x-road.fi/producer"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"<a/>", MalformedMessage),
        (b'<!DOCTYPE x [<!ENTITY e "e">]><a>&e;</a>', XmlSecurityError),
        (b"not xml", XmlSecurityError),
    ],
)
def test_parse_refuses(data, error):
    with pytest.raises(error):
        parse_wsdl(data)


def test_duplicate_operation_codes_are_a_programming_error():
    spec = _spec()
    with pytest.raises(ValueError):
        build_wsdl(
            WsdlSpec(spec.name, spec.namespace, spec.address, spec.operations * 2)
        )
