"""Approved certification authorities and time-stamping authorities.

These become shared-params ``approvedCA`` (top CA, intermediates, OCSP
responders, certificate profile) and ``approvedTSA`` (name, URL, cert).
Certificates are checked to parse and, for CAs, to be CA certificates, so the
generated configuration never lists garbage as a trust anchor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509
from sqlalchemy import select

from jplink.errors import Conflict, InvalidRequest
from jplink.storage import Database

from . import audit
from ._lookup import flush_or_conflict, instance_identifier
from .models import ApprovedCa, ApprovedTsa, IntermediateCa

__all__ = [
    "ApprovedCaInfo",
    "ApprovedTsaInfo",
    "CaInfo",
    "add_approved_ca",
    "add_approved_tsa",
    "list_approved_cas",
    "list_approved_tsas",
]


@dataclass(frozen=True, slots=True)
class CaInfo:
    """A CA certificate with its OCSP responder (shared-params ``CaInfoType``)."""

    cert_der: bytes
    ocsp_url: str | None = None
    ocsp_cert_der: bytes | None = None


@dataclass(frozen=True, slots=True)
class ApprovedCaInfo:
    """An approved CA: top CA, intermediates and certificate profile."""

    name: str
    top_ca: CaInfo
    intermediates: tuple[CaInfo, ...]
    certificate_profile: str
    authentication_only: bool


@dataclass(frozen=True, slots=True)
class ApprovedTsaInfo:
    """An approved time-stamping authority."""

    name: str
    url: str
    cert_der: bytes


def _check_cert(der: bytes, what: str, *, ca: bool) -> None:
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise InvalidRequest(f"{what} is not a DER X.509 certificate") from exc
    if ca:
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            bc = None
        if bc is None or not bc.ca:
            raise InvalidRequest(f"{what} is not a CA certificate (basicConstraints)")


def _check_url(url: str, what: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"{what} must be an http(s) URL, got {url!r}")


def _check_ca_info(info: CaInfo, what: str) -> None:
    _check_cert(info.cert_der, what, ca=True)
    if info.ocsp_url is not None:
        _check_url(info.ocsp_url, f"{what} OCSP URL")
    if info.ocsp_cert_der is not None:
        _check_cert(info.ocsp_cert_der, f"{what} OCSP responder certificate", ca=False)


async def add_approved_ca(
    db: Database,
    actor: str,
    *,
    name: str,
    top_ca: CaInfo,
    certificate_profile: str,
    intermediates: Sequence[CaInfo] = (),
    authentication_only: bool = False,
    now: dt.datetime,
) -> ApprovedCaInfo:
    """Approve a certification authority.

    Raises:
        InvalidRequest: a certificate that does not parse or is not a CA, a bad
            OCSP URL, an empty name or profile.
        Conflict: a CA of that name exists.
    """
    if not name.strip() or not certificate_profile.strip():
        raise InvalidRequest("An approved CA needs a name and a certificate profile")
    _check_ca_info(top_ca, "The top CA certificate")
    for i, inter in enumerate(intermediates):
        _check_ca_info(inter, f"Intermediate CA certificate {i + 1}")
    async with db.transaction() as s:
        await instance_identifier(s)
        if (
            await s.execute(select(ApprovedCa.id).where(ApprovedCa.name == name))
        ).first():
            raise Conflict(f"Approved CA {name!r} already exists")
        row = ApprovedCa(
            name=name,
            top_ca_cert=top_ca.cert_der,
            ocsp_url=top_ca.ocsp_url,
            ocsp_cert=top_ca.ocsp_cert_der,
            certificate_profile=certificate_profile,
            authentication_only=authentication_only,
        )
        s.add(row)
        await flush_or_conflict(s, f"Approved CA {name!r} already exists")
        for inter in intermediates:
            s.add(
                IntermediateCa(
                    ca_id=row.id,
                    cert=inter.cert_der,
                    ocsp_url=inter.ocsp_url,
                    ocsp_cert=inter.ocsp_cert_der,
                )
            )
        audit.record(
            s,
            actor=actor,
            action="ca.add",
            target=name,
            now=now,
            detail={
                "profile": certificate_profile,
                "intermediates": len(intermediates),
            },
        )
    return ApprovedCaInfo(
        name, top_ca, tuple(intermediates), certificate_profile, authentication_only
    )


async def add_approved_tsa(
    db: Database, actor: str, *, name: str, url: str, cert_der: bytes, now: dt.datetime
) -> ApprovedTsaInfo:
    """Approve a time-stamping authority.

    Raises:
        InvalidRequest: bad URL, certificate or empty name.
        Conflict: a TSA of that name exists.
    """
    if not name.strip():
        raise InvalidRequest("An approved TSA needs a name")
    _check_url(url, "The TSA URL")
    _check_cert(cert_der, "The TSA certificate", ca=False)
    async with db.transaction() as s:
        await instance_identifier(s)
        if (
            await s.execute(select(ApprovedTsa.id).where(ApprovedTsa.name == name))
        ).first():
            raise Conflict(f"Approved TSA {name!r} already exists")
        s.add(ApprovedTsa(name=name, url=url, cert=cert_der))
        await flush_or_conflict(s, f"Approved TSA {name!r} already exists")
        audit.record(
            s, actor=actor, action="tsa.add", target=name, now=now, detail={"url": url}
        )
    return ApprovedTsaInfo(name, url, cert_der)


async def list_approved_cas(db: Database) -> list[ApprovedCaInfo]:
    """All approved CAs, ordered by name.

    Raises:
        StorageError: if the database fails.
    """
    async with db.transaction() as s:
        inters: dict[int, list[CaInfo]] = {}
        for i in (
            await s.execute(select(IntermediateCa).order_by(IntermediateCa.id))
        ).scalars():
            inters.setdefault(i.ca_id, []).append(
                CaInfo(i.cert, i.ocsp_url, i.ocsp_cert)
            )
        rows = (await s.execute(select(ApprovedCa).order_by(ApprovedCa.name))).scalars()
        return [
            ApprovedCaInfo(
                r.name,
                CaInfo(r.top_ca_cert, r.ocsp_url, r.ocsp_cert),
                tuple(inters.get(r.id, [])),
                r.certificate_profile,
                r.authentication_only,
            )
            for r in rows
        ]


async def list_approved_tsas(db: Database) -> list[ApprovedTsaInfo]:
    """All approved TSAs, ordered by name.

    Raises:
        StorageError: if the database fails.
    """
    async with db.transaction() as s:
        rows = (
            await s.execute(select(ApprovedTsa).order_by(ApprovedTsa.name))
        ).scalars()
        return [ApprovedTsaInfo(r.name, r.url, r.cert) for r in rows]
