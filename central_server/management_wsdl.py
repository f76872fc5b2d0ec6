"""The WSDL of the management services (``GET /managementservice/wsdl``).

X-Road routes every management request except ``authCertReg`` through the
central operator's *management security server*: its ``MANAGEMENT``
subsystem (the ``managementServiceProvider`` of the global configuration)
offers ``clientReg``, ``clientDeletion`` ... as ordinary X-Road services whose
address is this central server's ``/managementservice/manage/`` endpoint.
A security server learns services from a WSDL (PR-MESS §4), so the
management security server's administrator imports this one, written here
from :class:`~jplink.protocol.management.ManagementRequestType` (X-Road ships
its own ``managementservices.wsdl``; this is ours).

The document is WSDL 1.1, document/literal: one operation per management
request type, request wrapper ``xroad:<code>`` and response wrapper
``xroad:<code>Response`` in the X-Road namespace (the body names of
PR-MSERV), the X-Road header fields declared on input and output, and a
``soap:address`` pointing at ``/managementservice/manage/`` on the host the
WSDL was fetched from.
"""

from __future__ import annotations

from aiohttp import web
from lxml import etree

from jplink.ns import NS_XROAD
from jplink.protocol.management import ManagementRequestType
from wsdl.generate import NS_SOAP_BINDING, NS_WSDL, NS_XSD

__all__ = ["MANAGEMENT_WSDL_PATH", "build_management_wsdl", "management_wsdl"]

MANAGEMENT_WSDL_PATH = "/managementservice/wsdl"

_HTTP_TRANSPORT = "http://schemas.xmlsoap.org/soap/http"
_HEADER_FIELDS = ("client", "service", "id", "userId", "protocolVersion")


def _operations() -> tuple[str, ...]:
    # authCertReg is sent directly to the central server (PR-MSERV §2.3),
    # never through the management security server.
    return tuple(
        t.value
        for t in ManagementRequestType
        if t is not ManagementRequestType.AUTH_CERT_REG
    )


def _w(parent: etree._Element, local: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{NS_WSDL}}}{local}", attrs)


def _types(root: etree._Element, codes: tuple[str, ...]) -> None:
    types = _w(root, "types")
    schema = etree.SubElement(
        types,
        f"{{{NS_XSD}}}schema",
        targetNamespace=NS_XROAD,
        elementFormDefault="qualified",
    )
    for code in codes:
        for name in (code, f"{code}Response"):
            element = etree.SubElement(schema, f"{{{NS_XSD}}}element", name=name)
            sequence = etree.SubElement(
                etree.SubElement(element, f"{{{NS_XSD}}}complexType"),
                f"{{{NS_XSD}}}sequence",
            )
            # The fields of each body are PR-MSERV's request.xsd; the
            # central server checks them, the WSDL only names the wrappers.
            etree.SubElement(
                sequence,
                f"{{{NS_XSD}}}any",
                processContents="lax",
                minOccurs="0",
                maxOccurs="unbounded",
            )
    for name in _HEADER_FIELDS:
        etree.SubElement(schema, f"{{{NS_XSD}}}element", name=name, type="xs:anyType")


def _messages(root: etree._Element, codes: tuple[str, ...]) -> None:
    header = _w(root, "message", name="requestHeader")
    for name in _HEADER_FIELDS:
        _w(header, "part", name=name, element=f"xrd:{name}")
    for code in codes:
        for name in (code, f"{code}Response"):
            message = _w(root, "message", name=name)
            _w(message, "part", name="body", element=f"xrd:{name}")


def _port_type(root: etree._Element, codes: tuple[str, ...]) -> None:
    port_type = _w(root, "portType", name="managementServicePortType")
    for code in codes:
        operation = _w(port_type, "operation", name=code)
        doc = _w(operation, "documentation")
        etree.SubElement(
            doc, f"{{{NS_XROAD}}}title"
        ).text = f"Management request {code} (PR-MSERV)"
        _w(operation, "input", message=f"xrd:{code}")
        _w(operation, "output", message=f"xrd:{code}Response")


def _binding(root: etree._Element, codes: tuple[str, ...]) -> None:
    binding = _w(
        root,
        "binding",
        name="managementServiceBinding",
        type="xrd:managementServicePortType",
    )
    etree.SubElement(
        binding,
        f"{{{NS_SOAP_BINDING}}}binding",
        style="document",
        transport=_HTTP_TRANSPORT,
    )
    for code in codes:
        operation = _w(binding, "operation", name=code)
        etree.SubElement(operation, f"{{{NS_SOAP_BINDING}}}operation", soapAction="")
        for direction in ("input", "output"):
            io = _w(operation, direction)
            etree.SubElement(io, f"{{{NS_SOAP_BINDING}}}body", use="literal")
            for name in _HEADER_FIELDS:
                etree.SubElement(
                    io,
                    f"{{{NS_SOAP_BINDING}}}header",
                    message="xrd:requestHeader",
                    part=name,
                    use="literal",
                )


def build_management_wsdl(address: str) -> bytes:
    """The management services' WSDL.

    Args:
        address: the ``soap:address`` location, the central server's
            ``/managementservice/manage/`` URL.

    Returns:
        UTF-8 WSDL 1.1 bytes.

    Raises:
        ValueError: ``address`` is not an http(s) URL (a caller bug).
    """
    if not address.startswith(("http://", "https://")):
        raise ValueError("address must be an http(s) URL")
    codes = _operations()
    nsmap = {"wsdl": NS_WSDL, "soap": NS_SOAP_BINDING, "xs": NS_XSD, "xrd": NS_XROAD}
    root = etree.Element(
        f"{{{NS_WSDL}}}definitions",
        nsmap=nsmap,  # type: ignore[arg-type]
        name="managementService",
        targetNamespace=NS_XROAD,
    )
    _types(root, codes)
    _messages(root, codes)
    _port_type(root, codes)
    _binding(root, codes)
    service = _w(root, "service", name="managementService")
    port = _w(
        service,
        "port",
        name="managementServicePort",
        binding="xrd:managementServiceBinding",
    )
    etree.SubElement(port, f"{{{NS_SOAP_BINDING}}}address", location=address)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


async def management_wsdl(request: web.Request) -> web.Response:
    """GET the management services' WSDL, addressed at this host's endpoint."""
    from .management_api import MANAGEMENT_PATH

    address = str(request.url.with_path(MANAGEMENT_PATH).with_query(None))
    return web.Response(
        body=build_management_wsdl(address), content_type="text/xml", charset="utf-8"
    )
