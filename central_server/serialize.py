"""JSON forms of the service layer's result objects (admin and public APIs).

Identifiers use their text form (``SUBSYSTEM:JP/COM/1234/api``); certificates
are base64 DER in admin listings and PEM where a requester downloads them.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from .apikeys import ApiKeyInfo
from .audit import AuditRecord
from .cert_requests import CertificateRequestView
from .groups import GlobalGroupInfo
from .member_requests import MemberRequestView
from .registry import MemberInfo, SystemParameters
from .servers import SecurityServerInfo
from .trust import ApprovedCaInfo, ApprovedTsaInfo, CaInfo

__all__ = [
    "api_key_json",
    "audit_json",
    "ca_json",
    "cert_request_json",
    "cert_request_public_json",
    "group_json",
    "member_json",
    "member_request_json",
    "member_request_public_json",
    "parameters_json",
    "server_json",
    "tsa_json",
]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _b64(value: bytes | None) -> str | None:
    return base64.b64encode(value).decode("ascii") if value is not None else None


def parameters_json(p: SystemParameters) -> dict[str, Any]:
    msp = p.management_service_provider
    return {
        "instanceIdentifier": p.instance_identifier,
        "ocspFreshnessSeconds": p.ocsp_freshness_seconds,
        "timeStampingIntervalSeconds": p.time_stamping_interval_seconds,
        "confExpireIntervalSeconds": p.conf_expire_interval_seconds,
        "managementServiceProvider": str(msp) if msp else None,
    }


def member_json(m: MemberInfo) -> dict[str, Any]:
    return {
        "id": str(m.id),
        "name": m.name,
        "subsystems": [str(s) for s in m.subsystems],
        "createdAt": _iso(m.created_at),
    }


def server_json(s: SecurityServerInfo) -> dict[str, Any]:
    return {
        "id": str(s.id),
        "address": s.address,
        "authCertHashes": list(s.auth_cert_hashes),
        "clients": [str(c) for c in s.clients],
    }


def group_json(g: GlobalGroupInfo) -> dict[str, Any]:
    return {
        "id": str(g.id),
        "description": g.description,
        "members": [str(m) for m in g.members],
    }


def _ca_info(c: CaInfo) -> dict[str, Any]:
    return {
        "cert": _b64(c.cert_der),
        "ocspUrl": c.ocsp_url,
        "ocspCert": _b64(c.ocsp_cert_der),
    }


def ca_json(c: ApprovedCaInfo) -> dict[str, Any]:
    return {
        "name": c.name,
        "topCa": _ca_info(c.top_ca),
        "intermediates": [_ca_info(i) for i in c.intermediates],
        "certificateProfile": c.certificate_profile,
        "authenticationOnly": c.authentication_only,
    }


def tsa_json(t: ApprovedTsaInfo) -> dict[str, Any]:
    return {"name": t.name, "url": t.url, "cert": _b64(t.cert_der)}


def member_request_public_json(r: MemberRequestView) -> dict[str, Any]:
    """What the requester may see: state, reason, assigned code."""
    return {
        "id": r.id,
        "status": r.status.value,
        "declineReason": r.decline_reason,
        "memberCode": r.member_code,
        "createdAt": _iso(r.created_at),
        "decidedAt": _iso(r.decided_at),
    }


def member_request_json(r: MemberRequestView) -> dict[str, Any]:
    return {
        **member_request_public_json(r),
        "adminEmail": r.admin_email,
        "organisationName": r.organisation_name,
        "memberClass": r.member_class,
        "requestedCode": r.requested_code,
        "extraInfo": r.extra_info,
        "decidedBy": r.decided_by,
    }


def cert_request_public_json(r: CertificateRequestView) -> dict[str, Any]:
    """What the requester may see, including the certificate once issued."""
    return {
        "id": r.id,
        "status": r.status.value,
        "usage": r.usage.value,
        "member": str(r.member),
        "serverCode": r.server_code,
        "declineReason": r.decline_reason,
        "certificate": r.certificate_pem,
        "serial": r.serial,
        "createdAt": _iso(r.created_at),
        "decidedAt": _iso(r.decided_at),
    }


def cert_request_json(r: CertificateRequestView) -> dict[str, Any]:
    return {
        **cert_request_public_json(r),
        "csrSha256": r.csr_sha256,
        "decidedBy": r.decided_by,
    }


def api_key_json(k: ApiKeyInfo) -> dict[str, Any]:
    return {
        "keyId": k.key_id,
        "name": k.name,
        "role": k.role.value,
        "createdAt": _iso(k.created_at),
        "revokedAt": _iso(k.revoked_at),
    }


def audit_json(a: AuditRecord) -> dict[str, Any]:
    return {
        "id": a.id,
        "at": _iso(a.at),
        "actor": a.actor,
        "action": a.action,
        "target": a.target,
        "detail": dict(a.detail),
    }
