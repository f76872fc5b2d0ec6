"""The onboarding tests' world (fixtures and helpers only, no tests).

Everything runs in this process on loopback, through public interfaces:

- a real CA/OCSP app (``ca_tsa.app.make_app``); the central server's ``[ca]``
  enrolment calls it when the operator approves a CSR request;
- the central server: admin API (``make_app``, a registration officer's API
  key), registration app (``/register/v1``, ``/managementservice/``) and the
  configuration publisher (regenerates on every registry change), with the
  member ``COM/1111`` registered, the CA approved and the management
  service provider named;
- a security server home initialised with the generated anchor, a token,
  RSA ``sign`` and ``auth`` keys and their CSRs, and the downloaded
  configuration.

The CA and the central server sign with the wall clock, so these tests use
real time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from ca_tsa.app import make_app as make_ca_app
from ca_tsa.home import init_ca_home, load_ca_material, read_api_key
from central_server import apikeys, registry, trust
from central_server.app import make_app as make_central_app
from central_server.app import make_registration_app
from central_server.confgen import SourceType, add_signing_key, generate_anchor
from central_server.config import (
    CaSettings,
    CentralConfig,
    PublisherSettings,
    RegistrationSettings,
)
from central_server.db import open_database as open_central_db
from central_server.publisher import make_publisher_app
from jplink.clients.globalconf import LoadedConfiguration
from jplink.identifiers import ClientId
from jplink.security.certs import CertProfile
from jplink.security.keys import KeyType
from jplink.storage import Database
from security_server import confclient, csrs, identity, keys, softtoken
from security_server.config import CONFIG_FILE, SecurityServerConfig, load_ss_config
from security_server.db import open_database
from security_server.ocsp_refresher import OcspRefresher
from security_server.registration import load_configuration
from tests.support.ports import free_port

INSTANCE = "JP-TEST"
OWNER = ClientId(INSTANCE, "COM", "1111")
OWNER_NAME = "Consumer Ltd"
SERVER_CODE = "ss1"
OPERATOR = ClientId(INSTANCE, "GOV", "0001")
PROVIDER = OPERATOR.subsystem("management")
PIN = "onboarding pin 1"
PROFILE = "ee.jplink.JpLinkCertificateProfileInfoProvider"


def real_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Central:
    """The central server's three faces and its database."""

    config: CentralConfig
    db: Database
    admin: Any  # aiohttp TestClient of the admin API
    officer: dict[str, str]
    registration_url: str
    publisher_url: str

    async def approve_cert_request(self, request_id: int) -> None:
        resp = await self.admin.post(
            f"/api/v1/certificate-requests/{request_id}/approve", headers=self.officer
        )
        assert resp.status == 200, await resp.text()

    async def decline_cert_request(self, request_id: int, reason: str) -> None:
        resp = await self.admin.post(
            f"/api/v1/certificate-requests/{request_id}/decline",
            headers=self.officer,
            json={"reason": reason},
        )
        assert resp.status == 200, await resp.text()

    async def management_requests(self) -> list[dict[str, Any]]:
        resp = await self.admin.get("/api/v1/management-requests", headers=self.officer)
        assert resp.status == 200, await resp.text()
        found: list[dict[str, Any]] = (await resp.json())["managementRequests"]
        return found

    async def approve_management_request(self, request_id: int) -> dict[str, Any]:
        resp = await self.admin.post(
            f"/api/v1/management-requests/{request_id}/approve",
            headers=self.officer,
            json={},
        )
        assert resp.status == 200, await resp.text()
        approved: dict[str, Any] = await resp.json()
        return approved


