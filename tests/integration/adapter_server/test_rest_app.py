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
        ("/rest/nothing", {}, 404, "UnknownService"),
        ("/rest/peopleByName", {}, 400, "MissingParameter"),
        ("/rest/peopleByName", {"name": 5}, 400, "InvalidParameter"),
        ("/rest/peopleByName", ["x"], 400, "InvalidBody"),
        ("/rest/searchPeople", {"minId": "1 OR 1=1", "active": True,
                                "bornAfter": "1900-01-01"}, 400,
         "InvalidParameter"),
        ("/rest/searchPeople", {"minId": 1, "active": "true' OR '1'='1",
                                "bornAfter": "1900-01-01"}, 400,
         "InvalidParameter"),
        ("/rest/gone", {"name": "x"}, 503, "DatabaseUnavailable"),
    ],
)  # fmt: skip
async def test_rest_errors(adapter, path, body, status, code):
    resp = await adapter.post(path, json=body)
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    problem = await resp.json(content_type="application/problem+json")
    # RFC 9457: type, title, status, detail; plus our code.
    assert problem["type"] == f"urn:jplink:problem:{code}"
    assert (problem["code"], problem["status"]) == (code, status)
    assert problem["title"] and problem["detail"]
    if status >= 500:
        # The operator finds the log line by this id; the database's own
        # text (host, user) is never in the answer.
        assert problem["correlation_id"]
        assert "127.0.0.1" not in await resp.text()


async def test_rest_non_post_and_unknown_paths_are_problems(adapter):
    resp = await adapter.get("/rest/peopleByName")
    assert resp.status == 405
    assert "POST" in resp.headers["Allow"]
    problem = await resp.json(content_type="application/problem+json")
    assert problem["code"] == "MethodNotAllowed"
    resp = await adapter.get("/nothing/here")
    assert (resp.status, resp.content_type) == (404, "application/problem+json")


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


async def test_openapi_error_responses_are_problem_documents(adapter):
    doc = await (await adapter.get("/openapi/DATA")).json()
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    for path in doc["paths"].values():
        responses = path["post"]["responses"]
        assert {"400", "404", "500", "503"} <= set(responses)
        for status, response in responses.items():
            if status.startswith("2"):
                continue
            assert list(response["content"]) == ["application/problem+json"]
            ref = response["content"]["application/problem+json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/Problem"
    # What the document promises is what an error answer carries.
    resp = await adapter.post("/rest/peopleByName", json={})
    body = await resp.json(content_type="application/problem+json")
    assert set(problem["required"]) <= set(body)
    assert set(body) <= set(problem["properties"])
