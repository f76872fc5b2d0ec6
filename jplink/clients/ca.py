"""Client of the CA's enrolment API (``ca_tsa``): have an approved CSR issued.

The wire contract (``ca_tsa/api.py``)::

    POST /api/v1/certificates
    Authorization: Bearer <api key>
    {"csr": PEM, "profile": "auth"|"sign", "instance", "member_class",
     "member_code", "member_name", "server_code"?}
    -> 201 {"certificate": PEM, "serial": hex, "chain": [PEM, ...], ...}
    -> 4xx/5xx application/problem+json {"code", "detail", ...}

Split as STYLE.md §4 rule 2 asks: a pure body builder
(:func:`build_enrolment_body`), a pure response checker
(:func:`parse_enrolment_response`), a small aiohttp transport
(:class:`AiohttpCaEnrolmentClient`) and an in-process fake
(:class:`FakeCaEnrolmentClient`) that really signs, for tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import InvalidRequest, JPLinkError, MalformedMessage, TransportError
from ..security.certs import (
    CertProfile,
    Issuer,
    MemberSubject,
    build_ca_certificate,
    build_end_entity_certificate,
    random_serial_number,
    verify_csr,
    verify_csr_subject,
)
from .http import DEFAULT_TIMEOUT, HttpResponse, request_json

__all__ = [
    "AiohttpCaEnrolmentClient",
    "CaEnrolmentClient",
    "EnrolmentRequest",
    "FakeCaEnrolmentClient",
    "IssuedCertificate",
    "build_enrolment_body",
    "parse_enrolment_response",
]

ENROLMENT_PATH = "/api/v1/certificates"


@dataclass(frozen=True, slots=True)
class EnrolmentRequest:
    """An approved CSR with the member identity it was approved for."""

    csr_pem: str
    profile: CertProfile
    subject: MemberSubject


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A certificate the CA issued; ``serial`` was checked against the PEM.

    Attributes:
        certificate_pem: the end-entity certificate.
        serial: its serial number in lower-case hex, as the CA reports it.
        chain_pem: the issuing chain, CA first, as the CA reports it.
    """

    certificate_pem: str
    serial: str
    chain_pem: tuple[str, ...] = ()


class CaEnrolmentClient(Protocol):
    """Anything that can have an approved CSR issued."""

    async def enrol(self, request: EnrolmentRequest) -> IssuedCertificate:
        """Issue a certificate for ``request``.

        Raises:
            InvalidRequest: the CA refused the CSR.
            TransportError: the CA could not be reached or failed.
            MalformedMessage: the CA's answer does not make sense.
        """
        ...


def build_enrolment_body(request: EnrolmentRequest) -> dict[str, Any]:
    """The JSON body of ``POST /api/v1/certificates``."""
    subject = request.subject
    body: dict[str, Any] = {
        "csr": request.csr_pem,
        "profile": request.profile.value,
        "instance": subject.instance,
        "member_class": subject.member_class,
        "member_code": subject.member_code,
        "member_name": subject.member_name,
    }
    if subject.server_code is not None:
        body["server_code"] = subject.server_code
    return body


def _problem_text(response: HttpResponse) -> tuple[str | None, str]:
    try:
        doc = response.json()
    except MalformedMessage:
        return None, f"HTTP {response.status}"
    if not isinstance(doc, dict):
        return None, f"HTTP {response.status}"
    code = doc.get("code") if isinstance(doc.get("code"), str) else None
    detail = doc.get("detail")
    return code, detail if isinstance(detail, str) else f"HTTP {response.status}"


