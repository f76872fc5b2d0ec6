"""Management requests in the service layer on SQLite and PostgreSQL.

Each request is built and signed with the core builder, verified with the
core verifier against the registry's trust material, then submitted,
approved or declined; the registry must change exactly as asked, in one
transaction with its audit rows.
"""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from central_server import audit, management, registry, servers, trust
from central_server.member_requests import RequestStatus
from jplink.errors import Conflict, NotFound
from jplink.identifiers import ClientId, SecurityServerId
from jplink.protocol import parse_soap_message
from jplink.protocol.management import (
    ManagementRequest,
    ManagementRequestType,
    verify_management_request,
)
from tests.unit.jplink.protocol.test_management_helpers import (
    OTHER,
    OWNER,
    PROVIDER,
    SERVER,
    MgmtPki,
    build_mgmt_pki,
    signed_message,
)

T = ManagementRequestType
SUB = OWNER.subsystem("sub1")
PROFILE = "ee.jplink.JpLinkCertificateProfileInfoProvider"


@pytest.fixture(scope="module")
def mp() -> MgmtPki:
    from tests.conftest import FIXED_NOW

    return build_mgmt_pki(FIXED_NOW)


@pytest.fixture(scope="module")
def signers(mp):
    return {"owner": mp.member(OWNER), "other": mp.member(OTHER, "Other Co")}


async def seed(db, mp: MgmtPki, now) -> None:
    """Members, the management service provider and the approved test CA."""
    for member, name in ((OWNER, "Acme"), (OTHER, "Other Co"), (PROVIDER, "Gov")):
        await registry.add_member(db, "test", member.member, name, now=now)
    await registry.add_subsystem(db, "test", PROVIDER, now=now)
    await registry.set_management_service_provider(db, "test", PROVIDER, now=now)
    der = mp.pki.root.cert.public_bytes(Encoding.DER)
    ocsp = mp.pki.ocsp.cert.public_bytes(Encoding.DER)
    await trust.add_approved_ca(
        db,
        "test",
        name="Test CA",
        top_ca=trust.CaInfo(der, "http://127.0.0.1:8888/ocsp", ocsp),
        certificate_profile=PROFILE,
        now=now,
    )


@pytest.fixture
async def mdb(db, mp, now):
    await seed(db, mp, now)
    return db


async def submit(db, request, now, *, member=None, auth=None, message_id=None):
    ctype, body, _soap = signed_message(
        request, member=member, auth=auth, message_id=message_id
    )
    trust_, provider = await management.management_context(db)
    verified = verify_management_request(
        parse_soap_message(body, content_type=ctype),
        service_provider=provider,
        trust=trust_,
        now=now,
    )
    return await management.submit_management_request(db, verified, now=now)


def reg(auth) -> ManagementRequest:
    der = auth.cert.public_bytes(Encoding.DER)
    return ManagementRequest(T.AUTH_CERT_REG, SERVER, address="ss1.jp", auth_cert=der)


async def _server(db, ident: SecurityServerId):
    found = [s for s in await servers.list_security_servers(db) if s.id == ident]
    return found[0] if found else None


async def test_auth_cert_reg_then_approval_creates_the_server(mdb, mp, signers, now):
    auth = mp.auth(SERVER)
    view = await submit(mdb, reg(auth), now, member=signers["owner"], auth=auth)
    assert view.status is RequestStatus.PENDING and view.signer == str(OWNER)
    assert await _server(mdb, SERVER) is None  # nothing changes before approval
    done = await management.approve_management_request(mdb, "ro", view.id, now=now)
    assert done.status is RequestStatus.APPROVED and done.decided_by == "ro"
    server = await _server(mdb, SERVER)
    der = auth.cert.public_bytes(Encoding.DER)
    assert server.address == "ss1.jp"
    assert server.auth_cert_hashes == (servers.auth_cert_hash(der),)
    actions = [a.action for a in await audit.list_audit(mdb, limit=5)]
    assert actions[:3] == [
        "management.approve",
        "server.authCert.add",
        "management.submit",
    ]
    with pytest.raises(Conflict):
        await management.approve_management_request(mdb, "ro", view.id, now=now)
    # The same certificate again: already registered.
    with pytest.raises(Conflict, match="already registered"):
        await submit(mdb, reg(auth), now, member=signers["owner"], auth=auth)


async def test_duplicates_and_replays_are_refused(mdb, mp, signers, now):
    auth = mp.auth(SERVER)
    mid = str(uuid.uuid4())
    await submit(
        mdb, reg(auth), now, member=signers["owner"], auth=auth, message_id=mid
    )
    with pytest.raises(Conflict, match="already received"):
        await submit(
            mdb,
            ManagementRequest(T.ADDRESS_CHANGE, SERVER, address="x.jp"),
            now,
            member=signers["owner"],
            message_id=mid,
        )
    with pytest.raises(Conflict, match="already pending"):
        await submit(mdb, reg(auth), now, member=signers["owner"], auth=auth)
    assert len(await management.list_management_requests(mdb)) == 1


async def test_dry_run_is_checked_and_not_stored(mdb, mp, signers, now):
    auth = mp.auth(SERVER)
    request = dataclasses.replace(reg(auth), dry_run=True)
    assert await submit(mdb, request, now, member=signers["owner"], auth=auth) is None
    assert await management.list_management_requests(mdb) == []


async def test_unknown_owner_is_refused_and_nothing_stored(mdb, mp, now):
    stranger = ClientId(OWNER.instance, "COM", "9999")
    server = SecurityServerId(OWNER.instance, "COM", "9999", "ssx")
    auth = mp.auth(server, "Stranger")
    request = dataclasses.replace(reg(auth), server=server)
    with pytest.raises(NotFound):
        await submit(mdb, request, now, member=mp.member(stranger, "S"), auth=auth)
    assert await management.list_management_requests(mdb) == []


