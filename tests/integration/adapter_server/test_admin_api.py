"""The admin REST API on SQLite and PostgreSQL: data sources and services."""

from __future__ import annotations

import json
import tomllib

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from adapter_server.datasources import async_url
from adapter_server.portable import service_to_dict

from .conftest import people_by_name

API = "/api/v1"


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _people_body(**changes: object) -> dict[str, object]:
    body = service_to_dict(people_by_name(typed=True))
    body.update(changes)
    return body


async def _problem(resp, status: int, code: str) -> dict[str, object]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["code"] == code
    assert problem["status"] == status
    return problem


SOAP_REQUEST = """<?xml version="1.0" encoding="UTF-8"?>
<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:x="http://x-road.eu/xsd/xroad.xsd" xmlns:i="http://x-road.eu/xsd/identifiers"
 xmlns:d="http://jplink.example/adapter/DATA"><e:Header>
<x:client i:objectType="SUBSYSTEM"><i:xRoadInstance>JP</i:xRoadInstance>
<i:memberClass>COM</i:memberClass><i:memberCode>1</i:memberCode>
<i:subsystemCode>C</i:subsystemCode></x:client>
<x:service i:objectType="SERVICE"><i:xRoadInstance>JP</i:xRoadInstance>
<i:memberClass>COM</i:memberClass><i:memberCode>2</i:memberCode>
<i:subsystemCode>DATA</i:subsystemCode><i:serviceCode>peopleByName</i:serviceCode>
<i:serviceVersion>v1</i:serviceVersion></x:service>
<x:id>1</x:id><x:protocolVersion>4.0</x:protocolVersion></e:Header>
<e:Body><d:peopleByName><d:name>Aiko</d:name></d:peopleByName></e:Body></e:Envelope>"""


async def _soap(client) -> str:
    resp = await client.post(
        "/soap", data=SOAP_REQUEST, headers={"Content-Type": "text/xml"}
    )
    return await resp.text()


async def test_datasource_lifecycle_never_shows_password(admin, db_url):
    client, key = admin
    secret = "pa55-w0rd-never-shown"
    body = {"name": "other", "url": db_url, "password": secret, "pool_size": 2}
    resp = await client.post(f"{API}/datasources", json=body, headers=_auth(key))
    assert resp.status == 201
    created = await resp.json()
    assert created == {
        "name": "other",
        "url": db_url,
        "pool_size": 2,
        "connect_timeout": 10.0,
        "query_timeout": 30.0,
    }
    listed = await (await client.get(f"{API}/datasources", headers=_auth(key))).text()
    shown = await (
        await client.get(f"{API}/datasources/other", headers=_auth(key))
    ).text()
    exported = await (await client.get(f"{API}/export", headers=_auth(key))).text()
    for text_ in (listed, shown, exported):
        assert secret not in text_
    assert [d["name"] for d in json.loads(listed)] == ["main", "other"]
    # The password is encrypted at rest, not stored as is.
    # The fixture's store and data source share one database.
    engine = create_async_engine(async_url(db_url))
    async with engine.connect() as conn:
        token = await conn.scalar(
            text("SELECT password_token FROM adapter_datasource WHERE name='other'")
        )
    await engine.dispose()
    assert token and secret not in token

    resp = await client.delete(f"{API}/datasources/other", headers=_auth(key))
    assert resp.status == 204
    resp = await client.get(f"{API}/datasources/other", headers=_auth(key))
    await _problem(resp, 404, "NotFound")


async def test_password_in_url_is_moved_out(admin, db_url):
    client, key = admin
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite URLs carry no password")
    scheme, rest = db_url.split("://", 1)
    user, host = rest.split("@", 1)
    with_pw = f"{scheme}://{user}:hunter2hunter2@{host}"
    body = {"name": "pw", "url": with_pw}
    resp = await client.post(f"{API}/datasources", json=body, headers=_auth(key))
    assert resp.status == 201
    assert (await resp.json())["url"] == db_url
    assert "hunter2hunter2" not in await resp.text()
    # The (encrypted) password is used to connect.
    resp = await client.post(f"{API}/datasources/pw/test", headers=_auth(key))
    assert resp.status == 200


async def test_test_connection_good(admin):
    client, key = admin
    resp = await client.post(f"{API}/datasources/main/test", headers=_auth(key))
    assert resp.status == 200
    result = await resp.json()
    assert result["name"] == "main" and result["reachable"] is True


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://dbuser:Sup3rSecretPw@127.0.0.1:1/nowhere",
        "sqlite:////nonexistent-dir-jplink/sub/db.sqlite",
    ],
)
async def test_test_connection_unreachable_is_clear_and_leaks_nothing(admin, url):
    client, key = admin
    body = {"name": "down", "url": url, "connect_timeout": 2}
    resp = await client.post(f"{API}/datasources", json=body, headers=_auth(key))
    assert resp.status == 201
    resp = await client.post(f"{API}/datasources/down/test", headers=_auth(key))
    problem = await _problem(resp, 503, "DatabaseUnavailable")
    assert problem["detail"] == "Data source 'down' is not reachable; try again later"
    raw = await resp.text()
    for leak in ("Sup3rSecretPw", "Connect call failed", "unable to open", "Errno"):
        assert leak not in raw


async def test_test_connection_missing_database_leaks_no_db_text(admin, db_url):
    client, key = admin
    if not db_url.startswith("postgresql"):
        pytest.skip("needs a PostgreSQL server that refuses the database")
    missing = db_url.rsplit("/", 1)[0] + "/no_such_database_xyz"
    body = {"name": "missing", "url": missing, "connect_timeout": 5}
    await client.post(f"{API}/datasources", json=body, headers=_auth(key))
    resp = await client.post(f"{API}/datasources/missing/test", headers=_auth(key))
    raw = await resp.text()
    await _problem(resp, 503, "DatabaseUnavailable")
    assert "does not exist" not in raw and "no_such_database_xyz" not in raw


