"""Large results are streamed; SQLite statements stop at their timeout."""

from __future__ import annotations

import json

import aiohttp
import pytest
from lxml import etree

from .test_admin_api import SOAP_REQUEST

API = "/api/v1"
TNS = "http://jplink.example/adapter/DATA"
COUNTER_SQL = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :upTo)"
    " SELECT i AS num, 'ミ' || i AS label FROM n ORDER BY i"
)


def _service(code: str, sql: str, *, datasource: str = "main", **extra) -> dict:
    return {
        "code": code,
        "subsystem": "DATA",
        "datasource": datasource,
        "sql": sql,
        "max_rows": 1000,
        "parameters": [{"name": "upTo", "type": "integer", "sample": "3"}],
        **extra,
    }


async def _register(client, key, body) -> None:
    resp = await client.post(
        f"{API}/services", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert resp.status == 201, await resp.text()


def _soap(code: str, up_to: int) -> str:
    request = SOAP_REQUEST.replace("peopleByName", code)
    return request.replace("<d:name>Aiko</d:name>", f"<d:upTo>{up_to}</d:upTo>")


async def test_thousand_rows_stream_over_soap_and_rest(admin):
    client, key = admin
    await _register(client, key, _service("counter", COUNTER_SQL))
    resp = await client.post(
        "/soap", data=_soap("counter", 1500), headers={"Content-Type": "text/xml"}
    )
    assert resp.status == 200
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    doc = etree.fromstring(await resp.read())
    rows = doc.findall(f".//{{{TNS}}}counterResponse/{{{TNS}}}row")
    assert [int(r.findtext(f"{{{TNS}}}num")) for r in rows] == list(range(1, 1001))
    assert rows[999].findtext(f"{{{TNS}}}label") == "ミ1000"
    assert doc.findtext(f".//{{{TNS}}}nextOffset") == "1000"
    assert doc.findtext(".//{http://x-road.eu/xsd/xroad.xsd}id") == "1"

    resp = await client.post("/rest/counter", json={"upTo": 1500})
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    answer = json.loads(await resp.read())
    assert [r["num"] for r in answer["rows"]] == list(range(1, 1001))
    assert answer["rows"][0] == {"num": 1, "label": "ミ1"}
    assert answer["next"] == 1000

    # A small answer goes in one piece, with a length.
    resp = await client.post("/rest/counter", json={"upTo": 3})
    assert resp.headers.get("Content-Length")
    assert (await resp.json())["next"] is None


async def test_failure_mid_stream_breaks_the_transfer(admin, db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL columns have one type; only SQLite mixes them")
    client, key = admin
    sql = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
        "WHERE i < :upTo) SELECT CASE WHEN i > 500 THEN 'oops' ELSE i END AS num "
        "FROM n ORDER BY i"
    )
    columns = [{"name": "num", "type": "integer"}]
    await _register(client, key, _service("mixed", sql, columns=columns))
    resp = await client.post("/rest/mixed", json={"upTo": 900})
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
    # A bad value in the first chunk still becomes a proper fault.
    sql_first = sql.replace("i > 500", "i > 5")
    await _register(client, key, _service("mixedEarly", sql_first, columns=columns))
    resp = await client.post("/rest/mixedEarly", json={"upTo": 900})
    assert resp.status == 500
    problem = await resp.json(content_type="application/problem+json")
    assert problem["code"] == "InvalidColumnType"


async def test_sqlite_statement_stops_at_query_timeout(admin, db_url):
    client, key = admin
    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's statement_timeout is covered by test_soap_app")
    headers = {"Authorization": f"Bearer {key}"}
    quick = {"name": "quick", "url": db_url, "query_timeout": 0.3}
    assert (await client.post(f"{API}/datasources", json=quick, headers=headers)).ok
    sql = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
        "WHERE i < :upTo) SELECT count(*) AS c FROM n"
    )
    await _register(client, key, _service("spin", sql, datasource="quick"))
    resp = await client.post("/rest/spin", json={"upTo": 10**12})
    assert resp.status == 503
    problem = await resp.json(content_type="application/problem+json")
    assert problem["code"] == "QueryTimeout"
    # The interrupted connection is clean and serves the next call.
    resp = await client.post("/rest/spin", json={"upTo": 10})
    assert (await resp.json())["rows"] == [{"c": 10}]
