"""Clients, service descriptions, services, local groups and access rights."""

from __future__ import annotations

import datetime as dt

import pytest

from jplink.errors import (
    Conflict,
    InvalidRequest,
    JPLinkError,
    NotFound,
)
from jplink.identifiers import ClientId, GlobalGroupId, LocalGroupId, ServiceId
from security_server import (
    access_rights,
    audit,
    clients,
    local_groups,
    services,
)
from security_server.states import AccessSubjectType, ClientState

from .conftest import Server
from .helpers import OTHER, OWNER, PROVIDER_SUB, SUBSYSTEM, make_wsdl

URL = "http://adapter.example/wsdl"


async def test_clients_add_list_delete(server: Server, now: dt.datetime) -> None:
    db = server.db
    await clients.add_client(db, "t", SUBSYSTEM, name="Consumer Ltd", now=now)
    await clients.add_client(db, "t", OTHER, name="Other Co", now=now)
    with pytest.raises(Conflict):
        await clients.add_client(db, "t", OTHER, now=now)
    with pytest.raises(InvalidRequest) as foreign:
        await clients.add_client(db, "t", ClientId("EE", "COM", "1"), now=now)
    assert foreign.value.code == "InstanceMismatch"
    listed = await clients.list_clients(db)
    assert [c.client_id for c in listed] == sorted([OWNER, SUBSYSTEM, OTHER])
    assert {c.state for c in listed} == {ClientState.SAVED}
    moved = await clients.set_client_state(
        db, "t", SUBSYSTEM, ClientState.REGISTERED, now=now
    )
    assert moved.state is ClientState.REGISTERED
    with pytest.raises(Conflict):
        await clients.delete_client(db, "t", OWNER, now=now)
    await clients.delete_client(db, "t", OTHER, now=now)
    with pytest.raises(NotFound):
        await clients.delete_client(db, "t", OTHER, now=now)
    assert [c.client_id for c in await clients.list_clients(db)] == [OWNER, SUBSYSTEM]


async def test_services_from_wsdl(server: Server, now: dt.datetime) -> None:
    db = server.db
    await clients.add_client(db, "t", PROVIDER_SUB, name="Other Co", now=now)
    desc = await services.add_wsdl_description(
        db, "t", PROVIDER_SUB, url=URL, wsdl=make_wsdl(), now=now
    )
    assert not desc.enabled
    codes = {s.service_id for s in desc.services}
    assert codes == {
        ServiceId("JP-TEST", "COM", "2222", "data", "getTrades", "v1"),
        ServiceId("JP-TEST", "COM", "2222", "data", "getBalance", "v2"),
    }
    listed = await services.list_services(db, PROVIDER_SUB)
    assert [s.service_id.service_code for s in listed] == ["getBalance", "getTrades"]
    trades = listed[1]
    assert (trades.title, trades.url, trades.timeout_seconds, trades.tls_verify) == (
        "Trades of a day",
        "http://127.0.0.1:8090/soap",
        60.0,
        True,
    )
    with pytest.raises(Conflict):  # same operations again under another URL
        await services.add_wsdl_description(
            db, "t", PROVIDER_SUB, url=URL + "2", wsdl=make_wsdl(), now=now
        )
    with pytest.raises(JPLinkError):
        await services.add_wsdl_description(
            db, "t", PROVIDER_SUB, url=URL + "3", wsdl=b"<x/>", now=now
        )
    updated = await services.update_service(
        db,
        "t",
        PROVIDER_SUB,
        "getTrades",
        url="https://adapter.example/soap",
        timeout_seconds=5,
        tls_verify=False,
        now=now,
    )
    assert (updated.url, updated.timeout_seconds, updated.tls_verify) == (
        "https://adapter.example/soap",
        5,
        False,
    )
    with pytest.raises(InvalidRequest):
        await services.update_service(
            db, "t", PROVIDER_SUB, "getTrades", url="file:///etc/passwd", now=now
        )
    with pytest.raises(NotFound):
        await services.update_service(db, "t", PROVIDER_SUB, "nope", now=now)
    await services.set_description_enabled(
        db, "t", PROVIDER_SUB, URL, enabled=True, now=now
    )
    assert all(s.enabled for s in await services.list_services(db, PROVIDER_SUB))
    await services.set_description_enabled(
        db, "t", PROVIDER_SUB, URL, enabled=False, notice="maintenance", now=now
    )
    (desc2,) = await services.list_descriptions(db, PROVIDER_SUB)
    assert (desc2.enabled, desc2.disabled_notice) == (False, "maintenance")