@dataclass
class World:
    """The onboarding world: central server, CA, one security server home."""

    central: Central
    ss: SecurityServerConfig
    db: Database
    http: aiohttp.ClientSession
    sign_csr: int
    auth_csr: int
    tmp_path: Path

    async def download(self) -> LoadedConfiguration:
        await confclient.download_global_configuration(
            self.db, self.ss, "test", now=real_now()
        )
        return load_configuration(self.ss, now=real_now())

    async def refresh_ocsp(self) -> None:
        when = real_now()
        refresher = OcspRefresher(
            self.db, self.ss, lambda: load_configuration(self.ss, now=when)
        )
        report = await refresher.refresh_now(now=when)
        assert not report.failed, report.outcomes

    async def wait_for(self, predicate: Any, *, seconds: float = 15.0) -> None:
        """Download until ``predicate(shared)`` holds (the publisher regenerates
        in the background after a registry change)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            loaded = await self.download()
            if predicate(loaded.shared):
                return
            assert asyncio.get_running_loop().time() < deadline, "not published"
            await asyncio.sleep(0.2)


async def _central_registry(config: CentralConfig, ca_home: Any) -> dict[str, str]:
    now = real_now()
    material = load_ca_material(ca_home)
    db = await open_central_db(config.db_url)
    try:
        await registry.initialize(
            db,
            "t",
            instance=INSTANCE,
            member_classes={"COM": "Companies", "GOV": "Government"},
            now=now,
        )
        await registry.add_member(db, "t", OWNER, OWNER_NAME, now=now)
        await registry.add_member(db, "t", OPERATOR, "Operator", now=now)
        await registry.add_subsystem(db, "t", PROVIDER, now=now)
        await registry.set_management_service_provider(db, "t", PROVIDER, now=now)
        await trust.add_approved_ca(
            db,
            "t",
            name="JP-LINK Test CA",
            top_ca=trust.CaInfo(
                material.root_cert.public_bytes(Encoding.DER),
                config.ca.url.rstrip("/") + "/ocsp",
                material.ocsp_cert.public_bytes(Encoding.DER),
            ),
            certificate_profile=PROFILE,
            now=now,
        )
        for source in (SourceType.INTERNAL, SourceType.EXTERNAL):
            await add_signing_key(db, "t", config.home, source, now=now)
        _info, key = await apikeys.create_api_key(
            db, "t", name="ro", role=apikeys.Role.REGISTRATION_OFFICER, now=now
        )
    finally:
        await db.dispose()
    return {"Authorization": f"Bearer {key}"}


async def start_central(
    tmp_path: Path, aiohttp_server: Any, aiohttp_client: Any
) -> Central:
    """CA + central server (admin, registration, publisher) on loopback."""
    ca_config = init_ca_home(tmp_path / "ca", now=real_now() - dt.timedelta(hours=1))
    ca_server = await aiohttp_server(make_ca_app(ca_config))
    home = tmp_path / "central"
    (home / "secrets").mkdir(parents=True)
    key_file = home / "secrets" / "ca-api-key"
    key_file.write_text(read_api_key(ca_config))
    key_file.chmod(0o600)
    reg_port, pub_port = free_port(), free_port()
    registration_url = f"http://127.0.0.1:{reg_port}"
    publisher_url = f"http://127.0.0.1:{pub_port}"
    config = CentralConfig(
        home=home,
        ca=CaSettings(url=str(ca_server.make_url("/")), api_key_file=key_file),
        registration=RegistrationSettings(port=reg_port),
        publisher=PublisherSettings(
            poll_seconds=0.1,
            source_urls=(publisher_url,),
            management_service_url=f"{registration_url}/managementservice/",
        ),
    )
    officer = await _central_registry(config, ca_config)
    db = await open_central_db(config.db_url)
    admin = await aiohttp_client(make_central_app(config))
    await aiohttp_server(make_registration_app(config), port=reg_port)
    await aiohttp_server(make_publisher_app(config), port=pub_port)
    return Central(config, db, admin, officer, registration_url, publisher_url)


def _write_ss_config(home: Path, database_url: str) -> None:
    lines = [
        f"database_url = {database_url!r}" if database_url else "",
        "[client_proxy]",
        'host = "127.0.0.1"',
        f"http_port = {free_port()}",
        f"https_port = {free_port()}",
        "[server_proxy]",
        'host = "127.0.0.1"',
        f"port = {free_port()}",
        "[timeouts]",
        "connect_seconds = 5",
        "read_seconds = 10",
    ]
    (home / CONFIG_FILE).write_text("\n".join(lines) + "\n")


async def prepare_security_server(
    tmp_path: Path,
    central: Central,
    http: aiohttp.ClientSession,
    database_url: str = "",
) -> World:
    """An initialised home: anchor, token, RSA keys, CSRs, configuration."""
    now = real_now()
    anchor = await generate_anchor(central.db, central.config, external=False, now=now)
    home = tmp_path / "ss"
    home.mkdir()
    _write_ss_config(home, database_url)
    config = load_ss_config(home)
    db = await open_database(config.db_url)
    await identity.initialize(
        db,
        config,
        "test",
        anchor=anchor,
        owner=OWNER,
        owner_name=OWNER_NAME,
        server_code=SERVER_CODE,
        now=now,
    )
    await softtoken.init_token(db, "test", pin=PIN, now=now)
    unlocked = await softtoken.login(db, PIN)
    ids = {}
    for usage in (CertProfile.SIGN, CertProfile.AUTH):
        key = await keys.generate_key(
            db,
            config.token_dir,
            unlocked,
            "test",
            usage=usage,
            member=OWNER if usage is CertProfile.SIGN else None,
            key_type=KeyType.RSA,
            now=now,
        )
        csr = await csrs.create_csr(
            db, config.token_dir, unlocked, "test", key.key_id, now=now
        )
        ids[usage] = csr.id
    world = World(
        central,
        config,
        db,
        http,
        ids[CertProfile.SIGN],
        ids[CertProfile.AUTH],
        tmp_path,
    )
    await world.download()
    return world


@pytest.fixture(name="world")
async def world_fixture(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    aiohttp_server: Any,
    aiohttp_client: Any,
) -> AsyncIterator[World]:
    """The world; the security server on SQLite, or on PostgreSQL when
    parametrized indirectly with ``"postgresql"``."""
    database_url = ""
    if getattr(request, "param", "sqlite") == "postgresql":
        server = request.getfixturevalue("postgres_server")
        # create_database runs its own event loop: not inside this one.
        database_url = await asyncio.to_thread(server.create_database)
    central = await start_central(tmp_path, aiohttp_server, aiohttp_client)
    async with aiohttp.ClientSession() as http:
        w = await prepare_security_server(tmp_path, central, http, database_url)
        try:
            yield w
        finally:
            await w.db.dispose()
            await central.db.dispose()


def replace_ss(world: World, **changes: Any) -> World:
    return dataclasses.replace(world, **changes)
