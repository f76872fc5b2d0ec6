"""The proxies' view of clients, services and access rights (PROTOCOLS.md §7.2)."""

from __future__ import annotations

import datetime as dt

import pytest

from jplink.errors import AccessDenied, NotFound
from jplink.identifiers import ClientId, GlobalGroupId, LocalGroupId, ServiceId
from security_server import access_rights, clients, local_groups, services
from security_server.exchange_access import ServerConfView
from security_server.states import ClientState

from .conftest import Server
from .helpers import OWNER, SUBSYSTEM, make_wsdl

URL = "http://adapter.example/wsdl"
PROVIDER = OWNER.subsystem("data")
SERVICE = ServiceId(
    PROVIDER.instance,
    PROVIDER.member_class,
    PROVIDER.member_code,
    PROVIDER.subsystem_code,
    "getTrades",
    "v1",
)
STRANGER = ClientId(OWNER.instance, "COM", "9999").subsystem("x")


@pytest.fixture
async def view(server: Server, now: dt.datetime) -> ServerConfView:
    db = server.db
    await clients.add_client(db, "t", PROVIDER, name="Provider", now=now)
    await clients.set_client_state(db, "t", PROVIDER, ClientState.REGISTERED, now=now)
    await services.add_wsdl_description(
        db, "t", PROVIDER, url=URL, wsdl=make_wsdl("http://svc.example/soap"), now=now
    )
    await services.set_description_enabled(
        db, "t", PROVIDER, URL, enabled=True, now=now
    )
    return ServerConfView(db, cache_seconds=0)


async def test_registered_client_check(view: ServerConfView) -> None:
    assert await view.check_registered_client(PROVIDER, role="provider") == PROVIDER
    for unknown in (SUBSYSTEM, STRANGER):  # saved only / not a client at all
        with pytest.raises(NotFound) as err:
            await view.check_registered_client(unknown, role="client")
        assert err.value.code == "UnknownMember"


async def test_rights_direct_local_group_global_group(
    server: Server, view: ServerConfView, now: dt.datetime
) -> None:
    db = server.db
    with pytest.raises(AccessDenied) as denied:
        await view.check_access(SERVICE, SUBSYSTEM, global_groups=())
    assert denied.value.code == "AccessDenied"

    await access_rights.grant_access(db, "t", PROVIDER, "getTrades", SUBSYSTEM, now=now)
    target = await view.check_access(SERVICE, SUBSYSTEM, global_groups=())
    assert (target.url, target.service) == ("http://svc.example/soap", SERVICE)

    await local_groups.add_local_group(
        db, "t", PROVIDER, LocalGroupId("partners"), now=now
    )
    await local_groups.add_group_member(
        db, "t", PROVIDER, LocalGroupId("partners"), STRANGER, now=now
    )
    with pytest.raises(AccessDenied):
        await view.check_access(SERVICE, STRANGER, global_groups=())
    await access_rights.grant_access(
        db, "t", PROVIDER, "getTrades", LocalGroupId("partners"), now=now
    )
    await view.check_access(SERVICE, STRANGER, global_groups=())

    other = ClientId(OWNER.instance, "COM", "7777")
    group = GlobalGroupId(OWNER.instance, "partners")
    with pytest.raises(AccessDenied):
        await view.check_access(SERVICE, other, global_groups=(group,))
    await access_rights.grant_access(db, "t", PROVIDER, "getTrades", group, now=now)
    await view.check_access(SERVICE, other, global_groups=(group,))


async def test_unknown_and_disabled_service(
    server: Server, view: ServerConfView, now: dt.datetime
) -> None:
    db = server.db
    with pytest.raises(NotFound) as unknown:
        await view.check_access(
            ServiceId(OWNER.instance, "COM", OWNER.member_code, "data", "nope"),
            SUBSYSTEM,
            global_groups=(),
        )
    assert unknown.value.code == "UnknownService"
    await access_rights.grant_access(db, "t", PROVIDER, "getTrades", SUBSYSTEM, now=now)
    await services.set_description_enabled(
        db, "t", PROVIDER, URL, enabled=False, notice="maintenance", now=now
    )
    with pytest.raises(AccessDenied) as disabled:
        await view.check_access(SERVICE, SUBSYSTEM, global_groups=())
    assert disabled.value.code == "ServiceDisabled"
    assert "maintenance" in disabled.value.message