async def test_register_previews_and_introspects_columns(admin, db_url):
    client, key = admin
    body = _people_body(columns=[])
    preview = await client.post(
        f"{API}/services/preview", json=body, headers=_auth(key)
    )
    assert preview.status == 200
    previewed = await preview.json()
    names = [c["name"] for c in previewed["columns"]]
    assert names == ["id", "name", "born", "score", "active"]
    assert previewed["columns"][0]["type"] == "integer"
    # Nothing was stored by the preview.
    listed = await (await client.get(f"{API}/services", headers=_auth(key))).json()
    assert listed == []

    resp = await client.post(f"{API}/services", json=_people_body(), headers=_auth(key))
    assert resp.status == 201
    assert (await resp.json())["columns"] == _people_body()["columns"]
    again = await client.post(
        f"{API}/services", json=_people_body(), headers=_auth(key)
    )
    await _problem(again, 409, "Conflict")
    # The running catalogue serves the new service at once.
    answer = await _soap(client)
    assert "peopleByNameResponse" in answer and "<d:id>1</d:id>" in answer


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"sql": "SELECT * FROM missing_table WHERE x = :name"}, "PreviewFailed"),
        ({"sql": "SELECT 1 AS a; DELETE FROM people"}, "InvalidSql"),
        ({"sql": "DELETE FROM people WHERE name = :name"}, "InvalidSql"),
        ({"sql": "SELECT id FROM people WHERE name = :nom"}, "ParameterMismatch"),
        ({"code": "bad code"}, "InvalidName"),
        ({"datasource": "nope"}, "NotFound"),
    ],
)
async def test_register_refuses_bad_definitions(admin, changes, code):
    client, key = admin
    body = _people_body(columns=[], **changes)
    resp = await client.post(f"{API}/services", json=body, headers=_auth(key))
    await _problem(resp, 404 if code == "NotFound" else 400, code)
    listed = await (await client.get(f"{API}/services", headers=_auth(key))).json()
    assert listed == []


async def test_unknown_field_and_bad_json(admin):
    client, key = admin
    resp = await client.post(
        f"{API}/services", json=_people_body(extra=1), headers=_auth(key)
    )
    problem = await _problem(resp, 400, "InvalidRequest")
    assert "extra" in problem["detail"]
    resp = await client.post(f"{API}/services", data=b"{nope", headers=_auth(key))
    await _problem(resp, 400, "InvalidJson")


async def test_show_update_disable_enable_delete(admin):
    client, key = admin
    h = _auth(key)
    await client.post(f"{API}/services", json=_people_body(), headers=h)
    shown = await (await client.get(f"{API}/services/peopleByName", headers=h)).json()
    assert shown["title"] == "People by name" and shown["enabled"] is True

    updated = _people_body(title="人の検索", version="v2")
    del updated["code"]
    resp = await client.put(f"{API}/services/peopleByName", json=updated, headers=h)
    assert resp.status == 200
    assert (await resp.json())["title"] == "人の検索"
    mismatch = _people_body(code="other")
    resp = await client.put(f"{API}/services/peopleByName", json=mismatch, headers=h)
    await _problem(resp, 400, "InvalidRequest")
    resp = await client.put(f"{API}/services/ghost", json=_people_body(code="ghost"),
                            headers=h)  # fmt: skip
    await _problem(resp, 404, "NotFound")

    resp = await client.post(f"{API}/services/peopleByName/disable", headers=h)
    assert (await resp.json())["enabled"] is False
    # The running catalogue was refreshed at once (its TTL is an hour).
    assert "ServiceDisabled" in await _soap(client)
    resp = await client.post(f"{API}/services/peopleByName/enable", headers=h)
    assert (await resp.json())["enabled"] is True
    assert "ServiceDisabled" not in await _soap(client)

    resp = await client.delete(f"{API}/datasources/main", headers=h)
    await _problem(resp, 409, "Conflict")
    assert (
        await client.delete(f"{API}/services/peopleByName", headers=h)
    ).status == 204
    assert "UnknownService" in await _soap(client)
    resp = await client.delete(f"{API}/services/peopleByName", headers=h)
    await _problem(resp, 404, "NotFound")


@pytest.mark.parametrize("fmt", ["json", "toml"])
async def test_export_import_round_trip(admin, fmt):
    client, key = admin
    h = _auth(key)
    await client.post(f"{API}/services", json=_people_body(), headers=h)
    resp = await client.get(f"{API}/export?format={fmt}", headers=h)
    assert resp.status == 200
    exported = await resp.text()
    parsed = json.loads(exported) if fmt == "json" else tomllib.loads(exported)
    assert [s["code"] for s in parsed["services"]] == ["peopleByName"]

    await client.delete(f"{API}/services/peopleByName", headers=h)
    resp = await client.post(f"{API}/import?format={fmt}", data=exported, headers=h)
    assert resp.status == 200
    assert (await resp.json()) == {"imported": ["peopleByName"]}
    again = await (await client.get(f"{API}/export?format={fmt}", headers=h)).text()
    assert again == exported
    assert ">Aiko<" in await _soap(client)

    resp = await client.post(f"{API}/import?format={fmt}", data=b"x = [", headers=h)
    await _problem(resp, 400, "InvalidRequest")
    resp = await client.get(f"{API}/export?format=yaml", headers=h)
    await _problem(resp, 400, "InvalidRequest")
