"""OCSP responder (RFC 6960) for the certificates this CA issues.

The pure core parses requests (:mod:`.request`) and builds and signs
responses (:mod:`.responder`); :mod:`.service` maps failures to response
statuses and reuses signatures for nonce-less requests; :mod:`.http` is the
thin aiohttp binding (``setup_ocsp``).
"""

from __future__ import annotations

from .request import CertIdHash, CertQuery, OcspRequest, parse_ocsp_request
from .responder import GOOD, UNKNOWN, CertStatusAnswer, OcspResponder, error_response
from .service import OcspService, PresignedCache, StatusLookup

__all__ = [
    "GOOD",
    "UNKNOWN",
    "CertIdHash",
    "CertQuery",
    "CertStatusAnswer",
    "OcspRequest",
    "OcspResponder",
    "OcspService",
    "PresignedCache",
    "StatusLookup",
    "error_response",
    "parse_ocsp_request",
]
