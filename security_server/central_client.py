"""HTTP client of the central server's registration API (``/register/v1``).

The registration API (central_server/registration_api.py):

- ``POST /register/v1/certificate-requests`` with ``{usage, member,
  serverCode?, csr}`` -> 201 ``{id, token}``; the token is a secret shown once
  and needed for every later read;
- ``GET /register/v1/certificate-requests/{id}`` with ``Authorization: Bearer
  <token>`` (RFC 6750 §2.1: tokens never go into URLs) -> the state and, once
  approved, the certificate PEM.

The answer checks (:func:`parse_submitted`, :func:`parse_cert_request_state`)
are pure functions; the I/O goes through :mod:`jplink.clients.http` (the one
place that maps aiohttp errors to :class:`~jplink.errors.TransportError`).
Management requests (PR-MSERV) are sent by
:mod:`security_server.management_transport`, whose names are re-exported
here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from jplink.clients.http import (
    DEFAULT_TIMEOUT,
    HttpResponse,
    request_json,
)
from jplink.errors import (
    Conflict,
    InvalidRequest,
    MalformedMessage,
    NotFound,
    TransportError,
    Unauthenticated,
)
from jplink.identifiers import ClientId
from jplink.security.certs import CertProfile

from .management_transport import (
    parse_management_answer,
    post_management_request,
    tls_pin,
)

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
