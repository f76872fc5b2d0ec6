"""Management requests (PR-MSERV) to the central server: pinned, sent, answered.

Management requests travel two ways (PROTOCOLS.md §10 table): ``authCertReg``
**directly** to ``authCertRegServiceAddress`` from the private parameters,
every other operation as an X-Road request through this server's own client
proxy. PR-MSERV §2.3: "The TLS server cert must equal
``authCertRegServiceCert``": over https :func:`tls_pin` pins the connection
to that exact certificate (aiohttp :class:`~aiohttp.Fingerprint`, SHA-256 of
its DER); an https address without a published certificate is refused. A
plain http address (the local demo network, where the central server's
registration port has no TLS) carries no such proof; it is allowed and the
operator documentation says so.

The answer check (:func:`parse_management_answer`) is a pure function; the
I/O goes through :mod:`jplink.clients.http` (the one place that maps aiohttp
errors to :class:`~jplink.errors.TransportError`). Re-exported by
:mod:`security_server.central_client`.
"""

from __future__ import annotations

import hashlib

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from jplink.clients.http import (
    DEFAULT_TIMEOUT,
    MAX_RESPONSE_BYTES,
    HttpResponse,
    map_transport_errors,
    read_body,
)
from jplink.errors import (
    ConfigurationError,
    MalformedMessage,
    TransportError,
)
from jplink.protocol.management import (
    ManagementRequest,
    ManagementRequestType,
    parse_management_response,
)
from jplink.protocol.soap import MessageRole, parse_soap_message

__all__ = ["parse_management_answer", "post_management_request", "tls_pin"]

_SOAP_TYPES = ("text/xml", "multipart/related")


def tls_pin(
    url: str, service_cert: x509.Certificate | None
) -> aiohttp.Fingerprint | None:
    """The TLS pin for a direct ``authCertReg`` call to ``url``.

    Args:
        url: ``authCertRegServiceAddress``.
        service_cert: ``authCertRegServiceCert`` from the private parameters.

    Returns:
        A fingerprint of ``service_cert`` for https; None for plain http
        (no TLS, hence nothing to pin: the demo network's case).

    Raises:
        ConfigurationError: an https address without a published certificate,
            or an address that is neither http nor https.
    """
    if url.startswith("http://"):
        return None
    if not url.startswith("https://"):
        raise ConfigurationError(
            f"authCertRegServiceAddress {url!r} is not an http(s) URL"
        )
    if service_cert is None:
        # PROTOCOLS.md §10: "The TLS server cert must equal
        # authCertRegServiceCert" -- without it there is nothing to check.
        raise ConfigurationError(
            "The global configuration gives an https authCertRegServiceAddress "
            "but no authCertRegServiceCert to check the server against"
        )
    return aiohttp.Fingerprint(
        hashlib.sha256(service_cert.public_bytes(Encoding.DER)).digest()
    )


def parse_management_answer(
    response: HttpResponse, expected: ManagementRequestType
) -> ManagementRequest:
    """Check the answer to a management request.

    Args:
        response: the whole HTTP answer.
        expected: the operation that was sent.

    Returns:
        The echoed body with the central server's ``request_id``.

    Raises:
        SoapFault: the answer is a SOAP fault (the central server, the
            management security server or our client proxy refused).
        TransportError: a non-SOAP answer with an error status.
        MalformedMessage, XmlSecurityError: not a management response of
            ``expected`` with a ``requestId``.
    """
    ctype = response.headers.get("Content-Type", "")
    if not ctype.lower().startswith(_SOAP_TYPES):
        if response.status >= 400:
            raise TransportError(
                f"{response.url} answered HTTP {response.status}",
                url=response.url,
                status=response.status,
            )
        raise MalformedMessage(
            f"{response.url} answered with {ctype or 'no content type'}, not SOAP"
        )
    message = parse_soap_message(
        response.body, content_type=ctype, role=None
    )  # raises SoapFault for a fault
    if message.role is not MessageRole.RESPONSE:
        raise MalformedMessage("The answer is not a SOAP response")
    answer = parse_management_response(message)
    if answer.type is not expected:
        raise MalformedMessage(
            f"Expected a {expected.value} response, got {answer.type.value}"
        )
    if answer.request_id is None:
        raise MalformedMessage("The management response carries no requestId")
    return answer


async def post_management_request(
    session: aiohttp.ClientSession,
    url: str,
    content_type: str,
    body: bytes,
    expected: ManagementRequestType,
    *,
    pin: aiohttp.Fingerprint | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ManagementRequest:
    """POST a management request and check the answer.

    Args:
        session: the caller's aiohttp session.
        url: ``authCertRegServiceAddress`` or the own client proxy's URL.
        content_type: from :func:`~jplink.protocol.management.build_management_message`.
        body: the request bytes.
        expected: the operation (to check the answer).
        pin: the TLS certificate the server must present (see :func:`tls_pin`).
        timeout: total seconds allowed.

    Returns:
        The central server's answer with its ``request_id``.

    Raises:
        TransportError: unreachable, TLS failure (including a certificate
            other than the pinned one), timeout, non-SOAP error status.
        SoapFault: the request was refused with a SOAP fault.
        MalformedMessage, XmlSecurityError: an answer of the wrong shape.
    """
    with map_transport_errors(url):
        async with session.post(
            url,
            data=body,
            headers={"Content-Type": content_type},
            ssl=pin if pin is not None else True,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            data = await read_body(resp, limit=MAX_RESPONSE_BYTES, url=url)
            answer = HttpResponse(
                status=resp.status,
                body=data,
                url=url,
                headers={k: v for k, v in resp.headers.items()},
            )
    return parse_management_answer(answer, expected)
