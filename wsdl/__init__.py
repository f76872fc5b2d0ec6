"""WSDL and OpenAPI for X-Road services: X-Road XSDs, generation, parsing.

Package data: ``xroad.xsd`` (header fields, WSDL annotations) and
``identifiers.xsd``, JP-LINK's own schema texts.
"""

from __future__ import annotations

from .generate import WsdlField, WsdlOperation, WsdlSpec, XsdType, build_wsdl
from .parse import ParsedOperation, ParsedWsdl, parse_wsdl
from .schemas import HEADER_FIELDS, schema_text, validate_header_element

__all__ = [
    "HEADER_FIELDS",
    "ParsedOperation",
    "ParsedWsdl",
    "WsdlField",
    "WsdlOperation",
    "WsdlSpec",
    "XsdType",
    "build_wsdl",
    "parse_wsdl",
    "schema_text",
    "validate_header_element",
]
