"""Evidence export: containers built from stored message-log records verify.

The records are made as the proxies make them: real XAdES signatures by a
test PKI's signing certificate with a real OCSP response (``ca_tsa``'s
responder), stored through ``messagelog.log_entry`` into ``message_log``;
then time-stamped here the way X-Road's message log does (a batch token over
the ts hash chain of the records' signature hashes, or a single token over
the SignatureValue) with ``ca_tsa``'s TSA core. The containers must pass our
verifier and their tokens ``openssl ts -verify``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import subprocess
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from sqlalchemy import insert, select

from ca_tsa.ocsp.request import parse_ocsp_request
from ca_tsa.ocsp.responder import GOOD, OcspResponder
from ca_tsa.tsa.authority import TimestampAuthority
from jplink.asic import AsicTrust, parse_asic_container, verify_asic_container
from jplink.errors import Conflict, InvalidRequest, NotFound
from jplink.identifiers import ClientId, ServiceId
from jplink.security.certs import CertProfile, MemberSubject
from jplink.security.hashchain import build_hash_chains
from jplink.security.ocsp import build_ocsp_request
from jplink.security.signature import SignedPart, sign_message
from jplink.security.tsp import build_timestamp_request, verify_timestamp_response
from jplink.storage import Database
from security_server import evidence, logcrypt, messagelog_query
from security_server.cli import ss
from security_server.config import MessageLogMode
from security_server.db import open_database
from security_server.evidence_http import find_evidence
from security_server.messagelog import log_entry
from security_server.messagelog_query import LogQuery, Outcome
from security_server.models import (
    Client,
    MessageLogRecord,
    MessageSignature,
    MessageTimestamp,
)
from security_server.proxy_listener import client_proxy_server
from security_server.states import LogDirection, LogSide
from tests.conftest import require_tool
from tests.support.http11 import listening
from tests.support.pki import TestPki, build_test_pki, pem

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
CLIENT = ClientId("JP", "COM", "1111", "client")
OTHER = ClientId("JP", "COM", "3333", "other")
SERVICE = ServiceId("JP", "COM", "2222", "data", "getTrades")


def soap(query_id: str, body: str = "<getTrades/>") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/">'
        f"<SOAP-ENV:Header><id>{query_id}</id></SOAP-ENV:Header>"
        f"<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode()


FAULT_BODY = (
    "<SOAP-ENV:Fault><faultcode>Server.ServerProxy.ServiceFailed</faultcode>"
    "<faultstring>down</faultstring></SOAP-ENV:Fault>"
)


@dataclasses.dataclass
class World:
    """A test PKI, a TSA and helpers that log and stamp records."""

    pki: TestPki
    cert: x509.Certificate
    key: Any
    ocsp_der: bytes
    tsa: TimestampAuthority
    trust: AsicTrust
    serial: int = 1

    def stamp(self, data: bytes, at: dt.datetime) -> bytes:
        request = build_timestamp_request(data, cert_req=True)
        self.serial += 1
        response = self.tsa.respond(request.der, serial=self.serial, gen_time=at)
        return verify_timestamp_response(
            response, request=request, trusted_tsa_certs=[self.pki.tsa.cert]
        ).token_der

    async def log(
        self,
        db: Database,
        query_id: str,
        *,
        direction: LogDirection = LogDirection.REQUEST,
        client: ClientId = CLIENT,
        body: str = "<getTrades/>",
        mode: MessageLogMode = MessageLogMode.FULL,
        at: dt.datetime = T0 + dt.timedelta(minutes=2),
    ) -> int:
        message = soap(query_id, body)
        signature = sign_message(
            [SignedPart("/message.xml", message)],
            key=self.key,
            cert=self.cert,
            ocsp_responses=[self.ocsp_der],
            signing_time=at,
        )
        entry = log_entry(
            query_id=query_id,
            client=client,
            service=SERVICE,
            direction=direction,
            side=LogSide.CLIENT_PROXY,
            soap=message,
            signature_xml=signature,
            hash_chain=None,
            hash_chain_result=None,
            signer_cert_der=self.cert.public_bytes(Encoding.DER),
            ocsp_ders=[self.ocsp_der],
            mode=mode,
            x_request_id=None,
            now=at,
        )
        async with db.transaction() as session:
            document = MessageSignature(
                signature_hash=entry.signature_hash, signature_xml=entry.signature_xml
            )
            session.add(document)
            await session.flush()
            result = await session.execute(
                insert(MessageLogRecord).returning(MessageLogRecord.id),
                [{**entry.row(), "signature_id": document.id}],
            )
            return int(result.scalar_one())

    async def stamp_batch(
        self,
        db: Database,
        ids: list[int],
        at: dt.datetime = T0 + dt.timedelta(minutes=3),
    ) -> None:
        """X-Road's batch: a ts hash chain over the records' signature hashes."""
        async with db.transaction() as session:
            rows = (
                (
                    await session.execute(
                        select(MessageLogRecord).where(MessageLogRecord.id.in_(ids))
                    )
                )
                .scalars()
                .all()
            )
            rows = sorted(rows, key=lambda r: r.id)
            if len(rows) == 1:
                value = signature_value(rows[0].signature_xml)
                ts = MessageTimestamp(
                    token_der=self.stamp(value, at), hash_chain_result=None,
                    gen_time=at, tsa_url="test", created_at=at,
                )  # fmt: skip
                session.add(ts)
                await session.flush()
                rows[0].timestamp_id = ts.id
                return
            batch = build_hash_chains(
                [
                    [("/META-INF/signatures.xml", base64.b64decode(r.signature_hash))]
                    for r in rows
                ],
                hash_chain_uri="/ts-hashchain.xml",
            )
            ts = MessageTimestamp(
                token_der=self.stamp(batch.result, at),
                hash_chain_result=batch.result.decode(),
                gen_time=at, tsa_url="test", created_at=at,
            )  # fmt: skip
            session.add(ts)
            await session.flush()
            for row, chain in zip(rows, batch.chains, strict=True):
                row.timestamp_id = ts.id
                row.timestamp_hash_chain = chain.decode()


def signature_value(signature_xml: str) -> bytes:
    """The raw ds:SignatureValue bytes (what a single time-stamp covers)."""
    text = etree.fromstring(signature_xml.encode()).findtext(
        ".//{http://www.w3.org/2000/09/xmldsig#}SignatureValue"
    )
    return base64.b64decode("".join((text or "").split()))


def make_world() -> World:
    pki = build_test_pki(T0 - dt.timedelta(days=1))
    cert, key = pki.issue(CertProfile.SIGN, MemberSubject("JP", "COM", "1111", "Acme"))
    responder = OcspResponder.create(
        issuer=pki.issuing.cert,
        responder_cert=pki.ocsp.cert,
        responder_key=pki.ocsp.key,
        next_update=None,
    )
    ocsp_der = responder.sign_response(
        parse_ocsp_request(build_ocsp_request(cert, pki.issuing.cert)),
        [GOOD],
        now=T0 + dt.timedelta(minutes=1),
    )
    tsa = TimestampAuthority.create(
        tsa_cert=pki.tsa.cert, tsa_key=pki.tsa.key, chain=pki.chain,
        policy_oid="1.3.6.1.4.1.99999.1", accuracy_ms=0,
    )  # fmt: skip
    trust = AsicTrust(ca_certs=(pki.root.cert,), tsa_certs=(pki.tsa.cert,))
    return World(pki, cert, key, ocsp_der, tsa, trust)


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@contextlib.asynccontextmanager
async def open_test_db(url: str) -> AsyncIterator[Database]:
    """A migrated database with CLIENT as a registered client of this server."""
    database = await open_database(url)
    async with database.transaction() as session:
        session.add(
            Client(identifier=str(CLIENT), name="", state="registered", created_at=T0)
        )
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    async with open_test_db(db_url) as database:
        yield database


def openssl_ts_verify(tmp_path: Path, world: World, token: bytes, data: bytes) -> str:
    openssl = require_tool("openssl")
    (tmp_path / "token.tst").write_bytes(token)
    (tmp_path / "data.bin").write_bytes(data)
    (tmp_path / "ca.pem").write_bytes(b"".join(pem(c) for c in world.pki.chain))
    (tmp_path / "tsa.pem").write_bytes(pem(world.pki.tsa.cert))
    done = subprocess.run(
        [openssl, "ts", "-verify", "-token_in", "-in", str(tmp_path / "token.tst"),
         "-data", str(tmp_path / "data.bin"), "-CAfile", str(tmp_path / "ca.pem"),
         "-untrusted", str(tmp_path / "tsa.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def test_batch_stamped_records_export_verifiable_containers(
    db: Database, world: World, tmp_path: Path
) -> None:
    ids = [await world.log(db, f"q-{i}") for i in range(3)]
    await world.stamp_batch(db, ids)
    for record_id in ids:
        found = await evidence.export_record(db, record_id)
        verified = verify_asic_container(found.data, trust=world.trust)
        assert verified.batch_timestamp
        assert verified.message == soap(found.query_id)
        assert found.file_name == evidence.container_name(
            found.query_id, LogDirection.REQUEST, record_id
        )
        assert found.file_name.startswith(f"{found.query_id}-request-")
        container = parse_asic_container(found.data)
        assert container.ts_hash_chain_result is not None
        assert container.timestamp is not None
        out = openssl_ts_verify(
            tmp_path, world, container.timestamp, container.ts_hash_chain_result
        )
        assert "Verification: OK" in out


async def test_single_stamped_record_embeds_the_token(
    db: Database, world: World, tmp_path: Path
) -> None:
    record_id = await world.log(db, "single-1")
    await world.stamp_batch(db, [record_id])
    found = await evidence.export_record(db, record_id)
    verified = verify_asic_container(found.data, trust=world.trust)
    assert not verified.batch_timestamp
    assert verified.timestamp_time == T0 + dt.timedelta(minutes=3)
    # PROTOCOLS.md §12.2: the single token covers the raw SignatureValue.
    out = openssl_ts_verify(
        tmp_path, world, verified.timestamp.token_der,
        verified.signature.signature_value,
    )  # fmt: skip
    assert "Verification: OK" in out


async def test_unstamped_record_needs_an_explicit_request(
    db: Database, world: World
) -> None:
    record_id = await world.log(db, "pending-1")
    with pytest.raises(Conflict) as caught:
        await evidence.export_record(db, record_id)
    assert caught.value.code == "NotTimestamped"
    found = await evidence.export_record(db, record_id, allow_unstamped=True)
    assert not found.timestamped
    container = parse_asic_container(found.data)
    assert container.timestamp is None and container.message == soap("pending-1")


async def test_metadata_only_and_unknown_records_have_no_container(
    db: Database, world: World
) -> None:
    record_id = await world.log(db, "meta-1", mode=MessageLogMode.METADATA)
    await world.stamp_batch(db, [record_id])
    with pytest.raises(Conflict) as caught:
        await evidence.export_record(db, record_id)
    assert caught.value.code == "NoMessageLogged"
    with pytest.raises(NotFound):
        await evidence.export_record(db, 999_999)


async def test_search_by_outcome_client_direction_and_time(
    db: Database, world: World
) -> None:
    ok = await world.log(db, "s-1")
    fault = await world.log(
        db, "s-1", direction=LogDirection.RESPONSE, body=FAULT_BODY,
        at=T0 + dt.timedelta(minutes=5),
    )  # fmt: skip
    other = await world.log(db, "s-2", client=OTHER)
    assert await messagelog_query.classify_outcomes(db) == 3
    faults = await messagelog_query.search_records(db, LogQuery(outcome=Outcome.FAULT))
    assert [r.id for r in faults] == [fault]
    assert faults[0].fault_code == "Server.ServerProxy.ServiceFailed"
    by_query = await messagelog_query.search_records(db, LogQuery(query_id="s-1"))
    assert [r.id for r in by_query] == [fault, ok]  # newest first
    mine = await messagelog_query.search_records(
        db, LogQuery(client=str(CLIENT), direction=LogDirection.REQUEST)
    )
    assert [r.id for r in mine] == [ok]
    late = await messagelog_query.search_records(
        db, LogQuery(since=T0 + dt.timedelta(minutes=4))
    )
    assert [r.id for r in late] == [fault]
    page = await messagelog_query.search_records(db, LogQuery(limit=1, before_id=other))
    assert [r.id for r in page] == [fault]
    detail = await messagelog_query.read_record(db, ok)
    assert detail.message == soap("s-1") and detail.summary.outcome is Outcome.OK
    hidden = await messagelog_query.read_record(db, ok, with_message=False)
    assert hidden.message is None and hidden.signature_xml == detail.signature_xml


async def test_find_evidence_only_for_this_servers_clients(
    db: Database, world: World
) -> None:
    request = await world.log(db, "f-1")
    response = await world.log(db, "f-1", direction=LogDirection.RESPONSE)
    await world.stamp_batch(db, [request, response])
    found = await find_evidence(db, "f-1", CLIENT)
    assert [e.record_id for e in found] == [request, response]
    only = await find_evidence(db, "f-1", CLIENT, direction=LogDirection.RESPONSE)
    assert [e.record_id for e in only] == [response]
    with pytest.raises(InvalidRequest):
        await find_evidence(db, "f-1", OTHER)
    with pytest.raises(NotFound):
        await find_evidence(db, "nothing", CLIENT)


async def test_asic_download_over_http(
    db: Database, world: World, tmp_path: Path
) -> None:
    request = await world.log(db, "h-1")
    response = await world.log(db, "h-1", direction=LogDirection.RESPONSE)
    await world.stamp_batch(db, [request, response])
    unstamped = await world.log(db, "h-2")
    # The real client-proxy server; of the shared resources /asic uses the db.
    server = client_proxy_server(None, _Resources(db))  # type: ignore[arg-type]
    async with listening(server) as port:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(base_url=base) as client:
            await _check_asic_downloads(client, world, unstamped)
        # And with curl, as an auditor would fetch it.
        out = tmp_path / "h-1.asice"
        query = "xRoadInstance=JP&memberClass=COM&memberCode=1111"
        query += "&subsystemCode=client&queryId=h-1&requestOnly&unique"
        done = await asyncio.create_subprocess_exec(
            require_tool("curl"), "-s", "-f", "-o", str(out), "-D", "-",
            f"{base}/asic?{query}", stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        head, _ = await done.communicate()
    assert done.returncode == 0, head
    assert b"application/vnd.etsi.asic-e+zip" in head
    assert b'filename="h-1-request-' in head
    verified = verify_asic_container(out.read_bytes(), trust=world.trust)
    assert verified.message == soap("h-1")


async def _check_asic_downloads(
    client: aiohttp.ClientSession, world: World, unstamped: object
) -> None:
    base = {"xRoadInstance": "JP", "memberClass": "COM", "memberCode": "1111",
            "subsystemCode": "client"}  # fmt: skip
    resp = await client.get("/asic", params={**base, "queryId": "h-1"})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(await resp.read())) as zf:
        names = sorted(zf.namelist())
        assert [n.rsplit("-", 1)[0] for n in names] == ["h-1-request", "h-1-response"]
        for name in names:
            verify_asic_container(zf.read(name), trust=world.trust)
    resp = await client.get(
        "/asic", params={**base, "queryId": "h-1", "requestOnly": "", "unique": ""}
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/vnd.etsi.asic-e+zip"
    verified = verify_asic_container(await resp.read(), trust=world.trust)
    assert verified.message == soap("h-1")
    resp = await client.get("/asic", params={**base, "queryId": "h-1", "unique": ""})
    assert resp.status == 400 and (await resp.json())["code"] == "NotUnique"
    resp = await client.get("/asic", params={**base, "queryId": "h-2"})
    assert resp.status == 404 and (await resp.json())["code"] == "NotTimestamped"
    resp = await client.get(
        "/asic", params={**base, "queryId": "h-1", "memberCode": "3333"}
    )
    assert resp.status == 400 and (await resp.json())["code"] == "InvalidClient"
    resp = await client.get("/asic", params={"queryId": "h-1"})
    assert resp.status == 400
    assert unstamped


@dataclasses.dataclass(frozen=True)
class _Resources:
    db: Database
    client_proxy: None = None


def test_export_cli_writes_a_verifiable_file(tmp_path: Path, world: World) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "ss.toml").write_text("")

    async def prepare() -> int:
        db = await open_database(f"sqlite:///{home / 'ss.db'}")
        try:
            record_id = await world.log(db, "cli-1")
            await world.stamp_batch(db, [record_id])
            return record_id
        finally:
            await db.dispose()

    record_id = asyncio.run(prepare())
    runner = CliRunner()
    out = tmp_path / "out.asice"
    result = runner.invoke(
        ss, ["log", "export", str(record_id), "--home", str(home), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert hashlib.sha256(out.read_bytes()).hexdigest() in result.output
    verify_asic_container(out.read_bytes(), trust=world.trust)
    result = runner.invoke(
        ss, ["log", "search", "--home", str(home), "--query-id", "cli-1"]
    )
    assert result.exit_code == 0 and '"cli-1"' in result.output


async def test_encrypted_body_is_decrypted_for_export(
    db: Database, world: World, tmp_path: Path
) -> None:
    keystore = logcrypt.create_keystore(tmp_path / "logkeys.json", now=T0)
    record_id = await world.log(db, "enc-1")
    async with db.transaction() as session:
        record = await session.get(MessageLogRecord, record_id)
        assert record is not None and record.message is not None
        aad = logcrypt.record_aad(
            record.query_id, record.direction, record.side, record.client
        )
        record.message = keystore.encrypt(record.message, aad)
        record.message_key_id = keystore.current_id
    await world.stamp_batch(db, [record_id])
    with pytest.raises(Conflict) as caught:
        await evidence.export_record(db, record_id)
    assert caught.value.code == "EncryptedRecord"
    found = await evidence.export_record(
        db, record_id, decrypt=evidence.keystore_decryptor(keystore)
    )
    verified = verify_asic_container(found.data, trust=world.trust)
    assert verified.message == soap("enc-1")
