"""Keys, CSRs and certificates of the software token.

- ``GET/POST /api/v1/keys``, ``DELETE /api/v1/keys/{key_id}``;
- ``POST /api/v1/keys/{key_id}/csrs`` (needs the logged-in token: the CSR is
  signed with the key), ``GET /api/v1/csrs``, ``GET /api/v1/csrs/{id}`` (the
  PEM, ``application/pkcs10``);
- ``GET/POST /api/v1/certificates`` (the body of a POST is the PEM or DER
  certificate), ``PUT .../{sha256}/activate``, ``PUT .../{sha256}/disable``,
  ``DELETE .../{sha256}``.

Keys and certificates are the security officer's and the registration
officer's (X-Road lets both manage signing keys; the auditor may look).
"""

from __future__ import annotations

from aiohttp import web

from jplink.errors import InvalidRequest, NotFound
from jplink.identifiers import parse_client_id
from jplink.security.certs import CertProfile
from jplink.security.keys import KeyType
from jplink.web import read_json_object

from .. import certificates, csrs, keys
from .appkeys import CONFIG, DATABASE, RUNTIME
from .auth import Route
from .http import actor, json_response, now, opt_enum, opt_str, unlocked
from .roles import Role

__all__ = ["ROUTES"]

_SO = Role.SECURITY_OFFICER
_RO = Role.REGISTRATION_OFFICER
_SYS = Role.SYSTEM_ADMINISTRATOR
_AUD = Role.AUDITOR
_VIEW = frozenset({_SO, _RO, _SYS, _AUD})
_EDIT = frozenset({_SO, _RO})
#: Largest certificate accepted in a POST body.
_MAX_CERT_BYTES = 64 * 1024


async def _list_keys(request: web.Request) -> web.Response:
    return json_response(await keys.list_keys(request.app[DATABASE]))


async def _generate_key(request: web.Request) -> web.Response:
    body = await read_json_object(
        request, allowed=frozenset({"usage", "member", "key_type", "label"})
    )
    usage = opt_enum(body, "usage", CertProfile)
    if usage is None:
        raise InvalidRequest("Field 'usage' is required", code="InvalidField")
    member_text = opt_str(body, "member")
    info = await keys.generate_key(
        request.app[DATABASE],
        request.app[CONFIG].token_dir,
        unlocked(request),
        actor(request),
        usage=usage,
        member=parse_client_id(member_text) if member_text else None,
        key_type=opt_enum(body, "key_type", KeyType) or KeyType.RSA,
        label=opt_str(body, "label") or "",
        now=now(request),
    )
    return json_response(info, status=201)


async def _delete_key(request: web.Request) -> web.Response:
    await keys.delete_key(
        request.app[DATABASE],
        request.app[CONFIG].token_dir,
        actor(request),
        request.match_info["key_id"],
        now=now(request),
    )
    return web.Response(status=204)


def _csr_json(info: csrs.CsrInfo) -> dict[str, object]:
    return {
        "id": info.id,
        "key_id": info.key_id,
        "usage": info.usage.value,
        "member": str(info.member),
        "subject": info.subject,
        "created_at": info.created_at.isoformat(),
        "pem": info.pem.decode("ascii"),
    }


async def _create_csr(request: web.Request) -> web.Response:
    info = await csrs.create_csr(
        request.app[DATABASE],
        request.app[CONFIG].token_dir,
        unlocked(request),
        actor(request),
        request.match_info["key_id"],
        now=now(request),
    )
    return json_response(_csr_json(info), status=201)


async def _list_csrs(request: web.Request) -> web.Response:
    found = await csrs.list_csrs(request.app[DATABASE])
    return json_response([_csr_json(c) for c in found])


async def _download_csr(request: web.Request) -> web.Response:
    text = request.match_info["id"]
    for info in await csrs.list_csrs(request.app[DATABASE]):
        if str(info.id) == text:
            return web.Response(
                body=info.pem,
                content_type="application/pkcs10",
                headers={
                    "Content-Disposition": f'attachment; filename="csr-{info.id}.pem"'
                },
            )
    raise NotFound(f"No CSR with id {text!r}", code="CsrNotFound")


async def _list_certs(request: web.Request) -> web.Response:
    return json_response(await certificates.list_certificates(request.app[DATABASE]))


async def _import_cert(request: web.Request) -> web.Response:
    data = await request.read()
    if not data.strip() or len(data) > _MAX_CERT_BYTES:
        raise InvalidRequest(
            "Send the certificate (PEM or DER, at most 64 KiB) as the body",
            code="InvalidCertificate",
        )
    info = await certificates.import_certificate(
        request.app[DATABASE], actor(request), data, now=now(request)
    )
    request.app[RUNTIME].poke()
    return json_response(info, status=201)


async def _set_active(request: web.Request, active: bool) -> web.Response:
    info = await certificates.set_certificate_active(
        request.app[DATABASE],
        actor(request),
        request.match_info["sha256"],
        active=active,
        now=now(request),
    )
    request.app[RUNTIME].poke()
    return json_response(info)


async def _activate(request: web.Request) -> web.Response:
    return await _set_active(request, True)


async def _disable(request: web.Request) -> web.Response:
    return await _set_active(request, False)


async def _delete_cert(request: web.Request) -> web.Response:
    await certificates.delete_certificate(
        request.app[DATABASE],
        actor(request),
        request.match_info["sha256"],
        now=now(request),
    )
    request.app[RUNTIME].poke()
    return web.Response(status=204)


_V1 = "/api/v1"

#: The routes of this module and the roles allowed to call each.
ROUTES = (
    Route("GET", f"{_V1}/keys", _list_keys, _VIEW),
    Route("POST", f"{_V1}/keys", _generate_key, _EDIT),
    Route("DELETE", f"{_V1}/keys/{{key_id}}", _delete_key, _EDIT),
    Route("POST", f"{_V1}/keys/{{key_id}}/csrs", _create_csr, _EDIT),
    Route("GET", f"{_V1}/csrs", _list_csrs, _VIEW),
    Route("GET", f"{_V1}/csrs/{{id}}", _download_csr, _VIEW),
    Route("GET", f"{_V1}/certificates", _list_certs, _VIEW),
    Route("POST", f"{_V1}/certificates", _import_cert, _EDIT),
    Route("PUT", f"{_V1}/certificates/{{sha256}}/activate", _activate, _EDIT),
    Route("PUT", f"{_V1}/certificates/{{sha256}}/disable", _disable, _EDIT),
    Route("DELETE", f"{_V1}/certificates/{{sha256}}", _delete_cert, _EDIT),
)