async def test_access_rights_and_local_groups(server: Server, now: dt.datetime) -> None:
    db = server.db
    await clients.add_client(db, "t", PROVIDER_SUB, now=now)
    await services.add_wsdl_description(
        db, "t", PROVIDER_SUB, url=URL, wsdl=make_wsdl(), now=now
    )
    group = LocalGroupId("partners")
    await local_groups.add_local_group(
        db, "t", PROVIDER_SUB, group, description="Partners", now=now
    )
    with pytest.raises(Conflict):
        await local_groups.add_local_group(db, "t", PROVIDER_SUB, group, now=now)
    await local_groups.add_group_member(
        db, "t", PROVIDER_SUB, group, SUBSYSTEM, now=now
    )
    await local_groups.add_group_member(db, "t", PROVIDER_SUB, group, OTHER, now=now)
    await local_groups.remove_group_member(db, "t", PROVIDER_SUB, group, OTHER, now=now)
    (info,) = await local_groups.list_local_groups(db, PROVIDER_SUB)
    assert (info.group_id, info.members) == (group, (SUBSYSTEM,))

    everyone = GlobalGroupId("JP-TEST", "security-server-owners")
    for subject in (SUBSYSTEM, group, everyone):
        await access_rights.grant_access(
            db, "t", PROVIDER_SUB, "getTrades", subject, now=now
        )
    await access_rights.grant_access(
        db, "t", PROVIDER_SUB, "getBalance", SUBSYSTEM, now=now
    )
    with pytest.raises(Conflict):
        await access_rights.grant_access(
            db, "t", PROVIDER_SUB, "getTrades", SUBSYSTEM, now=now
        )
    with pytest.raises(NotFound) as no_service:
        await access_rights.grant_access(
            db, "t", PROVIDER_SUB, "nope", SUBSYSTEM, now=now
        )
    assert no_service.value.code == "ServiceNotFound"
    with pytest.raises(NotFound) as no_group:
        await access_rights.grant_access(
            db, "t", PROVIDER_SUB, "getTrades", LocalGroupId("ghosts"), now=now
        )
    assert no_group.value.code == "LocalGroupNotFound"

    rights = await access_rights.list_rights_for_service(db, PROVIDER_SUB, "getTrades")
    assert [(r.subject, r.subject_type) for r in rights] == [
        (SUBSYSTEM, AccessSubjectType.CLIENT),
        (group, AccessSubjectType.LOCAL_GROUP),
        (everyone, AccessSubjectType.GLOBAL_GROUP),
    ]
    mine = await access_rights.list_rights_for_subject(db, SUBSYSTEM)
    assert sorted(r.service_code for r in mine) == ["getBalance", "getTrades"]
    assert len(await access_rights.list_rights_for_service(db, PROVIDER_SUB)) == 4

    await access_rights.revoke_access(
        db, "t", PROVIDER_SUB, "getBalance", SUBSYSTEM, now=now
    )
    with pytest.raises(NotFound):
        await access_rights.revoke_access(
            db, "t", PROVIDER_SUB, "getBalance", SUBSYSTEM, now=now
        )
    # Deleting the group removes the rights granted to it.
    await local_groups.delete_local_group(db, "t", PROVIDER_SUB, group, now=now)
    rights = await access_rights.list_rights_for_service(db, PROVIDER_SUB, "getTrades")
    assert [r.subject for r in rights] == [SUBSYSTEM, everyone]
    # Deleting the description removes its services and their rights.
    await services.delete_description(db, "t", PROVIDER_SUB, URL, now=now)
    assert await services.list_services(db, PROVIDER_SUB) == []
    assert await access_rights.list_rights_for_service(db, PROVIDER_SUB) == []

    actions = [e.action for e in await audit.list_audit(db, limit=50)]
    for expected in (
        "acl.grant",
        "acl.revoke",
        "local-group.add",
        "local-group.add-member",
        "local-group.remove-member",
        "local-group.delete",
        "service-description.add",
        "service-description.delete",
    ):
        assert expected in actions
