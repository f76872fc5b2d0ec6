"""REST calls and the OpenAPI document."""

from __future__ import annotations

import pytest


async def test_rest_call_returns_typed_rows(adapter):
    resp = await adapter.post("/rest/peopleByName", json={"name": "Botan"})
    assert resp.status == 200
    assert await resp.json() == {
        "rows": [
            {
                "id": 2,
                "name": "Botan",
                "born": "1985-12-24",
                "score": "7.25",
                "active": False,
            }
        ],
        "next": None,
    }


async def test_rest_paging(adapter):
    first = await (await adapter.post("/rest/allPeople", json={})).json()
    assert ([r["id"] for r in first["rows"]], first["next"]) == ([1, 2], 2)
    second = await (
        await adapter.post(f"/rest/allPeople?offset={first['next']}", json={})
    ).json()
    assert ([r["id"] for r in second["rows"]], second["next"]) == ([3, 4], None)


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/rest/nothing", {}, 404, "Client.UnknownService"),
        ("/rest/peopleByName", {}, 400, "Client.MissingParameter"),
        ("/rest/peopleByName", {"name": 5}, 400, "Client.InvalidParameter"),
        ("/rest/peopleByName", ["x"], 400, "Client.InvalidBody"),
        ("/rest/searchPeople", {"minId": "1 OR 1=1", "active": True,
                                "bornAfter": "1900-01-01"}, 400,
         "Client.InvalidParameter"),
        ("/rest/searchPeople", {"minId": 1, "active": "true' OR '1'='1",
                                "bornAfter": "1900-01-01"}, 400,
         "Client.InvalidParameter"),
        ("/rest/gone", {"name": "x"}, 503, "Server.DatabaseUnavailable"),
    ],
)  # fmt: skip
async def test_rest_errors(adapter, path, body, status, code):
    resp = await adapter.post(path, json=body)
    assert resp.status == status
    problem = await resp.json()
    assert problem["type"] == code
    assert problem["detail"]


async def test_rest_string_injection_returns_nothing(adapter):
    resp = await adapter.post("/rest/peopleByName", json={"name": "x' OR '1'='1"})
    assert (await resp.json())["rows"] == []


async def test_openapi_document(adapter):
    resp = await adapter.get("/openapi/DATA")
    doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    op = doc["paths"]["/rest/searchPeople"]["post"]
    assert op["x-xroad-version"] == "v2"
    request = doc["components"]["schemas"]["searchPeopleRequest"]
    assert set(request["required"]) == {"minId", "active", "bornAfter"}
    assert request["properties"]["bornAfter"] == {"type": "string", "format": "date"}
