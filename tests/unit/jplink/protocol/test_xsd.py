"""The header elements we build validate against X-Road's own XSDs.

The XSDs are read from the shared vectors folder (never copied); the import of
identifiers.xsd and the W3C xml.xsd are mapped with a resolver.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
from lxml import etree

from jplink.identifiers import (
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    SecurityServerId,
    ServiceId,
    identifier_to_xml,
)
from jplink.ns import NS_IDENTIFIERS, NS_XROAD
from jplink.protocol import XRoadHeader, build_request, parse_soap_message

# Just enough of http://www.w3.org/2001/xml.xsd for xroad.xsd's xml:lang.
XML_XSD = b"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
  targetNamespace="http://www.w3.org/XML/1998/namespace">
  <xs:attribute name="lang" type="xs:language"/>
</xs:schema>"""


class _Resolver(etree.Resolver):
    def __init__(self, vectors: Path) -> None:
        super().__init__()
        self.vectors = vectors

    def resolve(self, system_url: str, public_id: str, context: object) -> object:  # type: ignore[override]
        if system_url.endswith("identifiers.xsd"):
            return self.resolve_filename(
                str(self.vectors / "xsd-identifiers.xsd"), context
            )
        if system_url == "http://www.w3.org/2001/xml.xsd":
            return self.resolve_string(XML_XSD, context)
        return None


@pytest.fixture(scope="module")
def schema(xroad_vectors: Path) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_Resolver(xroad_vectors))
    doc = etree.parse(str(xroad_vectors / "xsd-xroad.xsd"), parser)
    return etree.XMLSchema(doc)


HEADER = XRoadHeader(
    client=ClientId("JP", "COM", "1234", "sub"),
    service=ServiceId("JP", "GOV", "5678", None, "getData", "v2"),
    id="abc-1",
    user_id="JP1",
    issue="",
    security_server=SecurityServerId("JP", "GOV", "5678", "ss1"),
    request_hash="QUJD",
)


def test_every_built_header_field_validates(schema):
    body = etree.Element("{urn:x}getData")
    header = dataclasses.replace(HEADER, request_hash=None)
    msg = parse_soap_message(build_request(header, body), content_type="text/xml")
    assert msg.envelope is not None
    fields = list(msg.envelope[0])
    assert len(fields) == 7
    for field in fields:
        schema.assertValid(etree.ElementTree(copy.deepcopy(field)))


def test_request_hash_element_validates(schema):
    from jplink.protocol import build_header

    parent = etree.Element("h", nsmap={"xroad": NS_XROAD, "id": NS_IDENTIFIERS})
    build_header(HEADER, parent)
    (request_hash,) = parent.findall(f"{{{NS_XROAD}}}requestHash")
    schema.assertValid(etree.ElementTree(copy.deepcopy(request_hash)))


def test_schema_rejects_a_broken_field(schema):
    element = identifier_to_xml(HEADER.client, f"{{{NS_XROAD}}}client")
    element.insert(0, element[1])  # memberClass before xRoadInstance
    assert not schema.validate(etree.ElementTree(element))


TYPES = {
    ClientId: "XRoadClientIdentifierType",
    ServiceId: "XRoadServiceIdentifierType",
    SecurityServerId: "XRoadSecurityServerIdentifierType",
    GlobalGroupId: "XRoadGlobalGroupIdentifierType",
    LocalGroupId: "XRoadLocalGroupIdentifierType",
}


@pytest.mark.parametrize(
    "ident",
    [
        ClientId("JP", "COM", "1"),
        ClientId("JP", "COM", "1", "s"),
        ServiceId("JP", "COM", "1", "s", "c", "v1"),
        ServiceId("JP", "COM", "1", None, "c"),
        SecurityServerId("JP", "COM", "1", "ss"),
        GlobalGroupId("JP", "g"),
        LocalGroupId("g"),
    ],
)
def test_identifier_xml_validates_against_its_schema_type(xroad_vectors, ident):
    # A throw-away schema declaring one element of the specific identifier type.
    wrapper = f"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
        xmlns:id="{NS_IDENTIFIERS}" targetNamespace="urn:t"
        elementFormDefault="qualified">
      <xs:import namespace="{NS_IDENTIFIERS}"
                 schemaLocation="{(xroad_vectors / "xsd-identifiers.xsd").as_uri()}"/>
      <xs:element name="e" type="id:{TYPES[type(ident)]}"/>
    </xs:schema>""".encode()
    schema = etree.XMLSchema(etree.fromstring(wrapper))
    schema.assertValid(etree.ElementTree(identifier_to_xml(ident, "{urn:t}e")))
