"""OCSP responses served to peers (PR-MESSTRANSP §2.2, PROTOCOLS.md §5.2).

Before it trusts a provider's authentication certificate, a consumer's
security server needs OCSP responses for the provider's chain. It asks the
provider itself, on port 5577::

    GET /?cert=<hex SHA-1>&cert=...&cert_hash=<hex SHA-256>&cert_hash=...
    Accept: multipart/related

X-Road 7.x responders read ``cert`` (SHA-1 of the DER certificate); 7.4+
clients add ``cert_hash`` (SHA-256) for every certificate and 8.x responders
read only that. The answer is ``multipart/related;
type="application/ocsp-response"; charset=UTF-8; boundary=...`` with one
``application/ocsp-response`` part (raw DER) per requested certificate, in
request order; if any response is missing the responder answers HTTP 500.

Sans-IO: this module builds and parses both sides. Nothing here is trusted:
each returned response must still pass
:func:`jplink.security.ocsp.verify_ocsp_response` for its certificate.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import MalformedMessage, NotFound
from ..security.ocsp import parse_ocsp_response
from .mime import MimePart, build_multipart, parse_content_type, parse_multipart
from .transport import EncodedTransport, PartType

__all__ = [
    "DEFAULT_MAX_CERTS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "OCSP_PEERS_PORT",
    "SHA1_PARAM",
    "SHA256_PARAM",
    "CertHashes",
    "OcspPeerRequest",
    "answer_ocsp_peer_request",
    "build_ocsp_peer_request",
    "build_ocsp_peer_response",
    "parse_ocsp_peer_request",
    "parse_ocsp_peer_response",
]

#: The default port of the OCSP-for-peers service.
OCSP_PEERS_PORT = 5577
#: Query parameter of the SHA-1 certificate hash (read by X-Road 7.x).
SHA1_PARAM = "cert"
#: Query parameter of the SHA-256 certificate hash (X-Road 7.4+ clients, 8.x).
SHA256_PARAM = "cert_hash"
#: Most certificates one request may name (a chain is a handful).
DEFAULT_MAX_CERTS = 16
#: Largest response body a client accepts.
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024

_SHA1_HEX = re.compile(r"[0-9a-fA-F]{40}")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_RELATED = "multipart/related"


@dataclass(frozen=True, slots=True)
class CertHashes:
    """How a request names one certificate: its SHA-1 and/or SHA-256.

    Attributes:
        sha1: SHA-1 of the DER certificate (20 bytes), or None when an 8.x
            client sent only ``cert_hash``.
        sha256: SHA-256 of the DER certificate (32 bytes), or None when a
            pre-7.4 client sent only ``cert``.

    Raises:
        ValueError: neither hash, or a hash of the wrong length.
    """

    sha1: bytes | None
    sha256: bytes | None

    def __post_init__(self) -> None:
        if self.sha1 is None and self.sha256 is None:
            raise ValueError("CertHashes needs at least one hash")
        if self.sha1 is not None and len(self.sha1) != 20:
            raise ValueError("a SHA-1 hash has 20 bytes")
        if self.sha256 is not None and len(self.sha256) != 32:
            raise ValueError("a SHA-256 hash has 32 bytes")

    @classmethod
    def of(cls, cert: x509.Certificate) -> CertHashes:
        """Both hashes of a certificate."""
        der = cert.public_bytes(Encoding.DER)
        # SHA-1 only names the certificate for X-Road 7.x responders (a cache
        # key); no trust rests on it: the responses are verified afterwards.
        sha1 = hashlib.sha1(der, usedforsecurity=False).digest()
        return cls(sha1, hashlib.sha256(der).digest())

    def matches(self, cert: x509.Certificate) -> bool:
        """Whether this names ``cert``: every hash given must match."""
        mine = CertHashes.of(cert)
        return (self.sha1 is None or self.sha1 == mine.sha1) and (
            self.sha256 is None or self.sha256 == mine.sha256
        )


@dataclass(frozen=True, slots=True)
class OcspPeerRequest:
    """A parsed request: the certificates whose responses are wanted, in order."""

    certificates: tuple[CertHashes, ...]


def build_ocsp_peer_request(certs: Sequence[x509.Certificate]) -> str:
    """The request target for the OCSP-for-peers service.

    Writes every ``cert`` (SHA-1) parameter, then every ``cert_hash``
    (SHA-256), in certificate order, as X-Road's
    ``CertHashBasedOcspResponderClient`` does, so that 7.x and 8.x responders
    can both answer.

    Args:
        certs: the certificates (the peer's chain without the root).

    Returns:
        The path and query, e.g. ``/?cert=ab..&cert_hash=cd..``.

    Raises:
        ValueError: no certificates.
    """
    if not certs:
        raise ValueError("name at least one certificate")
    hashes = [CertHashes.of(cert) for cert in certs]
    query = [(SHA1_PARAM, h.sha1.hex()) for h in hashes if h.sha1 is not None]
    query += [(SHA256_PARAM, h.sha256.hex()) for h in hashes if h.sha256 is not None]
    return "/?" + urlencode(query)


def _hex_values(
    pairs: list[tuple[str, str]], name: str, pattern: re.Pattern[str]
) -> list[bytes]:
    values = [value for key, value in pairs if key == name]
    for value in values:
        if not pattern.fullmatch(value):
            raise MalformedMessage(
                f"Query parameter {name} is not a hex certificate hash",
                detail={"value": value[:80]},
            )
    return [bytes.fromhex(value) for value in values]


def parse_ocsp_peer_request(
    target: str, *, max_certs: int = DEFAULT_MAX_CERTS
) -> OcspPeerRequest:
    """Parse the request target a peer sent to port 5577.

    Args:
        target: the request target (``/?cert=...``) or just its query string.
        max_certs: refuse requests naming more certificates.

    Returns:
        The certificates, in request order.

    Raises:
        MalformedMessage: (``InvalidMessage``) a malformed query, no
            certificate named, a value that is not a hex SHA-1/SHA-256,
            ``cert`` and ``cert_hash`` lists of different lengths, or too many
            certificates.
    """
    query = target.split("?", 1)[1] if "?" in target else target
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError as exc:
        raise MalformedMessage(f"Malformed query string: {exc}") from None
    sha1 = _hex_values(pairs, SHA1_PARAM, _SHA1_HEX)
    sha256 = _hex_values(pairs, SHA256_PARAM, _SHA256_HEX)
    count = max(len(sha1), len(sha256))
    if count == 0:
        raise MalformedMessage("The request names no certificate hash")
    if count > max_certs:
        raise MalformedMessage(f"The request names more than {max_certs} certificates")
    if sha1 and sha256 and len(sha1) != len(sha256):
        raise MalformedMessage(
            "The request has different numbers of cert and cert_hash values"
        )
    return OcspPeerRequest(
        tuple(
            CertHashes(
                sha1[i] if sha1 else None,
                sha256[i] if sha256 else None,
            )
            for i in range(count)
        )
    )


def build_ocsp_peer_response(
    responses: Sequence[bytes], *, boundary: str | None = None
) -> EncodedTransport:
    """The multipart/related answer with one DER OCSP response per part.

    Args:
        responses: DER OCSP responses, in request order.
        boundary: the multipart boundary; a fresh random one by default.

    Returns:
        The Content-Type and body.

    Raises:
        ValueError: no responses, an empty one, or a bad ``boundary``.
    """
    if not responses or any(not der for der in responses):
        raise ValueError("give one non-empty DER response per certificate")
    boundary = boundary or f"jplink{secrets.token_hex(16)}"
    parts = [
        MimePart.create([("Content-Type", PartType.OCSP_RESPONSE.value)], der)
        for der in responses
    ]
    return EncodedTransport(
        content_type=(
            f'{_RELATED}; type="{PartType.OCSP_RESPONSE.value}"; '
            f"charset=UTF-8; boundary={boundary}"
        ),
        body=build_multipart(parts, boundary),
    )


def answer_ocsp_peer_request(
    request: OcspPeerRequest, lookup: Callable[[CertHashes], bytes | None]
) -> EncodedTransport:
    """Answer a request from a cache of own OCSP responses.

    Args:
        request: the parsed request.
        lookup: finds the cached DER response for a certificate, or None.

    Returns:
        The response to send with HTTP 200.

    Raises:
        NotFound: a requested response is not cached; X-Road then answers
            HTTP 500, and a client never gets a partial answer.
    """
    found: list[bytes] = []
    for hashes in request.certificates:
        der = lookup(hashes)
        if not der:
            name = (hashes.sha256 or hashes.sha1 or b"").hex()
            raise NotFound(
                f"No OCSP response for certificate {name}", detail={"cert": name}
            )
        found.append(der)
    return build_ocsp_peer_response(found)


def parse_ocsp_peer_response(
    body: bytes,
    content_type: str,
    *,
    expected: int,
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
) -> tuple[bytes, ...]:
    """Split a peer's answer into DER OCSP responses (not yet verified).

    Args:
        body: the HTTP body.
        content_type: the HTTP Content-Type.
        expected: how many certificates the request named; X-Road's client
            requires exactly that many responses.
        max_bytes: refuse larger bodies.

    Returns:
        The responses in request order; verify each with
        :func:`jplink.security.ocsp.verify_ocsp_response` for its certificate.

    Raises:
        MalformedMessage: ``InvalidContentType`` for a Content-Type other than
            ``multipart/related`` or a part that is not
            ``application/ocsp-response``; ``InvalidMessage`` for an oversized
            body, a broken multipart or the wrong number of responses.
        OcspError: a part that is not a DER OCSP response.
    """
    if len(body) > max_bytes:
        raise MalformedMessage(
            f"OCSP answer of {len(body)} bytes exceeds the limit",
            detail={"max_bytes": max_bytes},
        )
    ctype = parse_content_type(content_type)
    boundary = ctype.param("boundary")
    if ctype.media_type != _RELATED or not boundary:
        raise MalformedMessage(
            f"Expected multipart/related with a boundary, got {ctype.media_type}",
            code="InvalidContentType",
        )
    parts = parse_multipart(bytes(body), boundary, max_parts=max(expected, 1))
    responses: list[bytes] = []
    for part in parts:
        media_type = part.content_type.media_type
        if media_type != PartType.OCSP_RESPONSE.value:
            raise MalformedMessage(
                f"Unexpected {media_type} part in an OCSP answer",
                code="InvalidContentType",
            )
        parse_ocsp_response(part.body)  # DER check only; trust comes later
        responses.append(part.body)
    if len(responses) != expected:
        raise MalformedMessage(
            f"Expected {expected} OCSP responses, got {len(responses)}",
            detail={"expected": expected, "received": len(responses)},
        )
    return tuple(responses)