def parse_enrolment_response(response: HttpResponse) -> IssuedCertificate:
    """Check the CA's answer and extract the issued certificate.

    Args:
        response: the full HTTP response of the enrolment call.

    Returns:
        The issued certificate, whose PEM parsed and whose serial matches.

    Raises:
        InvalidRequest: 400/409/422: the CA refused the CSR (its code kept).
        TransportError: any other non-201 status (401/403 mean our API key is
            wrong; 5xx means the CA failed).
        MalformedMessage: a 201 whose body is not the documented shape.
    """
    if response.status in (400, 409, 422):
        code, detail = _problem_text(response)
        raise InvalidRequest(
            f"The CA refused the certificate request: {detail}",
            code=code or "CaRefused",
        )
    if response.status != 201:
        _code, detail = _problem_text(response)
        raise TransportError(
            f"The CA answered HTTP {response.status}: {detail}",
            url=response.url,
            status=response.status,
        )
    doc = response.json()
    if not isinstance(doc, dict):
        raise MalformedMessage("The CA's answer is not a JSON object")
    pem, serial, chain = doc.get("certificate"), doc.get("serial"), doc.get("chain", [])
    if not isinstance(pem, str) or not isinstance(serial, str):
        raise MalformedMessage("The CA's answer lacks 'certificate' or 'serial'")
    if not isinstance(chain, list) or not all(isinstance(c, str) for c in chain):
        raise MalformedMessage("The CA's 'chain' is not a list of PEM strings")
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
        claimed = int(serial.replace(":", ""), 16)
    except ValueError as exc:
        raise MalformedMessage(
            f"The CA's certificate or serial is invalid: {exc}"
        ) from exc
    if claimed != cert.serial_number:
        raise MalformedMessage("The CA's serial does not match its certificate")
    return IssuedCertificate(pem, format(cert.serial_number, "x"), tuple(chain))


class AiohttpCaEnrolmentClient:
    """The enrolment client over HTTP.

    Args:
        session: an aiohttp session owned by the caller (its ``cleanup_ctx``).
        base_url: the CA's API root, e.g. ``http://127.0.0.1:8888``.
        api_key: the Bearer key the CA expects.
        timeout: seconds allowed per call.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._session = session
        self._url = base_url.rstrip("/") + ENROLMENT_PATH
        self._api_key = api_key
        self._timeout = timeout

    async def enrol(self, request: EnrolmentRequest) -> IssuedCertificate:
        """POST the enrolment and check the answer (see the Protocol)."""
        response = await request_json(
            self._session,
            "POST",
            self._url,
            body=build_enrolment_body(request),
            headers={"Authorization": f"Bearer {self._api_key}"},
            timeout=self._timeout,
        )
        return parse_enrolment_response(response)


@dataclass
class FakeCaEnrolmentClient:
    """An in-memory CA for tests: checks the CSR like the real CA and signs it.

    Attributes:
        now: the issuing time.
        fail_with: when set, every call raises it instead (to test failures).
        issued: every certificate issued, in order.
    """

    now: dt.datetime
    fail_with: JPLinkError | None = None
    issued: list[x509.Certificate] = field(default_factory=list)
    issuer: Issuer = field(init=False)

    def __post_init__(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name(
            [x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "JP-LINK Fake CA")]
        )
        cert = build_ca_certificate(
            name, key, now=self.now, validity=dt.timedelta(days=3650)
        )
        self.issuer = Issuer(cert=cert, key=key)

    async def enrol(self, request: EnrolmentRequest) -> IssuedCertificate:
        """Issue like the real CA (see the Protocol)."""
        if self.fail_with is not None:
            raise self.fail_with
        verified = verify_csr(request.csr_pem.encode())
        name = verify_csr_subject(verified.csr, request.profile, request.subject)
        cert = build_end_entity_certificate(
            verified,
            name,
            request.profile,
            self.issuer,
            serial=random_serial_number(),
            ocsp_url="http://fake-ca.invalid/ocsp",
            now=self.now,
            validity=dt.timedelta(days=365),
        )
        self.issued.append(cert)
        return IssuedCertificate(
            cert.public_bytes(Encoding.PEM).decode(),
            format(cert.serial_number, "x"),
            (self.issuer.cert.public_bytes(Encoding.PEM).decode(),),
        )
