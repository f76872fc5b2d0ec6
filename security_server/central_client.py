"""HTTP clients of the central server: registration API and management requests.

The registration API (``/register/v1``, central_server/registration_api.py):

- ``POST /register/v1/certificate-requests`` with ``{usage, member,
  serverCode?, csr}`` -> 201 ``{id, token}``; the token is a secret shown once
  and needed for every later read;
- ``GET /register/v1/certificate-requests/{id}`` with ``Authorization: Bearer
  <token>`` (RFC 6750 §2.1: tokens never go into URLs) -> the state and, once
  approved, the certificate PEM.

Management requests (PR-MSERV) travel two ways (PROTOCOLS.md §10 table):
``authCertReg`` **directly** to ``authCertRegServiceAddress`` from the private
parameters, every other operation as an X-Road request through this
server's own client proxy. PR-MSERV §2.3: "The TLS server cert must equal
``authCertRegServiceCert``": over https :func:`tls_pin` pins the connection
to that exact certificate (aiohttp :class:`~aiohttp.Fingerprint`, SHA-256 of
its DER); an https address without a published certificate is refused. A
plain http address (the local demo network, where the central server's
registration port has no TLS) carries no such proof; it is allowed and the
operator documentation says so.

The answer checks (:func:`parse_submitted`, :func:`parse_cert_request_state`,
:func:`parse_management_answer`) are pure functions; the I/O goes through
:mod:`jplink.clients.http` (the one place that maps aiohttp errors to
:class:`~jplink.errors.TransportError`).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from jplink.clients.http import (
    DEFAULT_TIMEOUT,
    MAX_RESPONSE_BYTES,
    HttpResponse,
    map_transport_errors,
    read_body,
    request_json,
)
from jplink.errors import (
    ConfigurationError,
    Conflict,
    InvalidRequest,
    MalformedMessage,
    NotFound,
    TransportError,
    Unauthenticated,
)
from jplink.identifiers import ClientId
from jplink.protocol.management import (
    ManagementRequest,
    ManagementRequestType,
    parse_management_response,
)
from jplink.protocol.soap import MessageRole, parse_soap_message
from jplink.security.certs import CertProfile

__all__ = [
    "CentralCertRequestStatus",
    "CentralRegistrationClient",
    "CertRequestState",
    "SubmittedCertRequest",
    "parse_cert_request_state",
    "parse_management_answer",
    "parse_submitted",
    "post_management_request",
    "tls_pin",
]

_P = "/register/v1/certificate-requests"
_SOAP_TYPES = ("text/xml", "multipart/related")


class CentralCertRequestStatus(enum.Enum):
    """A certificate request's state at the central server (its wire words)."""

    PENDING = "pending"
    ISSUING = "issuing"
    APPROVED = "approved"
    DECLINED = "declined"


@dataclass(frozen=True, slots=True)
class SubmittedCertRequest:
    """The central server's receipt for a certificate request.

    Attributes:
        request_id: the central request number.
        token: the requester's secret (needed to read the state).
    """

    request_id: int
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class CertRequestState:
    """What the requester may see of a certificate request.

    Attributes:
        request_id: the central request number.
        status: pending, issuing, approved or declined.
        decline_reason: the operator's reason when declined.
        certificate_pem: the issued certificate once approved.
    """

    request_id: int
    status: CentralCertRequestStatus
    decline_reason: str | None = None
    certificate_pem: str | None = field(default=None, repr=False)


def _problem(response: HttpResponse) -> str:
    try:
        doc = response.json()
    except MalformedMessage:
        return f"HTTP {response.status}"
    if isinstance(doc, dict) and isinstance(doc.get("detail"), str):
        return str(doc["detail"])
    return f"HTTP {response.status}"


