"""The sans-IO X-Road message protocol 4.0: SOAP messages, headers, faults, MIME.

No sockets, no HTTP client, no database and no clock here: bytes and objects in,
bytes and objects out (h11's model).
"""

from __future__ import annotations

from .faults import build_fault, fault_from_element, fault_from_error, parse_fault
from .headers import (
    NS_REPRESENTATION,
    PROTOCOL_VERSION,
    REQUEST_HASH_SHA512,
    RepresentedParty,
    XRoadHeader,
    build_header,
    parse_header,
)
from .mime import (
    ContentType,
    MimePart,
    build_multipart,
    make_boundary,
    parse_content_type,
    parse_multipart,
)
from .request_hash import add_request_hash, compute_request_hash, verify_request_hash
from .soap import (
    MessageRole,
    SoapMessage,
    build_request,
    build_response_from,
    parse_soap_message,
)

__all__ = [
    "NS_REPRESENTATION",
    "PROTOCOL_VERSION",
    "REQUEST_HASH_SHA512",
    "ContentType",
    "MessageRole",
    "MimePart",
    "RepresentedParty",
    "SoapMessage",
    "XRoadHeader",
    "add_request_hash",
    "build_fault",
    "build_header",
    "build_multipart",
    "build_request",
    "build_response_from",
    "compute_request_hash",
    "fault_from_element",
    "fault_from_error",
    "make_boundary",
    "parse_content_type",
    "parse_fault",
    "parse_header",
    "parse_multipart",
    "parse_soap_message",
    "verify_request_hash",
]
