"""WSDL 1.1 generation: document/literal wrapped, SOAP 1.1, X-Road headers.

One WSDL describes every operation of one provider subsystem (PR-MESS §4):

- ``types`` holds the identifier and header schemas (so the WSDL is complete
  and nothing is fetched) and one schema in the subsystem's namespace with a
  request wrapper ``<code>`` and a response wrapper ``<code>Response`` per
  operation (the wrapper's local name equals the service code, PR-MESS §2.3);
- every binding operation declares the header fields ``client``, ``service``,
  ``id``, ``userId``, ``issue`` and ``protocolVersion`` in its input *and*
  output, because "the service MUST echo all request header fields in the
  response";
- ``xrd:version`` sits under ``binding/operation`` and ``xrd:title`` /
  ``xrd:notes`` under ``portType/operation/documentation`` (PR-MESS §4).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from lxml import etree

from .schemas import HEADER_FIELDS, NS_IDENTIFIERS, NS_XROAD, schema_text

__all__ = [
    "NS_SOAP_BINDING",
    "NS_WSDL",
    "NS_XSD",
    "WsdlField",
    "WsdlOperation",
    "WsdlSpec",
    "XsdType",
    "build_wsdl",
]

NS_WSDL = "http://schemas.xmlsoap.org/wsdl/"
NS_SOAP_BINDING = "http://schemas.xmlsoap.org/wsdl/soap/"
NS_XSD = "http://www.w3.org/2001/XMLSchema"
_HTTP_TRANSPORT = "http://schemas.xmlsoap.org/soap/http"


class XsdType(enum.Enum):
    """Built-in XML Schema types a field may have (value: the local name)."""

    STRING = "string"
    INTEGER = "long"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "dateTime"


@dataclass(frozen=True, slots=True)
class WsdlField:
    """One element of a request wrapper or a result row."""

    name: str
    type: XsdType
    required: bool = False


@dataclass(frozen=True, slots=True)
class WsdlOperation:
    """One service: request parameters, row fields, annotations.

    ``paged`` adds an optional ``pageOffset`` to the request and an optional
    ``nextOffset`` to the response.
    """

    code: str
    version: str
    title: str = ""
    notes: str = ""
    inputs: tuple[WsdlField, ...] = ()
    row: tuple[WsdlField, ...] = ()
    paged: bool = True


@dataclass(frozen=True, slots=True)
class WsdlSpec:
    """Everything one subsystem's WSDL describes."""

    name: str
    namespace: str
    address: str
    operations: tuple[WsdlOperation, ...]


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


def _w(parent: etree._Element, local: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, _q(NS_WSDL, local), attrs)


def _x(parent: etree._Element, local: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, _q(NS_XSD, local), attrs)


def _embedded_schema(name: str) -> etree._Element:
    schema = etree.fromstring(schema_text(name))
    for imp in schema.findall(_q(NS_XSD, "import")):
        # Inside one WSDL the imported namespace is a sibling schema.
        imp.attrib.pop("schemaLocation", None)
    return schema


def _sequence(parent: etree._Element, fields: tuple[WsdlField, ...]) -> etree._Element:
    seq = _x(_x(parent, "complexType"), "sequence")
    for f in fields:
        attrs = {"name": f.name, "type": f"xsd:{f.type.value}"}
        if not f.required:
            attrs["minOccurs"] = "0"
        _x(seq, "element", **attrs)
    return seq


def _operation_types(schema: etree._Element, op: WsdlOperation) -> None:
    request = _x(schema, "element", name=op.code)
    inputs = op.inputs
    if op.paged:
        inputs = (*inputs, WsdlField("pageOffset", XsdType.INTEGER))
    _sequence(request, inputs)
    row_type = _x(schema, "complexType", name=f"{op.code}Row")
    row_seq = _x(row_type, "sequence")
    for f in op.row:
        _x(row_seq, "element", name=f.name, type=f"xsd:{f.type.value}", minOccurs="0")
    response = _x(schema, "element", name=f"{op.code}Response")
    seq = _x(_x(response, "complexType"), "sequence")
    _x(
        seq,
        "element",
        name="row",
        type=f"svc:{op.code}Row",
        minOccurs="0",
        maxOccurs="unbounded",
    )
    if op.paged:
        _x(seq, "element", name="nextOffset", type="xsd:long", minOccurs="0")


