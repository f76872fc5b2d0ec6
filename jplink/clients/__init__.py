"""The I/O seam for outbound calls: aiohttp clients and in-memory fakes.

Only this package talks to other components over the network, and only
:mod:`jplink.clients.http` translates aiohttp's exceptions into
:class:`~jplink.errors.TransportError`.
"""

from __future__ import annotations

from .ca import (
    AiohttpCaEnrolmentClient,
    CaEnrolmentClient,
    EnrolmentRequest,
    FakeCaEnrolmentClient,
    IssuedCertificate,
    build_enrolment_body,
    parse_enrolment_response,
)
from .http import HttpResponse, map_transport_errors, request_json

__all__ = [
    "AiohttpCaEnrolmentClient",
    "CaEnrolmentClient",
    "EnrolmentRequest",
    "FakeCaEnrolmentClient",
    "HttpResponse",
    "IssuedCertificate",
    "build_enrolment_body",
    "map_transport_errors",
    "parse_enrolment_response",
    "request_json",
]