def _check_status(response: HttpResponse, expected: int, what: str) -> Any:
    """The JSON body of an expected answer; a typed error for any other.

    Raises:
        InvalidRequest, Conflict, NotFound, Unauthenticated: the central
            server refused the request (its reason kept).
        TransportError: a 5xx or another unexpected status.
        MalformedMessage: the expected status with a non-JSON body.
    """
    status = response.status
    if status == expected:
        return response.json()
    reason = f"The central server refused {what}: {_problem(response)}"
    if status in (400, 422):
        raise InvalidRequest(reason, code="CentralRefused")
    if status == 409:
        raise Conflict(reason)
    if status == 404:
        raise NotFound(reason, code="CentralRequestNotFound")
    if status in (401, 403):
        raise Unauthenticated(reason)
    raise TransportError(
        f"The central server answered HTTP {status} to {what}: {_problem(response)}",
        url=response.url,
        status=status,
    )


def parse_submitted(response: HttpResponse) -> SubmittedCertRequest:
    """Check the answer to a submitted certificate request.

    Raises:
        InvalidRequest, Conflict, NotFound, Unauthenticated, TransportError:
            see :func:`_check_status`.
        MalformedMessage: a 201 without an integer ``id`` and a ``token``.
    """
    doc = _check_status(response, 201, "the certificate request")
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("id"), int)
        or not isinstance(doc.get("token"), str)
        or not doc["token"]
    ):
        raise MalformedMessage("The central server's receipt lacks 'id' or 'token'")
    return SubmittedCertRequest(doc["id"], doc["token"])


def parse_cert_request_state(response: HttpResponse) -> CertRequestState:
    """Check the answer to a certificate request's state.

    Raises:
        NotFound: an unknown request or a wrong token (the same 404).
        InvalidRequest, Unauthenticated, TransportError: see
            :func:`_check_status`.
        MalformedMessage: a 200 that is not the documented shape.
    """
    doc = _check_status(response, 200, "reading the certificate request")
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), int):
        raise MalformedMessage("The central server's state lacks 'id'")
    try:
        status = CentralCertRequestStatus(doc.get("status"))
    except ValueError:
        raise MalformedMessage(
            f"Unknown certificate request status {doc.get('status')!r}"
        ) from None
    cert = doc.get("certificate")
    reason = doc.get("declineReason")
    if status is CentralCertRequestStatus.APPROVED and not isinstance(cert, str):
        raise MalformedMessage("An approved request came without its certificate")
    return CertRequestState(
        request_id=doc["id"],
        status=status,
        decline_reason=reason if isinstance(reason, str) else None,
        certificate_pem=cert if isinstance(cert, str) else None,
    )


class CentralRegistrationClient:
    """The registration API of one central server.

    Args:
        session: the caller's aiohttp session.
        base_url: the registration port's URL (``http://cs:4001``).
        timeout: seconds allowed per call.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InvalidRequest(
                f"The central server URL must be http(s)://..., not {base_url!r}"
            )
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = timeout

    async def submit_certificate_request(
        self,
        *,
        usage: CertProfile,
        member: ClientId,
        csr_pem: str,
        server_code: str | None = None,
    ) -> SubmittedCertRequest:
        """POST a CSR for approval.

        Args:
            usage: ``auth`` or ``sign``.
            member: the member the certificate is for.
            csr_pem: the PEM CSR.
            server_code: this server's code (``auth`` only).

        Returns:
            The central request id and the requester token.

        Raises:
            TransportError: the central server is unreachable or failed.
            InvalidRequest, Conflict, NotFound: it refused the request.
            MalformedMessage: its answer is not the documented shape.
        """
        body: dict[str, Any] = {
            "usage": usage.value,
            "member": str(member),
            "csr": csr_pem,
        }
        if server_code is not None:
            body["serverCode"] = server_code
        response = await request_json(
            self._session, "POST", self._base + _P, body=body, timeout=self._timeout
        )
        return parse_submitted(response)

    async def certificate_request_state(
        self, request_id: int, token: str
    ) -> CertRequestState:
        """GET a certificate request's state (and certificate once approved).

        Raises:
            TransportError: the central server is unreachable or failed.
            NotFound: unknown request id or wrong token.
            MalformedMessage: its answer is not the documented shape.
        """
        response = await request_json(
            self._session,
            "GET",
            f"{self._base}{_P}/{request_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=self._timeout,
        )
        return parse_cert_request_state(response)


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
