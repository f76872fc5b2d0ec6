"""CA operations shared by the enrolment API and the CLI: issue, revoke, list.

Handlers and commands parse their input with the ``parse_*`` helpers here and
call these functions; they hold no CA logic of their own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from jplink.errors import InvalidRequest
from jplink.security.certs import (
    CertProfile,
    MemberSubject,
    build_end_entity_certificate,
    random_serial_number,
    verify_csr,
    verify_csr_subject,
)
from jplink.storage import Database, open_component_database

from . import repositories
from .config import CaTsaConfig
from .home import CaMaterial
from .models import MIGRATIONS, CertStatus
from .repositories import CertificateRecord

__all__ = [
    "REVOCATION_REASONS",
    "EnrolmentRequest",
    "get_certificate",
    "issue_certificate",
    "list_certificates",
    "open_database",
    "parse_profile",
    "parse_reason",
    "parse_serial",
    "revoke_certificate",
]

#: Reasons accepted for revocation (RFC 5280 §5.3.1). ``certificateHold`` and
#: ``removeFromCRL`` are refused: revocation here is final.
REVOCATION_REASONS: dict[str, x509.ReasonFlags] = {
    r.value: r
    for r in x509.ReasonFlags
    if r not in (x509.ReasonFlags.certificate_hold, x509.ReasonFlags.remove_from_crl)
}

#: Audit log of state changes (DESIGN.md §6: "every state change audit-logged").
audit = logging.getLogger("jplink.audit.ca")

_SERIAL_RE = re.compile(r"(?:0x)?([0-9A-Fa-f]{1,40})")


@dataclass(frozen=True, slots=True)
class EnrolmentRequest:
    """An approved certificate request forwarded by the central server.

    Attributes:
        csr: the PKCS#10 request, PEM or DER, as received.
        profile: ``auth`` or ``sign``.
        subject: the member (and server code) the central server approved.
        validity_days: override of ``issuance.validity_days`` (CLI only).
    """

    csr: bytes
    profile: CertProfile
    subject: MemberSubject
    validity_days: int | None = None


def parse_profile(text: str) -> CertProfile:
    """``auth``/``sign`` -> CertProfile.

    Raises:
        InvalidRequest: any other word.
    """
    try:
        return CertProfile(text)
    except ValueError:
        raise InvalidRequest(
            f"Unknown profile {text!r}; use 'auth' or 'sign'", code="InvalidProfile"
        ) from None


def parse_reason(text: str) -> x509.ReasonFlags:
    """An RFC 5280 reason name (``keyCompromise`` ...) -> ReasonFlags.

    Raises:
        InvalidRequest: an unknown or refused reason.
    """
    reason = REVOCATION_REASONS.get(text)
    if reason is None:
        raise InvalidRequest(
            f"Unknown revocation reason {text!r}; use one of "
            + ", ".join(sorted(REVOCATION_REASONS)),
            code="InvalidReason",
        )
    return reason


def parse_serial(text: str) -> int:
    """A hex serial (optionally ``0x``-prefixed or colon-separated) -> int.

    Raises:
        InvalidRequest: not 1-40 hex digits, or zero.
    """
    match = _SERIAL_RE.fullmatch(text.replace(":", ""))
    if match is None or int(match.group(1), 16) == 0:
        raise InvalidRequest(
            f"Invalid serial {text!r}; give hex digits", code="InvalidSerial"
        )
    return int(match.group(1), 16)


async def open_database(config: CaTsaConfig) -> Database:
    """Create the database of ``config`` and migrate it to head (for CLI commands)."""
    return await open_component_database(config.db_url, MIGRATIONS)


async def issue_certificate(
    db: Database,
    config: CaTsaConfig,
    material: CaMaterial,
    request: EnrolmentRequest,
    *,
    now: dt.datetime,
) -> CertificateRecord:
    """Check a CSR against the profile, issue the certificate and store it.

    Returns:
        The stored record (its ``der`` is the certificate).

    Raises:
        InvalidRequest: bad CSR (unparsable, bad signature, weak key) or a
            subject that does not fit the profile.
        StorageError: the database failed; nothing is stored.
    """
    verified = verify_csr(request.csr, min_rsa_bits=config.issuance.min_rsa_bits)
    name = verify_csr_subject(verified.csr, request.profile, request.subject)
    days = request.validity_days or config.issuance.validity_days
    if days < 1:
        raise InvalidRequest(
            "Validity must be at least one day", code="InvalidValidity"
        )
    cert = build_end_entity_certificate(
        verified,
        name,
        request.profile,
        material.issuer,
        serial=random_serial_number(),
        ocsp_url=config.ocsp.url,
        now=now,
        validity=dt.timedelta(days=days),
    )
    der = cert.public_bytes(Encoding.DER)
    record = CertificateRecord(
        serial=cert.serial_number,
        subject=cert.subject.rfc4514_string(),
        profile=request.profile,
        member_id=request.subject.member_id,
        server_code=request.subject.server_code
        if request.profile is CertProfile.AUTH
        else None,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        issued_at=now,
        status=CertStatus.GOOD,
        revoked_at=None,
        reason=None,
        sha256=hashlib.sha256(der).hexdigest(),
        der=der,
    )
    async with db.transaction() as session:
        await repositories.add_certificate(session, record)
    audit.info(
        "issued %s certificate serial=%s member=%s subject=%s",
        record.profile.value,
        record.serial_hex,
        record.member_id,
        record.subject,
    )
    return record


async def revoke_certificate(
    db: Database, serial: int, reason: x509.ReasonFlags, *, now: dt.datetime
) -> CertificateRecord:
    """Revoke an issued certificate at ``now`` with ``reason``.

    Raises:
        NotFound: never issued here.
        Conflict: already revoked.
    """
    async with db.transaction() as session:
        record = await repositories.mark_revoked(
            session, serial, reason=reason, revoked_at=now
        )
    audit.info(
        "revoked certificate serial=%s reason=%s at=%s",
        record.serial_hex,
        reason.value,
        now.isoformat(),
    )
    return record


async def get_certificate(db: Database, serial: int) -> CertificateRecord:
    """One issued certificate.

    Raises:
        NotFound: never issued here.
    """
    async with db.transaction() as session:
        return await repositories.get_certificate(session, serial)


async def list_certificates(
    db: Database, *, member_id: str | None = None, limit: int = 1000, offset: int = 0
) -> list[CertificateRecord]:
    """Issued certificates with their status, newest first."""
    async with db.transaction() as session:
        return await repositories.list_certificates(
            session, member_id=member_id, limit=limit, offset=offset
        )
