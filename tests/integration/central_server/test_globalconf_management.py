"""What approved management requests change shows in the shared parameters.

Maintenance mode becomes ``securityServer/inMaintenanceMode`` (V5+, with the
optional message) and a disabled client leaves its server's ``client`` list
(X-Road lists only enabled server clients), while the subsystem stays a
registered member's subsystem. Each generation is validated against X-Road's
V6 schema and parsed back with the core parser.
"""

from __future__ import annotations

import pytest
from lxml import etree

from central_server.confgen import SourceType, add_signing_key, generate_configuration
from central_server.config import CentralConfig, PublisherSettings
from jplink.globalconf import MaintenanceMode, SharedParameters, parse_shared_parameters
from jplink.protocol.management import ManagementRequest
from tests.conftest import FIXED_NOW
from tests.unit.jplink.globalconf.helpers import load_schema
from tests.unit.jplink.protocol.test_management_helpers import (
    OWNER,
    SERVER,
    build_mgmt_pki,
)

from .test_management_service import SUB, T, _approve, _registered, seed


@pytest.fixture(scope="module")
def mp():
    return build_mgmt_pki(FIXED_NOW)


@pytest.fixture(scope="module")
def signers(mp):
    return {"owner": mp.member(OWNER)}


@pytest.fixture
async def mdb(db, mp, now):
    await seed(db, mp, now)
    return db


async def _shared(db, config, now, xroad_vectors) -> SharedParameters:
    gen = await generate_configuration(db, config, now=now)
    data = next(d for loc, d in gen.files.items() if loc.endswith("shared-params.xml"))
    load_schema(xroad_vectors, "xsd-shared-parameters-v6.xsd").assertValid(
        etree.fromstring(data)
    )
    return parse_shared_parameters(data)


@pytest.fixture
async def config(mdb, db_url, tmp_path, now):
    for source in (SourceType.INTERNAL, SourceType.EXTERNAL):
        await add_signing_key(mdb, "t", tmp_path, source, now=now)
    return CentralConfig(
        home=tmp_path,
        database_url=db_url,
        publisher=PublisherSettings(source_urls=("http://cs.example.jp",)),
    )


async def test_maintenance_and_disabled_clients_are_published(
    mdb, mp, signers, config, now, xroad_vectors
):
    owner = signers["owner"]
    await _registered(mdb, mp, signers, now)
    await _approve(
        mdb,
        ManagementRequest(T.CLIENT_REG, SERVER, client=SUB, subsystem_name="Sub"),
        now,
        member=owner,
    )
    shared = await _shared(mdb, config, now, xroad_vectors)
    assert shared.server(SERVER).clients == (SUB,)
    assert shared.server(SERVER).maintenance is None

    message = "Upgrade until 10:00 JST"
    await _approve(
        mdb,
        ManagementRequest(T.MAINTENANCE_MODE_ENABLE, SERVER, message=message),
        now,
        member=owner,
    )
    await _approve(
        mdb, ManagementRequest(T.CLIENT_DISABLE, SERVER, client=SUB), now, member=owner
    )
    shared = await _shared(mdb, config, now, xroad_vectors)
    server = shared.server(SERVER)
    assert server.maintenance == MaintenanceMode(message)
    assert server.clients == ()
    # Disabled on this server, still a registered subsystem of its member.
    assert shared.is_registered(SUB)

    await _approve(
        mdb, ManagementRequest(T.CLIENT_ENABLE, SERVER, client=SUB), now, member=owner
    )
    await _approve(
        mdb, ManagementRequest(T.MAINTENANCE_MODE_DISABLE, SERVER), now, member=owner
    )
    shared = await _shared(mdb, config, now, xroad_vectors)
    assert shared.server(SERVER).clients == (SUB,)
    assert shared.server(SERVER).maintenance is None


async def test_maintenance_without_message(
    mdb, mp, signers, config, now, xroad_vectors
):
    await _registered(mdb, mp, signers, now)
    await _approve(
        mdb,
        ManagementRequest(T.MAINTENANCE_MODE_ENABLE, SERVER),
        now,
        member=signers["owner"],
    )
    shared = await _shared(mdb, config, now, xroad_vectors)
    assert shared.server(SERVER).maintenance == MaintenanceMode(None)
