"""Every admin route refuses a call without a key (401) and with a key of a
role it does not allow (403); the routes are enumerated from the app's router,
so a route added later without roles (or with the wrong ones) fails here."""

from __future__ import annotations

import re

import pytest
from aiohttp import web

from security_server.admin import ALL_ROLES, Role, Route
from security_server.admin.appkeys import ROUTE_ROLES
from security_server.admin.auth import add_routes

from .conftest import Admin

#: GET routes every role may call (X-Road shows these to all its roles);
#: any other route must refuse some role.
OPEN_TO_EVERY_ROLE = {("GET", "/api/v1/status"), ("GET", "/api/v1/clients")}


def _concrete(path: str) -> str:
    """Fill ``{name}`` segments with plausible values."""
    values = {
        "client": "JP-TEST:COM:1111:client",
        "key_id": "0123456789abcdef",
        "sha256": "ab" * 32,
        "id": "1",
        "code": "getTrades",
    }
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), path)


def _routes(app: web.Application) -> list[tuple[str, str]]:
    found = []
    for route in app.router.routes():
        resource = route.resource
        assert resource is not None
        found.append((route.method, resource.canonical))
    return found


async def test_every_route_is_declared_with_roles(admin: Admin) -> None:
    app = admin.client.app
    assert app is not None
    table = app[ROUTE_ROLES]
    routes = _routes(app)
    assert len(routes) >= 40
    for method, path in routes:
        assert (method, path) in table, f"{method} {path} has no roles"
        roles = table[(method, path)]
        assert roles, f"{method} {path} has an empty role set"
        if roles == ALL_ROLES:
            assert (method, path) in OPEN_TO_EVERY_ROLE, (
                f"{method} {path} is open to every role; restrict it or list it"
            )


async def test_every_route_refuses_missing_bad_and_wrong_keys(admin: Admin) -> None:
    app = admin.client.app
    assert app is not None
    table = app[ROUTE_ROLES]
    for method, path in _routes(app):
        url = _concrete(path)
        for headers in (
            {},
            {"Authorization": "Bearer"},
            {"Authorization": "Basic dXNlcjpwYXNz"},
            {"Authorization": "X-Road-ApiKey token=jpss_0123456789abcdef_" + "x" * 43},
            {"Authorization": "Bearer not-a-key"},
        ):
            resp = await admin.client.request(method, url, headers=headers)
            assert resp.status == 401, f"{method} {url} {headers}: {resp.status}"
            assert resp.content_type == "application/problem+json"
            problem = await resp.json()
            assert problem["status"] == 401 and problem["code"] == "Unauthorized"
        for role in sorted(ALL_ROLES - table[(method, path)], key=lambda r: r.value):
            resp = await admin.client.request(method, url, headers=admin.headers(role))
            assert resp.status == 403, f"{method} {url} as {role.value}: {resp.status}"
            assert resp.content_type == "application/problem+json"
            assert (await resp.json())["code"] == "Forbidden"


async def test_allowed_roles_pass_the_check(admin: Admin) -> None:
    """A key with an allowed role gets past authentication and the role check
    (the handler may still refuse the dummy input, but never with 401/403)."""
    app = admin.client.app
    assert app is not None
    table = app[ROUTE_ROLES]
    for method, path in _routes(app):
        if path.endswith("/download") or "diagnostics" in path:
            continue  # would reach out to the network; covered elsewhere
        role = sorted(table[(method, path)], key=lambda r: r.value)[0]
        resp = await admin.client.request(
            method, _concrete(path), headers=admin.headers(role)
        )
        assert resp.status not in (401, 403), f"{method} {path} as {role.value}"


async def test_both_header_forms_and_revoked_keys(admin: Admin) -> None:
    for xroad in (True, False):
        resp = await admin.client.get(
            "/api/v1/status", headers=admin.headers(Role.AUDITOR, xroad=xroad)
        )
        assert resp.status == 200
    listed = await admin.call("GET", "/api/v1/api-keys", Role.SYSTEM_ADMINISTRATOR)
    auditor = next(k for k in listed if k["name"] == "auditor")
    await admin.call(
        "DELETE", f"/api/v1/api-keys/{auditor['key_id']}", Role.SYSTEM_ADMINISTRATOR
    )
    resp = await admin.client.get("/api/v1/status", headers=admin.headers(Role.AUDITOR))
    assert resp.status == 401
    # A wrong secret with a valid key id is refused the same way.
    key = admin.keys[Role.SYSTEM_ADMINISTRATOR]
    forged = key[:22] + ("A" if key[22] != "A" else "B") + key[23:]
    resp = await admin.client.get(
        "/api/v1/status", headers={"Authorization": f"Bearer {forged}"}
    )
    assert resp.status == 401


async def test_unknown_paths_need_a_key_too(admin: Admin) -> None:
    resp = await admin.client.get("/api/v1/no-such-thing")
    assert resp.status == 401
    resp = await admin.client.get(
        "/api/v1/no-such-thing", headers=admin.headers(Role.AUDITOR)
    )
    assert resp.status == 404


def test_a_route_without_roles_is_refused_at_registration() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    with pytest.raises(ValueError, match="no roles"):
        add_routes(app, [Route("GET", "/x", handler, frozenset())])
