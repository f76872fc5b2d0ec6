"""Registry service layer on SQLite and PostgreSQL: changes, audit, refusals."""

from __future__ import annotations

import base64
import hashlib

import pytest
from sqlalchemy import func, select

from central_server import groups, registry, servers, trust
from central_server.audit import list_audit
from central_server.models import AuditEntry, Base, Member
from central_server.registry import Parameter
from jplink.errors import Conflict, InvalidRequest, NotFound
from jplink.identifiers import ClientId, GlobalGroupId, SecurityServerId
from jplink.storage import Database

from .conftest import INSTANCE
from .helpers import make_cert

ACME = ClientId(INSTANCE, "COM", "1234")
SS1 = SecurityServerId(INSTANCE, "COM", "1234", "ss1")


async def _count(db: Database, model: type[Base]) -> int:
    async with db.transaction() as s:
        return int(
            (await s.execute(select(func.count()).select_from(model))).scalar_one()
        )


async def test_initialize_sets_defaults_and_refuses_twice(db, now):
    params = await registry.get_parameters(db)
    assert params.instance_identifier == INSTANCE
    assert params.conf_expire_interval_seconds == 600
    assert params.ocsp_freshness_seconds == 3600
    assert params.time_stamping_interval_seconds == 60
    assert await registry.list_member_classes(db) == {
        "COM": "Companies",
        "GOV": "Government",
    }
    with pytest.raises(Conflict):
        await registry.initialize(db, "again", instance="X", member_classes={}, now=now)


async def test_member_subsystem_and_listing_with_audit(db, now):
    await registry.add_member(db, "alice", ACME, "Acme Corp", now=now)
    await registry.add_subsystem(db, "alice", ACME.subsystem("billing"), now=now)
    await registry.add_subsystem(db, "alice", ACME.subsystem("api"), now=now)
    members = await registry.list_members(db)
    assert [m.id for m in members] == [ACME]
    assert members[0].name == "Acme Corp"
    assert members[0].subsystems == (ACME.subsystem("api"), ACME.subsystem("billing"))
    entries = await list_audit(db)
    assert [(e.actor, e.action, e.target) for e in entries[:3]] == [
        ("alice", "subsystem.add", "SUBSYSTEM:JP-TEST/COM/1234/api"),
        ("alice", "subsystem.add", "SUBSYSTEM:JP-TEST/COM/1234/billing"),
        ("alice", "member.add", "MEMBER:JP-TEST/COM/1234"),
    ]
    assert entries[0].at == now


@pytest.mark.parametrize(
    ("ident", "name", "error"),
    [
        (ClientId("OTHER", "COM", "1"), "x", InvalidRequest),  # other instance
        (ClientId(INSTANCE, "NOPE", "1"), "x", InvalidRequest),  # unknown class
        (ClientId(INSTANCE, "COM", "1", "sub"), "x", InvalidRequest),  # subsystem
        (ClientId(INSTANCE, "COM", "1"), "  ", InvalidRequest),  # no name
    ],
)
async def test_bad_members_are_refused_and_nothing_is_written(
    db, now, ident, name, error
):
    audit_before = await _count(db, AuditEntry)
    with pytest.raises(error):
        await registry.add_member(db, "alice", ident, name, now=now)
    assert await _count(db, Member) == 0
    assert await _count(db, AuditEntry) == audit_before


async def test_duplicates_are_conflicts_without_extra_audit(db, now):
    await registry.add_member(db, "alice", ACME, "Acme", now=now)
    await registry.add_subsystem(db, "alice", ACME.subsystem("s"), now=now)
    before = await _count(db, AuditEntry)
    with pytest.raises(Conflict):
        await registry.add_member(db, "bob", ACME, "Acme again", now=now)
    with pytest.raises(Conflict):
        await registry.add_subsystem(db, "bob", ACME.subsystem("s"), now=now)
    with pytest.raises(Conflict):
        await registry.add_member_class(db, "bob", "COM", "dup", now=now)
    with pytest.raises(NotFound):
        await registry.add_subsystem(
            db, "bob", ClientId(INSTANCE, "COM", "999", "s"), now=now
        )
    assert await _count(db, AuditEntry) == before


