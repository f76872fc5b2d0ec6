"""The audit log of admin changes and all-or-nothing import (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from adapter_server.apikeys import create_api_key
from adapter_server.config import load_adapter_config
from adapter_server.definitions import DataSourceDefinition
from adapter_server.models import AuditRow, DataSourceRow, ServiceRow
from adapter_server.portable import EXPORT_FORMAT, datasource_to_dict, service_to_dict
from jplink.errors import Conflict, InvalidRequest, NotFound

from .conftest import people_by_name

API = "/api/v1"


def _service(code: str, **changes: object) -> dict[str, object]:
    body = service_to_dict(dataclasses.replace(people_by_name(typed=True), code=code))
    body.update(changes)
    return body


def _document(db_url: str, third: dict[str, object]) -> dict[str, object]:
    """A new data source ``extra`` and four services; the third is ``third``."""
    extra = datasource_to_dict(DataSourceDefinition("extra", db_url))
    return {
        "format": EXPORT_FORMAT,
        "datasources": [extra],
        "services": [
            _service("first", datasource="extra"),
            _service("second"),
            third,
            _service("fourth", datasource="extra"),
        ],
    }


async def _counts(registry) -> tuple[int, int, int]:
    async with registry._db.transaction() as s:
        return (
            await s.scalar(select(func.count()).select_from(DataSourceRow)),
            await s.scalar(select(func.count()).select_from(ServiceRow)),
            await s.scalar(select(func.count()).select_from(AuditRow)),
        )


BAD_THIRD = {
    "preview fails": (
        _service("third", sql="SELECT nosuch FROM people WHERE name = :name"),
        InvalidRequest,
        "PreviewFailed",
    ),
    "malformed item": ({**_service("third"), "surprise": 1}, InvalidRequest, None),
    "unknown data source": (_service("third", datasource="nowhere"), NotFound, None),
    "read-only breach": (
        _service("third", sql="DELETE FROM people WHERE name = :name", columns=[]),
        InvalidRequest,
        "InvalidSql",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_THIRD))
async def test_import_stores_nothing_when_the_third_of_four_is_bad(
    registry, db_url, case
):
    third, error, code = BAD_THIRD[case]
    before = await _counts(registry)
    with pytest.raises(error) as err:
        await registry.import_document(_document(db_url, third))
    assert "services[2]" in err.value.message  # names the failing item
    if code:
        assert err.value.code == code
    # Neither the new data source, nor the services before the bad one, nor
    # an audit entry were stored.
    assert await _counts(registry) == before
    assert [d.name for d in await registry.list_datasources()] == ["main"]
    assert await registry.list_services() == ()


async def test_import_of_a_good_document_stores_all_with_one_audit_entry(
    registry, db_url
):
    good = _document(db_url, _service("third"))
    codes = await registry.import_document(good)
    assert codes == ["first", "second", "third", "fourth"]
    stored = {s.code: s.datasource for s in await registry.list_services()}
    assert stored == {
        "first": "extra",
        "second": "main",
        "third": "main",
        "fourth": "extra",
    }
    (entry,) = await registry.audit.entries(limit=1)
    assert (entry.actor, entry.action) == ("cli", "import")
    assert entry.detail == {"datasources": ["extra"], "services": codes}
    # Importing again updates in place (no Conflict) and still works.
    assert await registry.import_document(good) == codes


async def test_every_change_is_audited_in_order_with_its_actor(registry, db_url):
    start = len(await registry.audit.entries(limit=1000))
    ops = registry.acting_as("apikey:00112233aabbccdd")
    await ops.save_datasource(
        DataSourceDefinition("second", db_url), password="Never-Logged-pw"
    )
    await ops.register(people_by_name())
    changed = dataclasses.replace(people_by_name(), title="New")
    await ops.register(changed, replace=True)
    await ops.set_enabled("peopleByName", False)
    await ops.set_enabled("peopleByName", True)
    await ops.delete("peopleByName")
    await ops.delete_datasource("second")
    entries = (await registry.audit.entries(limit=1000))[: -start or None]
    assert [(e.action, e.target) for e in reversed(entries)] == [
        ("datasource.save", "second"),
        ("service.register", "peopleByName"),
        ("service.update", "peopleByName"),
        ("service.disable", "peopleByName"),
        ("service.enable", "peopleByName"),
        ("service.delete", "peopleByName"),
        ("datasource.delete", "second"),
    ]
    assert {e.actor for e in entries} == {"apikey:00112233aabbccdd"}
    assert entries[-1].detail["password_changed"] is True
    assert "Never-Logged-pw" not in repr(entries)
    for e in entries:
        assert e.at.tzinfo is not None
        assert abs(e.at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    # Newest first, and paging walks back in time.
    ids = [e.id for e in entries]
    assert ids == sorted(ids, reverse=True)
    second_page = await registry.audit.entries(limit=2, offset=2)
    assert [e.id for e in second_page] == ids[2:4]


async def test_failed_changes_leave_no_audit_entry(registry):
    await registry.register(people_by_name())
    before = await _counts(registry)
    with pytest.raises(Conflict):
        await registry.register(people_by_name())
    with pytest.raises(NotFound):
        await registry.set_enabled("ghost", False)
    with pytest.raises(Conflict):
        await registry.delete_datasource("main")
    assert await _counts(registry) == before


async def test_bad_paging_and_actors_are_refused(registry):
    with pytest.raises(InvalidRequest):
        await registry.audit.entries(limit=0)
    with pytest.raises(InvalidRequest):
        await registry.audit.entries(limit=1001)
    with pytest.raises(ValueError):
        registry.acting_as("somebody")


# -- over the admin API --------------------------------------------------------


async def test_admin_changes_are_audited_under_the_key_id(admin, tmp_path):
    client, key = admin
    h = {"Authorization": f"Bearer {key}"}
    key_id = key.split("_")[1]
    resp = await client.post(f"{API}/services", json=_service("viaApi"), headers=h)
    assert resp.status == 201
    await client.post(f"{API}/services/viaApi/disable", headers=h)
    resp = await client.get(f"{API}/audit?limit=2", headers=h)
    assert resp.status == 200
    entries = (await resp.json())["entries"]
    assert [(e["action"], e["target"], e["actor"]) for e in entries] == [
        ("service.disable", "viaApi", f"apikey:{key_id}"),
        ("service.register", "viaApi", f"apikey:{key_id}"),
    ]
    assert dt.datetime.fromisoformat(entries[0]["at"]).tzinfo is not None
    # A second key is told apart from the first.
    config = load_adapter_config(tmp_path)
    info, other = create_api_key(config.admin_api_key_file, "other")
    await client.delete(
        f"{API}/services/viaApi", headers={"Authorization": f"Bearer {other}"}
    )
    latest = (await (await client.get(f"{API}/audit?limit=1", headers=h)).json())[
        "entries"
    ][0]
    assert (latest["action"], latest["actor"]) == (
        "service.delete",
        f"apikey:{info.key_id}",
    )
    for query in ("limit=0", "limit=x", "offset=-1", "limit=99999999999"):
        resp = await client.get(f"{API}/audit?{query}", headers=h)
        assert resp.status == 400, query
        problem = await resp.json(content_type="application/problem+json")
        assert problem["code"] == "InvalidQuery"


async def test_admin_import_is_all_or_nothing(admin, db_url):
    client, key = admin
    h = {"Authorization": f"Bearer {key}"}
    audit_before = await (await client.get(f"{API}/audit", headers=h)).json()
    bad = _document(db_url, BAD_THIRD["preview fails"][0])
    resp = await client.post(f"{API}/import?format=json", data=json.dumps(bad),
                             headers=h)  # fmt: skip
    assert resp.status == 400
    problem = await resp.json(content_type="application/problem+json")
    assert problem["code"] == "PreviewFailed" and "services[2]" in problem["detail"]
    assert await (await client.get(f"{API}/services", headers=h)).json() == []
    sources = await (await client.get(f"{API}/datasources", headers=h)).json()
    assert [d["name"] for d in sources] == ["main"]
    audit_after = await (await client.get(f"{API}/audit", headers=h)).json()
    assert audit_after == audit_before
