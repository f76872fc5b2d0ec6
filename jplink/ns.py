"""Namespace URIs used on the wire. Constants only."""

from __future__ import annotations

__all__ = [
    "NS_DS",
    "NS_HASHCHAIN",
    "NS_IDENTIFIERS",
    "NS_MANAGEMENT",
    "NS_SOAP_ENV",
    "NS_XADES",
    "NS_XROAD",
    "NS_XSD",
    "NS_XSI",
]

NS_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NS_XROAD = "http://x-road.eu/xsd/xroad.xsd"
NS_IDENTIFIERS = "http://x-road.eu/xsd/identifiers"
NS_MANAGEMENT = "http://x-road.eu/xsd/management"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_XADES = "http://uri.etsi.org/01903/v1.3.2#"
NS_HASHCHAIN = "http://cyber.ee/hashchain"
NS_XSD = "http://www.w3.org/2001/XMLSchema"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
