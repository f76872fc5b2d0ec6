"""What both proxies share: replies, faults, transport headers, signature checks.

The proxies are split into a pure-ish exchange core (:mod:`.client_proxy`,
:mod:`.server_proxy`: bytes and headers in, a :class:`ProxyReply` out, no
aiohttp.web) and thin aiohttp handlers in :mod:`.app`.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from jplink.errors import JPLinkError, SoapFault
from jplink.protocol.faults import build_fault, fault_from_error
from jplink.protocol.transport import TransportMessage, signed_parts_of
from jplink.security.signature import (
    BatchSignatureCache,
    SignatureShapes,
    VerifiedSignature,
    verify_signature,
)

__all__ = [
    "BATCH_SIGNATURES",
    "FAULT_CONTENT_TYPE",
    "PROXY_VERSION",
    "SIGNATURE_SHAPES",
    "FaultPrefix",
    "ProxyReply",
    "TransportHeader",
    "fault_reply",
    "internal_fault",
    "verify_transport_signature",
]

_log = logging.getLogger(__name__)

FAULT_CONTENT_TYPE = "text/xml; charset=UTF-8"

#: The x-proxy-version we announce (PROTOCOLS.md §5.3).
PROXY_VERSION = "7.8.1"


class FaultPrefix(enum.Enum):
    """Fault-code prefixes (PROTOCOLS.md §7.3); the value is the wire prefix."""

    CLIENT = "Client"
    CLIENT_PROXY = "Server.ClientProxy"
    SERVER_PROXY = "Server.ServerProxy"


class TransportHeader(enum.Enum):
    """HTTP headers between security servers (PROTOCOLS.md §5.3)."""

    REQUEST_ID = "x-road-request-id"
    HASH_ALGORITHM = "x-hash-algorithm"
    ORIGINAL_CONTENT_TYPE = "x-original-content-type"
    ORIGINAL_SOAP_ACTION = "x-original-soapaction"
    PROXY_VERSION = "x-proxy-version"


@dataclass(frozen=True, slots=True)
class ProxyReply:
    """An HTTP answer of a proxy."""

    status: int
    content_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The fault code, when the reply is a fault (for logs and tests).
    fault_code: str | None = None


def fault_reply(
    err: JPLinkError,
    prefix: FaultPrefix,
    *,
    headers: Mapping[str, str] | None = None,
) -> ProxyReply:
    """Render an error as an X-Road SOAP fault (HTTP 500).

    A fault received from a peer keeps its own, already prefixed code
    ("Faults created by the server proxy arrive at the consumer already
    prefixed and are passed through", PROTOCOLS.md §7.3). The faultDetail is
    a fresh id that is also written to the application log, to correlate.

    Args:
        err: the error.
        prefix: our component's prefix.
        headers: extra HTTP headers of the reply.

    Returns:
        The fault reply.
    """
    detail = str(uuid.uuid4())
    code = (
        err.faultcode if isinstance(err, SoapFault) else err.with_prefix(prefix.value)
    )
    _log.warning("fault %s (%s): %s", code, detail, err.message)
    return ProxyReply(
        500,
        FAULT_CONTENT_TYPE,
        fault_from_error(err, prefix.value, detail=detail),
        dict(headers or {}),
        fault_code=code,
    )


def internal_fault(exc: BaseException, prefix: FaultPrefix) -> ProxyReply:
    """A fault for a bug: logged with its traceback, no details to the caller."""
    detail = str(uuid.uuid4())
    code = f"{prefix.value}.InternalError"
    _log.error("internal error (%s)", detail, exc_info=exc)
    return ProxyReply(
        500,
        FAULT_CONTENT_TYPE,
        build_fault(code, "Internal error", detail=detail),
        fault_code=code,
    )


#: Batch-signature documents verified by this process. A peer's batch of N
#: messages shares one document: it is verified once, then each message's
#: hash chain alone (bounded; a hit is for the exact same bytes, and the
#: SigningTime check runs again; see jplink.security.signature_cache).
BATCH_SIGNATURES = BatchSignatureCache()
#: Shapes of the signature documents peers send: a document that is a known
#: shape with other digests, time and value is verified without a parse
#: (the same checks; see jplink.security.signature_shapes).
SIGNATURE_SHAPES = SignatureShapes()


def verify_transport_signature(
    message: TransportMessage,
    *,
    now: dt.datetime,
    cache: BatchSignatureCache | None = BATCH_SIGNATURES,
    shapes: SignatureShapes | None = SIGNATURE_SHAPES,
) -> VerifiedSignature:
    """Verify a transport message's signature over its SOAP part and attachments.

    "Cache the whole message until the signature has been checked. Never
    forward unverified content" (PROTOCOLS.md §5.4).

    Args:
        message: the parsed transport message.
        now: the verification time.
        cache: verified batch-signature documents (None: verify everything).
        shapes: known document shapes (None: parse every document).

    Returns:
        The verified signature (the signer's chain and OCSP status are the
        caller's to check, for every message).

    Raises:
        MalformedMessage: code ``MalformedSignature``.
        InvalidSignature: code ``InvalidSignatureValue``.
    """
    return verify_signature(
        message.signature,
        parts={p.uri: p.data for p in signed_parts_of(message)},
        hash_chain_result=message.hash_chain_result,
        hash_chain=message.hash_chain,
        now=now,
        cache=cache,
        shapes=shapes,
    )