def _types(root: etree._Element, spec: WsdlSpec) -> None:
    types = _w(root, "types")
    types.append(_embedded_schema("identifiers.xsd"))
    types.append(_embedded_schema("xroad.xsd"))
    # The schema declares its own prefixes (other names than the root's, so
    # lxml really writes them here) and stays valid when a tool extracts it
    # from the WSDL: QName values do not carry their namespace.
    schema = etree.SubElement(
        types,
        _q(NS_XSD, "schema"),
        {"targetNamespace": spec.namespace, "elementFormDefault": "qualified"},
        nsmap={"xsd": NS_XSD, "svc": spec.namespace},
    )
    for op in spec.operations:
        _operation_types(schema, op)


def _binding_operation(binding: etree._Element, op: WsdlOperation) -> None:
    bop = _w(binding, "operation", name=op.code)
    etree.SubElement(bop, _q(NS_SOAP_BINDING, "operation"), soapAction="")
    etree.SubElement(bop, _q(NS_XROAD, "version")).text = op.version
    for direction in ("input", "output"):
        io = _w(bop, direction)
        etree.SubElement(io, _q(NS_SOAP_BINDING, "body"), use="literal")
        for part in HEADER_FIELDS:
            etree.SubElement(
                io,
                _q(NS_SOAP_BINDING, "header"),
                message="tns:requestheader",
                part=part,
                use="literal",
            )


def build_wsdl(spec: WsdlSpec) -> bytes:
    """The WSDL of one provider subsystem.

    Args:
        spec: the subsystem's operations, namespace and service address.

    Returns:
        UTF-8 WSDL bytes.

    Raises:
        ValueError: two operations with the same code (a caller bug).
    """
    codes = [op.code for op in spec.operations]
    if len(set(codes)) != len(codes):
        raise ValueError("operation codes must be unique")
    nsmap = {
        "wsdl": NS_WSDL,
        "soap": NS_SOAP_BINDING,
        "xs": NS_XSD,
        "xrd": NS_XROAD,
        "id": NS_IDENTIFIERS,
        "tns": spec.namespace,
    }
    root = etree.Element(
        _q(NS_WSDL, "definitions"),
        nsmap=nsmap,  # type: ignore[arg-type]
        name=spec.name,
        targetNamespace=spec.namespace,
    )
    _types(root, spec)
    header = _w(root, "message", name="requestheader")
    for part in HEADER_FIELDS:
        _w(header, "part", name=part, element=f"xrd:{part}")
    for op in spec.operations:
        for suffix in ("", "Response"):
            msg = _w(root, "message", name=f"{op.code}{suffix}")
            _w(msg, "part", name="body", element=f"tns:{op.code}{suffix}")
    port_type = _w(root, "portType", name=f"{spec.name}PortType")
    for op in spec.operations:
        pop = _w(port_type, "operation", name=op.code)
        doc = _w(pop, "documentation")
        etree.SubElement(doc, _q(NS_XROAD, "title")).text = op.title or op.code
        if op.notes:
            etree.SubElement(doc, _q(NS_XROAD, "notes")).text = op.notes
        _w(pop, "input", message=f"tns:{op.code}")
        _w(pop, "output", message=f"tns:{op.code}Response")
    binding = _w(
        root, "binding", name=f"{spec.name}Binding", type=f"tns:{spec.name}PortType"
    )
    etree.SubElement(
        binding,
        _q(NS_SOAP_BINDING, "binding"),
        style="document",
        transport=_HTTP_TRANSPORT,
    )
    for op in spec.operations:
        _binding_operation(binding, op)
    service = _w(root, "service", name=f"{spec.name}Service")
    port = _w(
        service, "port", name=f"{spec.name}Port", binding=f"tns:{spec.name}Binding"
    )
    etree.SubElement(port, _q(NS_SOAP_BINDING, "address"), location=spec.address)
    return bytes(
        etree.tostring(root, encoding="UTF-8", xml_declaration=True, pretty_print=True)
    )
