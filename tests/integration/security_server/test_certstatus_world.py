"""The test world of the certificate-status tests (fixtures only, no tests).

A real CA/OCSP app (``ca_tsa.app.make_app`` on a loopback port) issues the
security server's signing and authentication certificates from CSRs made on
its software token; a global configuration built here approves that CA (its
OCSP responder at the app's URL), registers the server ``ss1`` with its auth
certificate and a peer server ``ss2``. The CA signs with the wall clock, so
these tests use real time rather than the fixed ``now``.
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
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca_tsa.app import make_app
from ca_tsa.config import CaTsaConfig
from ca_tsa.home import CaMaterial, init_ca_home, load_ca_material, read_api_key
from jplink.clients.globalconf import LoadedConfiguration
from jplink.globalconf import (
    ApprovedCA,
    CaInfo,
    GlobalSettings,
    Member,
    OcspResponder,
    SecurityServer,
    SharedParameters,
    Subsystem,
    auth_cert_hash,
)
from jplink.identifiers import SecurityServerId
from jplink.security.certs import CertProfile, MemberSubject, build_subject_name
from jplink.security.keys import KeyType, PrivateKey, generate_private_key
from security_server import certificates, csrs, keys
from security_server.certstatus import CertificateStatus
from security_server.config import SecurityServerConfig
from security_server.ocsp_refresher import OcspRefresher
from security_server.softtoken import TokenLogin
from tests.support.ca_api import CaApiClient as CaClient
from tests.support.pki import make_csr

from .conftest import Server
from .helpers import (
    INSTANCE,
    OTHER,
    OWNER,
    OWNER_NAME,
    PIN,
    PROVIDER_SUB,
    SERVER_CODE,
    SUBSYSTEM,
)

OTHER_NAME = "Provider Ltd"
SS1 = SecurityServerId(INSTANCE, "COM", "1111", SERVER_CODE)
SS2 = SecurityServerId(INSTANCE, "COM", "2222", "ss2")


class ConfBox:
    """The "current global configuration" the services read; tests swap it."""

    def __init__(self, loaded: LoadedConfiguration) -> None:
        self.loaded = loaded

    def __call__(self) -> LoadedConfiguration:
        return self.loaded

    def replace(self, **changes: Any) -> None:
        self.loaded = dataclasses.replace(self.loaded, **changes)


@dataclass
class World:
    """Everything a certificate-status test needs."""

    server: Server
    config: SecurityServerConfig
    ca_config: CaTsaConfig
    ca: CaClient
    material: CaMaterial
    sign_cert: x509.Certificate
    auth_cert: x509.Certificate
    peer_cert: x509.Certificate
    peer_key: PrivateKey
    conf: ConfBox
    login: TokenLogin
    status: CertificateStatus
    refresher: OcspRefresher


def real_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def build_shared(
    material: CaMaterial,
    ocsp_url: str,
    auth_cert: x509.Certificate | None,
    peer_cert: x509.Certificate,
    *,
    freshness: int = 3600,
    authentication_only: bool = False,
) -> SharedParameters:
    """The global configuration of the test world."""
    return SharedParameters(
        instance_identifier=INSTANCE,
        global_settings=GlobalSettings(ocsp_freshness_seconds=freshness),
        approved_cas=(
            ApprovedCA(
                name="JP-LINK Test CA",
                top_ca=CaInfo(
                    material.root_cert,
                    (OcspResponder(ocsp_url, material.ocsp_cert),),
                ),
                certificate_profile_info="jp.jplink.Profile",
                authentication_only=authentication_only,
            ),
        ),
        members=(
            Member(OWNER, "Commercial", OWNER_NAME, (Subsystem(SUBSYSTEM),)),
            Member(OTHER, "Commercial", OTHER_NAME, (Subsystem(PROVIDER_SUB),)),
        ),
        security_servers=(
            SecurityServer(
                SS1,
                address="127.0.0.1",
                auth_cert_hashes=(auth_cert_hash(auth_cert),) if auth_cert else (),
                clients=(OWNER, SUBSYSTEM),
            ),
            SecurityServer(
                SS2,
                address="127.0.0.1",
                auth_cert_hashes=(auth_cert_hash(peer_cert),),
                clients=(OTHER, PROVIDER_SUB),
            ),
        ),
    )


async def _own_cert(
    server: Server, ca: CaClient, usage: CertProfile, subject: MemberSubject
) -> x509.Certificate:
    now = real_now()
    key = await keys.generate_key(
        server.db,
        server.config.token_dir,
        server.unlocked,
        "test",
        usage=usage,
        member=OWNER if usage is CertProfile.SIGN else None,
        key_type=KeyType.EC,
        now=now,
    )
    csr = await csrs.create_csr(
        server.db, server.config.token_dir, server.unlocked, "test", key.key_id, now=now
    )
    cert = await ca.issue(usage, subject, csr.pem)
    await _until(cert.not_valid_before_utc)
    await certificates.import_certificate(
        server.db, "test", cert.public_bytes(Encoding.PEM), now=real_now()
    )
    return cert


async def _until(moment: dt.datetime) -> None:
    # The CA writes whole seconds: wait until a fresh certificate is valid.
    delay = (moment - real_now()).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay + 0.01)


@pytest.fixture
async def world(
    server: Server, db_url: str, tmp_path: Path, aiohttp_server: Any
) -> AsyncIterator[World]:
    ca_config = init_ca_home(
        tmp_path / "ca", key_type="ec", now=real_now() - dt.timedelta(hours=1)
    )
    ca_server = await aiohttp_server(make_app(ca_config))
    material = load_ca_material(ca_config)
    config = dataclasses.replace(server.config, database_url=db_url)
    async with aiohttp.ClientSession() as http:
        ca = CaClient(ca_server, http, read_api_key(ca_config))
        sign = await _own_cert(
            server,
            ca,
            CertProfile.SIGN,
            MemberSubject(INSTANCE, "COM", "1111", OWNER_NAME),
        )
        auth = await _own_cert(
            server,
            ca,
            CertProfile.AUTH,
            MemberSubject(INSTANCE, "COM", "1111", OWNER_NAME, SERVER_CODE),
        )
        peer_key = generate_private_key(KeyType.EC)
        peer_subject = MemberSubject(INSTANCE, "COM", "2222", OTHER_NAME, "ss2")
        peer = await ca.issue(
            CertProfile.AUTH,
            peer_subject,
            make_csr(peer_key, build_subject_name(CertProfile.AUTH, peer_subject)),
        )
        await _until(peer.not_valid_before_utc)
        loaded = LoadedConfiguration(
            instance_identifier=INSTANCE,
            shared=build_shared(material, ca.ocsp_url, auth, peer),
            private=None,
            expire_date=real_now() + dt.timedelta(days=1),
            version=6,
            source_url="http://127.0.0.1:9/internalconf",
        )
        login = TokenLogin()
        await login.login(server.db, PIN)
        conf = ConfBox(loaded)
        status = CertificateStatus(server.db, config, login, conf, session=http)
        world = World(
            server=server,
            config=config,
            ca_config=ca_config,
            ca=ca,
            material=material,
            sign_cert=sign,
            auth_cert=auth,
            peer_cert=peer,
            peer_key=peer_key,
            conf=conf,
            login=login,
            status=status,
            refresher=OcspRefresher(
                server.db, config, conf, session=http, on_change=status.invalidate
            ),
        )
        yield world
