"""The auditor's admin routes: search, read, container download, diagnostics.

Records are made as the proxies make them (real XAdES signatures, a real OCSP
response, time-stamps by ``ca_tsa``'s TSA; see ``test_evidence.World``); the
containers downloaded through the API must pass our ASiC-E verifier and their
tokens ``openssl ts -verify``. Every body handed out must leave an audit row
naming the API key that read it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import update

from jplink.asic import parse_asic_container, verify_asic_container
from jplink.storage import Database
from security_server import audit, logcrypt, messagelog_query
from security_server.admin import Role
from security_server.config import (
    CONFIG_FILE,
    MessageLogMode,
    SecurityServerConfig,
    load_ss_config,
)
from security_server.db import open_database
from security_server.models import Client, MessageLogRecord
from security_server.proxy_listener import client_proxy_server
from security_server.states import LogDirection
from tests.integration.security_server.test_evidence import (
    CLIENT,
    FAULT_BODY,
    OTHER,
    SERVICE,
    T0,
    World,
    make_world,
    openssl_ts_verify,
    soap,
)
from tests.support.http11 import session_for

from .conftest import Admin, ClientFactory, make_admin

LOG = "/api/v1/message-log"
DIAG = "/api/v1/diagnostics/message-log"
AUD = Role.AUDITOR


@dataclasses.dataclass
class Clock:
    at: dt.datetime

    def __call__(self) -> dt.datetime:
        return self.at


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.fixture
async def logdb(db_url: str) -> AsyncIterator[Database]:
    """A migrated database (SQLite and PostgreSQL) with CLIENT registered."""
    database = await open_database(db_url)
    async with database.transaction() as session:
        session.add(
            Client(identifier=str(CLIENT), name="", state="registered", created_at=T0)
        )
    try:
        yield database
    finally:
        await database.dispose()


def config_with(tmp_path: Path, toml: str = "") -> SecurityServerConfig:
    home = tmp_path / "ss-home"
    home.mkdir(parents=True, exist_ok=True)
    (home / CONFIG_FILE).write_text(toml)
    return load_ss_config(home)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + dt.timedelta(minutes=10))


@pytest.fixture
async def api(
    aiohttp_client: ClientFactory, logdb: Database, tmp_path: Path, clock: Clock
) -> Admin:
    return await make_admin(aiohttp_client, logdb, config_with(tmp_path), clock)


async def ids_of(api: Admin, query: str, role: Role = AUD) -> list[int]:
    found = await api.call("GET", f"{LOG}?{query}", role)
    return [r["id"] for r in found["records"]]


async def reads(api: Admin) -> list[tuple[str, str, str]]:
    """(action, API key name, target) of the message-log audit rows."""
    rows = await audit.list_audit(api.db, limit=1000)
    return [
        (r.action, r.actor.split("(")[0], r.target)
        for r in reversed(rows)
        if r.action.startswith("message-log.")
    ]


async def test_each_search_filter_works(api: Admin, world: World) -> None:
    db = api.db
    ok = await world.log(db, "s-1")
    fault = await world.log(
        db, "s-1", direction=LogDirection.RESPONSE, body=FAULT_BODY,
        at=T0 + dt.timedelta(minutes=5),
    )  # fmt: skip
    other = await world.log(db, "s-2", client=OTHER)
    await messagelog_query.classify_outcomes(db)
    assert await ids_of(api, "") == [other, fault, ok]
    assert await ids_of(api, "queryId=s-1") == [fault, ok]
    assert await ids_of(api, "queryId=nothing") == []
    # The stored text form and X-Road's I:C:M:S form name the same client.
    assert await ids_of(api, "client=SUBSYSTEM:JP/COM/3333/other") == [other]
    assert await ids_of(api, "client=JP:COM:1111:client") == [fault, ok]
    assert await ids_of(api, f"service={SERVICE}") == [other, fault, ok]
    assert await ids_of(api, "service=SERVICE:JP/COM/2222/data/other") == []
    assert await ids_of(api, "from=2026-03-01T09:04:00Z") == [fault]
    assert await ids_of(api, "to=2026-03-01T09:04:00%2B00:00") == [other, ok]
    assert await ids_of(api, "from=2026-03-01T09:00:00&to=2026-03-01T09:03") == [
        other,
        ok,
    ]
    assert await ids_of(api, "direction=response") == [fault]
    assert await ids_of(api, "direction=request") == [other, ok]
    faults = await api.call("GET", f"{LOG}?outcome=fault", AUD)
    assert [r["id"] for r in faults["records"]] == [fault]
    assert faults["records"][0]["fault_code"] == "Server.ServerProxy.ServiceFailed"
    assert faults["records"][0]["client"] == str(CLIENT)
    assert await ids_of(api, "outcome=ok") == [other, ok]
    assert await ids_of(api, "outcome=unknown") == []
    assert await ids_of(api, "queryId=s-1&direction=request&outcome=ok") == [ok]
    # Security officers and system administrators read the log as well.
    for role in (Role.SECURITY_OFFICER, Role.SYSTEM_ADMINISTRATOR):
        assert await ids_of(api, "queryId=s-2", role) == [other]
    assert await reads(api) == []  # searching hands out no bodies


@pytest.mark.parametrize(
    ("query", "word"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("before=-1", "before"),
        ("direction=sideways", "direction"),
        ("outcome=maybe", "outcome"),
        ("from=yesterday", "from"),
        ("client=nobody", "nobody"),
        ("client=JP::1111", "memberClass"),
        ("client=SUBSYSTEM:JP/COM", "SUBSYSTEM"),
        ("service=getTrades", "getTrades"),
        ("colour=red", "colour"),
    ],
)
async def test_bad_search_parameters_are_a_clear_400(
    api: Admin, query: str, word: str
) -> None:
    problem = await api.call("GET", f"{LOG}?{query}", AUD, expect=400)
    assert problem["status"] == 400 and word in problem["detail"]


async def test_paging_walks_every_record_once(api: Admin, world: World) -> None:
    made = [await world.log(api.db, f"p-{i}") for i in range(5)]
    seen: list[int] = []
    pages = 0
    url = f"{LOG}?limit=2"
    while True:
        page = await api.call("GET", url, AUD)
        pages += 1
        seen += [r["id"] for r in page["records"]]
        if page["next_before"] is None:
            break
        assert page["next_before"] == page["records"][-1]["id"]
        url = f"{LOG}?limit=2&before={page['next_before']}"
    assert seen == sorted(made, reverse=True)
    assert pages == 3


async def test_body_only_in_full_mode_and_each_read_is_audited(
    api: Admin, world: World
) -> None:
    meta = await world.log(api.db, "m-1", mode=MessageLogMode.METADATA)
    full = await world.log(api.db, "m-2")
    shown = await api.call("GET", f"{LOG}/{meta}", AUD)
    assert shown["summary"]["id"] == meta and not shown["summary"]["has_message"]
    assert shown["message"] is None and shown["attachment"] is None
    assert "SignatureValue" in shown["signature_xml"]
    assert await reads(api) == []  # nothing was handed out
    shown = await api.call("GET", f"{LOG}/{full}", AUD)
    assert shown["message"]["text"].encode() == soap("m-2")
    assert not shown["encrypted_at_rest"]
    await api.call("GET", f"{LOG}/{full}", Role.SECURITY_OFFICER)
    assert await reads(api) == [
        ("message-log.read", "apikey:auditor", f"message-log:{full}"),
        ("message-log.read", "apikey:security-officer", f"message-log:{full}"),
    ]
    problem = await api.call("GET", f"{LOG}/999999", AUD, expect=404)
    assert problem["code"] == "RecordNotFound"
    await api.call("GET", f"{LOG}/x1", AUD, expect=400)
    for role in (Role.REGISTRATION_OFFICER, Role.SERVICE_ADMINISTRATOR):
        await api.call("GET", f"{LOG}/{full}", role, expect=403)


async def encrypt_record(
    db: Database, keystore: logcrypt.LogKeystore, rid: int
) -> None:
    """Encrypt a stored body as the writer does with encryption at rest."""
    async with db.transaction() as session:
        record = await session.get(MessageLogRecord, rid)
        assert record is not None and record.message is not None
        aad = logcrypt.record_aad(
            record.query_id, record.direction, record.side, record.client
        )
        await session.execute(
            update(MessageLogRecord)
            .where(MessageLogRecord.id == rid)
            .values(
                message=keystore.encrypt(record.message, aad),
                message_key_id=keystore.current_id,
            )
        )


async def test_encrypted_body_is_decrypted_for_the_auditor(
    aiohttp_client: ClientFactory,
    logdb: Database,
    world: World,
    tmp_path: Path,
    clock: Clock,
) -> None:
    config = config_with(
        tmp_path, '[message_log]\nencryption_keystore = "logkeys.json"\n'
    )
    path = config.message_log.encryption_keystore
    assert path is not None
    first = logcrypt.create_keystore(path, now=T0)
    old = await world.log(logdb, "e-1")
    await encrypt_record(logdb, first, old)
    second = logcrypt.rotate_keystore(path, now=T0 + dt.timedelta(days=1))
    new = await world.log(logdb, "e-2")
    await encrypt_record(logdb, second, new)
    await world.stamp_batch(logdb, [old, new])
    api = await make_admin(aiohttp_client, logdb, config, clock)
    for rid, query_id in ((old, "e-1"), (new, "e-2")):
        shown = await api.call("GET", f"{LOG}/{rid}", AUD)
        assert shown["encrypted_at_rest"]
        assert shown["message"]["text"].encode() == soap(query_id)
        resp = await api.client.get(f"{LOG}/{rid}/asice", headers=api.headers(AUD))
        assert resp.status == 200
        verified = verify_asic_container(await resp.read(), trust=world.trust)
        assert verified.message == soap(query_id)
    # Without the keystore configured the body cannot be shown: a clear 409.
    plain = await make_admin(aiohttp_client, logdb, config_with(tmp_path / "b"), clock)
    problem = await plain.call("GET", f"{LOG}/{old}", AUD, expect=409)
    assert problem["code"] == "EncryptedRecord"
    assert "encryption_keystore" in problem["detail"]


async def test_container_download_verifies_independently(
    api: Admin, world: World, tmp_path: Path
) -> None:
    ids = [await world.log(api.db, f"c-{i}") for i in range(2)]
    await world.stamp_batch(api.db, ids)
    resp = await api.client.get(f"{LOG}/{ids[1]}/asice", headers=api.headers(AUD))
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "application/vnd.etsi.asic-e+zip"
    assert 'filename="c-1-request-' in resp.headers["Content-Disposition"]
    data = await resp.read()
    verified = verify_asic_container(data, trust=world.trust)
    assert verified.batch_timestamp and verified.message == soap("c-1")
    container = parse_asic_container(data)
    assert container.timestamp is not None
    assert container.ts_hash_chain_result is not None
    out = openssl_ts_verify(
        tmp_path, world, container.timestamp, container.ts_hash_chain_result
    )
    assert "Verification: OK" in out
    assert await reads(api) == [
        ("message-log.export", "apikey:auditor", f"message-log:{ids[1]}")
    ]


async def test_container_refusals_are_clear_problems(api: Admin, world: World) -> None:
    pending = await world.log(api.db, "u-1")
    problem = await api.call("GET", f"{LOG}/{pending}/asice", AUD, expect=409)
    assert problem["code"] == "NotTimestamped"
    assert "not time-stamped yet" in problem["detail"]
    meta = await world.log(api.db, "u-2", mode=MessageLogMode.METADATA)
    await world.stamp_batch(api.db, [meta])
    problem = await api.call("GET", f"{LOG}/{meta}/asice", AUD, expect=409)
    assert problem["code"] == "NoMessageLogged"
    await api.call("GET", f"{LOG}/424242/asice", AUD, expect=404)
    await api.call(
        "GET", f"{LOG}/{pending}/asice", Role.REGISTRATION_OFFICER, expect=403
    )
    assert await reads(api) == []


async def test_diagnostics_show_backlog_failure_and_refusal(
    api: Admin, world: World, clock: Clock
) -> None:
    empty = await api.call("GET", DIAG, AUD)
    assert empty["pending"] == 0 and empty["oldest_pending_at"] is None
    assert not empty["failing"] and not empty["refusing"]
    assert empty["failure_period_seconds"] == 14400
    assert empty["timestamping_interval_seconds"] == 60.0  # no global conf yet
    stamped = await world.log(api.db, "d-1")
    await world.stamp_batch(api.db, [stamped])  # at T0 + 3 min
    waiting = await world.log(api.db, "d-2", at=T0 + dt.timedelta(minutes=9))
    state = await api.call("GET", DIAG, AUD)
    assert state["pending"] == 1 and state["archive_backlog"] == 1
    assert state["oldest_pending_age_seconds"] == 60.0
    assert state["last_timestamp_at"] == (T0 + dt.timedelta(minutes=3)).isoformat()
    assert not state["failing"]  # younger than two intervals
    clock.at = T0 + dt.timedelta(minutes=9, hours=1)
    state = await api.call("GET", DIAG, AUD)
    assert state["failing"] and not state["refusing"]
    clock.at = T0 + dt.timedelta(minutes=10, hours=4)
    state = await api.call("GET", DIAG, Role.SECURITY_OFFICER)
    assert state["failing"] and state["refusing"]
    await world.stamp_batch(api.db, [waiting])
    state = await api.call("GET", DIAG, Role.SYSTEM_ADMINISTRATOR)
    assert state["pending"] == 0 and not state["refusing"]
    assert state["archive_backlog"] == 2
    await api.call("GET", DIAG, Role.SERVICE_ADMINISTRATOR, expect=403)


@dataclasses.dataclass(frozen=True)
class _Resources:
    db: Database
    config: SecurityServerConfig
    client_proxy: None = None


async def test_client_proxy_asic_decrypts_encrypted_records(
    aiohttp_client: ClientFactory, logdb: Database, world: World, tmp_path: Path
) -> None:
    config = config_with(
        tmp_path, '[message_log]\nencryption_keystore = "logkeys.json"\n'
    )
    assert config.message_log.encryption_keystore is not None
    keystore = logcrypt.create_keystore(config.message_log.encryption_keystore, now=T0)
    request = await world.log(logdb, "a-1")
    response = await world.log(logdb, "a-1", direction=LogDirection.RESPONSE)
    await encrypt_record(logdb, keystore, request)
    await world.stamp_batch(logdb, [request, response])
    server = client_proxy_server(config, _Resources(logdb, config))  # type: ignore[arg-type]
    params = {"queryId": "a-1", "xRoadInstance": "JP", "memberClass": "COM",
              "memberCode": "1111", "subsystemCode": "client"}  # fmt: skip
    async with session_for(server) as client:
        resp = await client.get("/asic", params=params)
        assert resp.status == 200, await resp.text()
        body = await resp.read()
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        names = sorted(zf.namelist())
        assert len(names) == 2
        for name in names:
            verified = verify_asic_container(zf.read(name), trust=world.trust)
            assert verified.message == soap("a-1")
    # A server without the keystore cannot export it, and says why.
    bare = config_with(tmp_path / "bare")
    server = client_proxy_server(bare, _Resources(logdb, bare))  # type: ignore[arg-type]
    async with session_for(server) as client:
        resp = await client.get("/asic", params={**params, "requestOnly": ""})
        assert resp.status == 500
        assert (await resp.json())["code"] == "EncryptedRecord"
