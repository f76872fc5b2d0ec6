"""Clients, local groups and access rights.

Clients are written in X-Road's path form ``INSTANCE:CLASS:CODE[:SUBSYSTEM]``;
subjects and members in bodies and query strings use the text form
(``SUBSYSTEM:JP/COM/1111/client``, ``LOCALGROUP:admins``...).

- ``GET/POST /api/v1/clients``, ``DELETE /api/v1/clients/{client}``
  (registration officer);
- ``GET/POST /api/v1/clients/{client}/local-groups``,
  ``DELETE .../local-groups/{code}``, ``POST .../local-groups/{code}/members``,
  ``DELETE .../local-groups/{code}/members?member=...`` (service administrator);
- ``GET/POST /api/v1/clients/{client}/services/{code}/access-rights``,
  ``DELETE ...?subject=...`` (per service) and
  ``GET /api/v1/access-rights?subject=...`` (per subject).
"""

from __future__ import annotations

from aiohttp import web

from jplink.identifiers import LocalGroupId, parse_client_id, parse_identifier
from jplink.web import read_json_object

from .. import access_rights, clients, local_groups
from .appkeys import DATABASE, RUNTIME
from .auth import Route
from .http import (
    actor,
    client_from_path,
    json_response,
    now,
    opt_str,
    query_str,
    req_str,
)
from .roles import ALL_ROLES, Role

__all__ = ["ROUTES"]

_RO = Role.REGISTRATION_OFFICER
_SA = Role.SERVICE_ADMINISTRATOR
_AUD = Role.AUDITOR
_SERVICES_VIEW = frozenset({_SA, _RO, _AUD})
_SERVICES_EDIT = frozenset({_SA})


async def _list_clients(request: web.Request) -> web.Response:
    return json_response(await clients.list_clients(request.app[DATABASE]))


async def _add_client(request: web.Request) -> web.Response:
    body = await read_json_object(request, allowed=frozenset({"client_id", "name"}))
    info = await clients.add_client(
        request.app[DATABASE],
        actor(request),
        parse_client_id(req_str(body, "client_id")),
        name=opt_str(body, "name") or "",
        now=now(request),
    )
    return json_response(info, status=201)


async def _delete_client(request: web.Request) -> web.Response:
    await clients.delete_client(
        request.app[DATABASE],
        actor(request),
        client_from_path(request),
        now=now(request),
    )
    request.app[RUNTIME].poke()
    return web.Response(status=204)


def _group(request: web.Request) -> LocalGroupId:
    return LocalGroupId(request.match_info["code"].removeprefix("LOCALGROUP:"))


async def _list_groups(request: web.Request) -> web.Response:
    found = await local_groups.list_local_groups(
        request.app[DATABASE], client_from_path(request)
    )
    return json_response(found)


async def _add_group(request: web.Request) -> web.Response:
    body = await read_json_object(request, allowed=frozenset({"code", "description"}))
    info = await local_groups.add_local_group(
        request.app[DATABASE],
        actor(request),
        client_from_path(request),
        LocalGroupId(req_str(body, "code").removeprefix("LOCALGROUP:")),
        description=opt_str(body, "description") or "",
        now=now(request),
    )
    return json_response(info, status=201)


async def _delete_group(request: web.Request) -> web.Response:
    await local_groups.delete_local_group(
        request.app[DATABASE],
        actor(request),
        client_from_path(request),
        _group(request),
        now=now(request),
    )
    return web.Response(status=204)


async def _add_member(request: web.Request) -> web.Response:
    body = await read_json_object(request, allowed=frozenset({"member"}))
    await local_groups.add_group_member(
        request.app[DATABASE],
        actor(request),
        client_from_path(request),
        _group(request),
        parse_client_id(req_str(body, "member")),
        now=now(request),
    )
    return web.Response(status=204)


async def _remove_member(request: web.Request) -> web.Response:
    await local_groups.remove_group_member(
        request.app[DATABASE],
        actor(request),
        client_from_path(request),
        _group(request),
        parse_client_id(query_str(request, "member")),
        now=now(request),
    )
    return web.Response(status=204)


async def _rights_of_service(request: web.Request) -> web.Response:
    found = await access_rights.list_rights_for_service(
        request.app[DATABASE], client_from_path(request), request.match_info["code"]
    )
    return json_response(found)


async def _grant(request: web.Request) -> web.Response:
    body = await read_json_object(request, allowed=frozenset({"subject"}))
    info = await access_rights.grant_access(
        request.app[DATABASE],
        actor(request),
        client_from_path(request),
        request.match_info["code"],
        parse_identifier(req_str(body, "subject")),
        now=now(request),
    )
    return json_response(info, status=201)


async def _revoke(request: web.Request) -> web.Response:
    await access_rights.revoke_access(
        request.app[DATABASE],
        actor(request),
        client_from_path(request),
        request.match_info["code"],
        parse_identifier(query_str(request, "subject")),
        now=now(request),
    )
    return web.Response(status=204)


async def _rights_of_subject(request: web.Request) -> web.Response:
    found = await access_rights.list_rights_for_subject(
        request.app[DATABASE], parse_identifier(query_str(request, "subject"))
    )
    return json_response(found)


_V1 = "/api/v1"
_C = f"{_V1}/clients/{{client}}"
_G = f"{_C}/local-groups/{{code}}"
_R = f"{_C}/services/{{code}}/access-rights"

#: The routes of this module and the roles allowed to call each.
ROUTES = (
    Route("GET", f"{_V1}/clients", _list_clients, ALL_ROLES),
    Route("POST", f"{_V1}/clients", _add_client, frozenset({_RO})),
    Route("DELETE", _C, _delete_client, frozenset({_RO})),
    Route("GET", f"{_C}/local-groups", _list_groups, _SERVICES_VIEW),
    Route("POST", f"{_C}/local-groups", _add_group, _SERVICES_EDIT),
    Route("DELETE", _G, _delete_group, _SERVICES_EDIT),
    Route("POST", f"{_G}/members", _add_member, _SERVICES_EDIT),
    Route("DELETE", f"{_G}/members", _remove_member, _SERVICES_EDIT),
    Route("GET", _R, _rights_of_service, _SERVICES_VIEW),
    Route("POST", _R, _grant, _SERVICES_EDIT),
    Route("DELETE", _R, _revoke, _SERVICES_EDIT),
    Route("GET", f"{_V1}/access-rights", _rights_of_subject, _SERVICES_VIEW),
)