async def _registered(mdb, mp, signers, now):
    auth = mp.auth(SERVER)
    view = await submit(mdb, reg(auth), now, member=signers["owner"], auth=auth)
    await management.approve_management_request(mdb, "ro", view.id, now=now)
    return auth


async def _approve(mdb, request, now, **signer):
    view = await submit(mdb, request, now, **signer)
    return await management.approve_management_request(mdb, "ro", view.id, now=now)


async def test_client_life_cycle(mdb, mp, signers, now):
    auth = await _registered(mdb, mp, signers, now)
    owner = signers["owner"]
    await _approve(
        mdb,
        ManagementRequest(T.CLIENT_REG, SERVER, client=SUB, subsystem_name="Sub"),
        now,
        member=owner,
    )
    assert (await _server(mdb, SERVER)).clients == (SUB,)
    members = {m.id: m for m in await registry.list_members(mdb)}
    assert SUB in members[OWNER].subsystems
    with pytest.raises(Conflict, match="already a client"):
        await submit(
            mdb, ManagementRequest(T.CLIENT_REG, SERVER, client=SUB), now, member=owner
        )
    await _approve(
        mdb, ManagementRequest(T.CLIENT_DISABLE, SERVER, client=SUB), now, member=owner
    )
    with pytest.raises(Conflict, match="already disabled"):
        await submit(
            mdb,
            ManagementRequest(T.CLIENT_DISABLE, SERVER, client=SUB),
            now,
            member=owner,
        )
    await _approve(
        mdb, ManagementRequest(T.CLIENT_ENABLE, SERVER, client=SUB), now, member=owner
    )
    await _approve(
        mdb,
        ManagementRequest(T.ADDRESS_CHANGE, SERVER, address="10.0.0.9"),
        now,
        member=owner,
    )
    assert (await _server(mdb, SERVER)).address == "10.0.0.9"
    await _approve(
        mdb,
        ManagementRequest(T.MAINTENANCE_MODE_ENABLE, SERVER, message="until 10:00"),
        now,
        member=owner,
    )
    await _approve(
        mdb, ManagementRequest(T.MAINTENANCE_MODE_DISABLE, SERVER), now, member=owner
    )
    await _approve(mdb, ManagementRequest(T.CLIENT_DELETION, SERVER, client=SUB), now)
    assert (await _server(mdb, SERVER)).clients == ()
    der = auth.cert.public_bytes(Encoding.DER)
    await _approve(
        mdb, ManagementRequest(T.AUTH_CERT_DELETION, SERVER, auth_cert=der), now
    )
    assert (await _server(mdb, SERVER)).auth_cert_hashes == ()
    actions = {a.action for a in await audit.list_audit(mdb, limit=100)}
    assert {
        "server.client.add",
        "server.client.disable",
        "server.client.enable",
        "server.address.change",
        "server.maintenance.on",
        "server.maintenance.off",
        "server.client.delete",
        "server.authCert.delete",
    } <= actions


async def test_owner_change_needs_the_new_owner_as_client(mdb, mp, signers, now):
    await _registered(mdb, mp, signers, now)
    change = ManagementRequest(T.OWNER_CHANGE, SERVER, client=OTHER)
    with pytest.raises(NotFound):
        await submit(mdb, change, now, member=signers["other"])
    await _approve(
        mdb,
        ManagementRequest(T.CLIENT_REG, SERVER, client=OTHER),
        now,
        member=signers["other"],
    )
    await _approve(mdb, change, now, member=signers["other"])
    moved = SecurityServerId(
        OTHER.instance, OTHER.member_class, OTHER.member_code, "ss1"
    )
    assert await _server(mdb, moved) is not None


async def test_decline_and_stale_approval_change_nothing(mdb, mp, signers, now):
    await _registered(mdb, mp, signers, now)
    owner = signers["owner"]
    first = await submit(
        mdb, ManagementRequest(T.CLIENT_REG, SERVER, client=OWNER), now, member=owner
    )
    declined = await management.decline_management_request(
        mdb, "ro", first.id, "not now", now=now
    )
    assert declined.status is RequestStatus.DECLINED
    assert declined.decline_reason == "not now"
    again = await submit(
        mdb, ManagementRequest(T.CLIENT_REG, SERVER, client=OWNER), now, member=owner
    )
    # The operator adds the client by hand; the pending request no longer applies.
    await servers.add_server_client(mdb, "admin", SERVER, OWNER, now=now)
    before = len(await audit.list_audit(mdb, limit=1000))
    with pytest.raises(Conflict):
        await management.approve_management_request(mdb, "ro", again.id, now=now)
    assert len(await audit.list_audit(mdb, limit=1000)) == before
    pending = await management.list_management_requests(
        mdb, status=RequestStatus.PENDING
    )
    assert [v.id for v in pending] == [again.id]


async def test_auto_approval_applies_verified_registrations(mdb, mp, signers, now):
    assert await management.get_auto_approve(mdb) is False
    await management.set_auto_approve(mdb, "sa", True, now=now)
    auth = mp.auth(SERVER)
    view = await submit(mdb, reg(auth), now, member=signers["owner"], auth=auth)
    assert view.status is RequestStatus.APPROVED and view.auto_approved
    assert (await _server(mdb, SERVER)).auth_cert_hashes
    # Only authCertReg and clientReg are auto-approved.
    other = await submit(
        mdb,
        ManagementRequest(T.ADDRESS_CHANGE, SERVER, address="y.jp"),
        now,
        member=signers["owner"],
    )
    assert other.status is RequestStatus.PENDING
