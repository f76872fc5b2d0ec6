"""Every admin route refuses a missing or wrong API key, and does nothing.

The routes are enumerated from the application's router, so a route added
later is covered without editing this test.
"""

from __future__ import annotations

import re

import pytest
from aiohttp import web

from adapter_server.admin_api import make_admin_app
from adapter_server.apikeys import ApiKeyStore, create_api_key
from adapter_server.config import load_adapter_config

from .conftest import people_by_name


def _admin_routes(tmp_path) -> list[tuple[str, str]]:
    app = make_admin_app(load_adapter_config(tmp_path))
    routes = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        assert path, route
        # Fill every {placeholder} with names that exist in the fixture.
        concrete = re.sub(r"\{name\}", "main", path)
        concrete = re.sub(r"\{code\}", "peopleByName", concrete)
        assert "{" not in concrete, path
        routes.append((route.method, "/api/v1" + concrete))
    return routes


def test_route_table_is_complete(tmp_path):
    methods = {m for m, _ in _admin_routes(tmp_path)}
    assert {"GET", "POST", "PUT", "DELETE"} <= methods
    assert len(_admin_routes(tmp_path)) >= 15


def _bad_headers(good_key: str) -> list[dict[str, str]]:
    key_id = good_key.split("_")[1]
    forged = f"jpad_{key_id}_{'A' * 43}"  # right id, wrong secret
    return [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": forged},  # no scheme
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": f"Basic {good_key}"},
        {"Authorization": f"Bearer {good_key}x"},
        {"X-Api-Key": good_key},
    ]


async def test_every_admin_route_refuses_missing_or_wrong_key(admin, tmp_path):
    client, key = admin
    good = {"Authorization": f"Bearer {key}"}
    await client.post("/api/v1/services", json=_body(), headers=good)
    before = await _snapshot(client, good)
    routes = _admin_routes(tmp_path)
    for method, path in routes:
        for headers in _bad_headers(key):
            resp = await client.request(method, path, json=_body(), headers=headers)
            assert resp.status == 401, (method, path, headers)
            if method != "HEAD":
                problem = await resp.json(content_type="application/problem+json")
                assert problem["code"] == "Unauthorized"
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    # Nothing changed: no handler ran.
    assert await _snapshot(client, good) == before


async def test_unknown_admin_path_needs_a_key_too(admin):
    client, key = admin
    resp = await client.get("/api/v1/secret-things")
    assert resp.status == 401
    resp = await client.get(
        "/api/v1/secret-things", headers={"Authorization": f"Bearer {key}"}
    )
    assert resp.status == 404


async def test_revoked_key_is_refused(admin, tmp_path):
    client, key = admin
    config = load_adapter_config(tmp_path)
    info, second = create_api_key(config.admin_api_key_file, "second")
    good = {"Authorization": f"Bearer {second}"}
    assert (await client.get("/api/v1/services", headers=good)).status == 200
    from adapter_server.apikeys import revoke_api_key

    revoke_api_key(config.admin_api_key_file, info.key_id)
    assert (await client.get("/api/v1/services", headers=good)).status == 401
    first = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/v1/services", headers=first)).status == 200


def test_key_file_must_be_private(tmp_path):
    path = tmp_path / "keys"
    _, key = create_api_key(path, "x")
    path.chmod(0o644)
    from jplink.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="chmod 600"):
        ApiKeyStore(path).authenticate(key)


async def test_public_routes_need_no_key(admin):
    client, key = admin
    good = {"Authorization": f"Bearer {key}"}
    await client.post("/api/v1/services", json=_body(), headers=good)
    assert (await client.get("/wsdl/DATA")).status == 200
    assert (await client.get("/openapi/DATA")).status == 200


def _body() -> dict[str, object]:
    from adapter_server.portable import service_to_dict

    return service_to_dict(people_by_name(typed=True))


async def _snapshot(client, good) -> tuple[str, str]:
    services = await (await client.get("/api/v1/services", headers=good)).text()
    sources = await (await client.get("/api/v1/datasources", headers=good)).text()
    return services, sources


def test_admin_app_is_mounted_on_the_main_app(tmp_path):
    from adapter_server.app import make_app

    app = make_app(load_adapter_config(tmp_path))
    prefixes = [
        r.get_info().get("prefix")
        for r in app.router.resources()
        if isinstance(r, web.PrefixedSubAppResource)
    ]
    assert prefixes == ["/api/v1"]