async def test_parameters_and_management_service_provider(db, now):
    await registry.set_parameter(
        db, "root", Parameter.OCSP_FRESHNESS_SECONDS, 900, now=now
    )
    with pytest.raises(InvalidRequest):
        await registry.set_parameter(
            db, "root", Parameter.CONF_EXPIRE_INTERVAL_SECONDS, 0, now=now
        )
    msp = ACME.subsystem("MANAGEMENT")
    with pytest.raises(NotFound):
        await registry.set_management_service_provider(db, "root", msp, now=now)
    await registry.add_member(db, "root", ACME, "Operator", now=now)
    await registry.add_subsystem(db, "root", msp, now=now)
    params = await registry.set_management_service_provider(db, "root", msp, now=now)
    assert params.ocsp_freshness_seconds == 900
    assert params.conf_expire_interval_seconds == 600
    assert params.management_service_provider == msp


async def test_security_server_with_auth_cert_and_clients(db, now):
    await registry.add_member(db, "a", ACME, "Acme", now=now)
    await registry.add_subsystem(db, "a", ACME.subsystem("api"), now=now)
    await servers.add_security_server(db, "a", SS1, address="ss1.example.jp", now=now)
    cert = make_cert("ss1 auth", ca=False)
    digest = await servers.register_auth_cert(db, "a", SS1, cert, now=now)
    # Independent computation of shared-params authCertHash.
    assert digest == base64.b64encode(hashlib.sha256(cert).digest()).decode()
    await servers.add_server_client(db, "a", SS1, ACME.subsystem("api"), now=now)
    await servers.add_server_client(db, "a", SS1, ACME, now=now)
    with pytest.raises(Conflict):
        await servers.register_auth_cert(db, "a", SS1, cert, now=now)
    with pytest.raises(Conflict):
        await servers.add_server_client(db, "a", SS1, ACME, now=now)
    with pytest.raises(Conflict):
        await servers.add_security_server(db, "a", SS1, now=now)
    with pytest.raises(InvalidRequest):
        await servers.register_auth_cert(db, "a", SS1, b"not a cert", now=now)
    with pytest.raises(NotFound):
        await servers.add_server_client(db, "a", SS1, ACME.subsystem("nope"), now=now)
    [info] = await servers.list_security_servers(db)
    assert info.id == SS1
    assert info.address == "ss1.example.jp"
    assert info.auth_cert_hashes == (digest,)
    assert info.clients == (ACME, ACME.subsystem("api"))


async def test_global_groups(db, now):
    group = GlobalGroupId(INSTANCE, "security-server-owners")
    await registry.add_member(db, "a", ACME, "Acme", now=now)
    await groups.add_global_group(db, "a", group, "Owners", now=now)
    await groups.add_group_member(db, "a", group, ACME, now=now)
    with pytest.raises(Conflict):
        await groups.add_group_member(db, "a", group, ACME, now=now)
    with pytest.raises(NotFound):
        await groups.add_group_member(
            db, "a", GlobalGroupId(INSTANCE, "none"), ACME, now=now
        )
    with pytest.raises(InvalidRequest):
        await groups.add_global_group(db, "a", GlobalGroupId("XX", "g"), "", now=now)
    [info] = await groups.list_global_groups(db)
    assert (info.id, info.description, info.members) == (group, "Owners", (ACME,))


async def test_approved_ca_and_tsa(db, now):
    top = make_cert("Root CA", ca=True)
    ocsp = make_cert("OCSP", ca=False)
    ca = trust.CaInfo(top, "http://ca.example.jp:8888/ocsp", ocsp)
    await trust.add_approved_ca(
        db, "sec", name="Test CA", top_ca=ca, certificate_profile="jplink", now=now
    )
    with pytest.raises(Conflict):
        await trust.add_approved_ca(
            db, "sec", name="Test CA", top_ca=ca, certificate_profile="jplink", now=now
        )
    with pytest.raises(InvalidRequest, match="not a CA"):
        await trust.add_approved_ca(
            db,
            "sec",
            name="Leaf",
            top_ca=trust.CaInfo(ocsp),
            certificate_profile="jplink",
            now=now,
        )
    with pytest.raises(InvalidRequest, match="URL"):
        await trust.add_approved_ca(
            db,
            "sec",
            name="Bad URL",
            top_ca=trust.CaInfo(top, "file:///etc/passwd"),
            certificate_profile="jplink",
            now=now,
        )
    tsa_cert = make_cert("TSA", ca=False)
    await trust.add_approved_tsa(
        db,
        "sec",
        name="TSA",
        url="http://tsa.example.jp:8899/",
        cert_der=tsa_cert,
        now=now,
    )
    [got] = await trust.list_approved_cas(db)
    assert got.top_ca == ca and got.certificate_profile == "jplink"
    [tsa] = await trust.list_approved_tsas(db)
    assert (tsa.name, tsa.cert_der) == ("TSA", tsa_cert)
    actions = [e.action for e in await list_audit(db)]
    assert actions[:2] == ["tsa.add", "ca.add"]
