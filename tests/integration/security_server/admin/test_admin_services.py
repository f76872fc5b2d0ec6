"""Clients, service descriptions (add by URL, refresh with a diff, enable and
disable), services, access rights and local groups through the admin API."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web

from security_server.admin import Role
from security_server.admin.service_refresh import ServiceChange, diff_services
from wsdl import WsdlField, WsdlOperation, WsdlSpec, XsdType, build_wsdl

from ..conftest import Server
from ..helpers import OTHER, OWNER
from .conftest import ClientFactory, make_admin

RO, SA, AUD = Role.REGISTRATION_OFFICER, Role.SERVICE_ADMINISTRATOR, Role.AUDITOR
SUB = OWNER.subsystem("data")
PATH = "/api/v1/clients/JP-TEST:COM:1111:data"
CONSUMER = OTHER.subsystem("client")


def _wsdl(*operations: WsdlOperation) -> bytes:
    return build_wsdl(
        WsdlSpec(
            name="data",
            namespace="http://example.jp/data",
            address="http://127.0.0.1:8090/soap",
            operations=operations,
        )
    )


TRADES = WsdlOperation(
    code="getTrades",
    version="v1",
    title="Trades of a day",
    inputs=(WsdlField("day", XsdType.DATE, required=True),),
    row=(WsdlField("amount", XsdType.DECIMAL),),
)
BALANCE = WsdlOperation(code="getBalance", version="v1")
BALANCE_V2 = WsdlOperation(code="getBalance", version="v2", title="Balance")
INVOICES = WsdlOperation(code="getInvoices", version="v1")


class WsdlSite:
    """A web server whose WSDL the test can change between downloads."""

    def __init__(self) -> None:
        self.body = _wsdl(TRADES, BALANCE)

    def app(self) -> web.Application:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(body=self.body, content_type="text/xml")

        app = web.Application()
        app.router.add_get("/wsdl", handler)
        return app


def test_diff_services() -> None:
    old = {"a": ("v1", None), "b": ("v1", "B"), "c": ("v1", None)}
    new = {"b": ("v2", "B"), "c": ("v1", None), "d": (None, None)}
    assert diff_services(old, new) == (
        ("d",),
        ("a",),
        (ServiceChange("b", "v1", "v2", "B", "B"),),
    )
    assert diff_services(old, old) == ((), (), ())


async def test_clients_services_rights_and_groups(
    server: Server, aiohttp_client: ClientFactory, aiohttp_server: Any
) -> None:
    site = WsdlSite()
    url = str((await aiohttp_server(site.app())).make_url("/wsdl"))
    admin = await make_admin(aiohttp_client, server.db, server.config)

    added = await admin.call(
        "POST", "/api/v1/clients", RO, body={"client_id": str(SUB), "name": "Data"},
        expect=201,
    )  # fmt: skip
    assert (added["client_id"], added["state"]) == (str(SUB), "saved")
    listed = await admin.call("GET", "/api/v1/clients", AUD)
    assert {c["client_id"] for c in listed} == {str(OWNER), str(SUB)}

    desc = await admin.call(
        "POST", f"{PATH}/service-descriptions", SA, body={"url": url}, expect=201
    )
    assert desc["enabled"] is False
    assert {s["service_id"] for s in desc["services"]} == {
        f"SERVICE:{str(SUB).removeprefix('SUBSYSTEM:')}/getTrades/v1",
        f"SERVICE:{str(SUB).removeprefix('SUBSYSTEM:')}/getBalance/v1",
    }
    await admin.call(
        "POST", f"{PATH}/service-descriptions/enable", SA, body={"url": url},
        expect=204,
    )  # fmt: skip
    updated = await admin.call(
        "PATCH",
        f"{PATH}/services/getTrades",
        SA,
        body={"url": "https://127.0.0.1:9443/soap", "timeout_seconds": 7,
              "tls_verify": False},
    )  # fmt: skip
    assert (updated["url"], updated["timeout_seconds"], updated["tls_verify"]) == (
        "https://127.0.0.1:9443/soap",
        7.0,
        False,
    )
    for subject in (str(CONSUMER), str(OTHER)):
        await admin.call(
            "POST", f"{PATH}/services/getBalance/access-rights", SA,
            body={"subject": subject}, expect=201,
        )  # fmt: skip
    await admin.call(
        "POST", f"{PATH}/services/getTrades/access-rights", SA,
        body={"subject": str(CONSUMER)}, expect=201,
    )  # fmt: skip

    # The provider changes its WSDL: getBalance changes, getInvoices appears,
    # getTrades disappears (and with it, its access right).
    site.body = _wsdl(BALANCE_V2, INVOICES)
    diff = await admin.call(
        "POST", f"{PATH}/service-descriptions/refresh", SA, body={"url": url}
    )
    assert diff["added"] == ["getInvoices"] and diff["removed"] == ["getTrades"]
    assert diff["changed"] == [
        {
            "service_code": "getBalance",
            "old_version": "v1",
            "new_version": "v2",
            "old_title": "getBalance",  # the builder titles it by its code
            "new_title": "Balance",
        }
    ]
    services = await admin.call("GET", f"{PATH}/services", RO)
    assert [(s["service_id"].rsplit("/", 2)[-2:]) for s in services] == [
        ["getBalance", "v2"],
        ["getInvoices", "v1"],
    ]
    by_subject = await admin.call(
        "GET", f"/api/v1/access-rights?subject={quote(str(CONSUMER))}", AUD
    )
    assert [r["service_code"] for r in by_subject] == ["getBalance"]

    await admin.call(
        "POST", f"{PATH}/service-descriptions/disable", SA,
        body={"url": url, "notice": "Maintenance until 18:00"}, expect=204,
    )  # fmt: skip
    descs = await admin.call("GET", f"{PATH}/service-descriptions", AUD)
    assert (descs[0]["enabled"], descs[0]["disabled_notice"]) == (
        False,
        "Maintenance until 18:00",
    )

    group = await admin.call(
        "POST", f"{PATH}/local-groups", SA,
        body={"code": "partners", "description": "Partners"}, expect=201,
    )  # fmt: skip
    assert group["group_id"] == "LOCALGROUP:partners"
    await admin.call(
        "POST", f"{PATH}/local-groups/partners/members", SA,
        body={"member": str(CONSUMER)}, expect=204,
    )  # fmt: skip
    await admin.call(
        "POST", f"{PATH}/services/getInvoices/access-rights", SA,
        body={"subject": "LOCALGROUP:partners"}, expect=201,
    )  # fmt: skip
    groups = await admin.call("GET", f"{PATH}/local-groups", AUD)
    assert groups[0]["members"] == [str(CONSUMER)]
    rights = await admin.call("GET", f"{PATH}/services/getInvoices/access-rights", AUD)
    assert [r["subject"] for r in rights] == ["LOCALGROUP:partners"]
    await admin.call(
        "DELETE",
        f"{PATH}/local-groups/partners/members?member={quote(str(CONSUMER))}",
        SA,
        expect=204,
    )
    await admin.call(
        "DELETE",
        f"{PATH}/services/getBalance/access-rights?subject={quote(str(OTHER))}",
        SA,
        expect=204,
    )
    rights = await admin.call("GET", f"{PATH}/services/getBalance/access-rights", AUD)
    assert [r["subject"] for r in rights] == [str(CONSUMER)]
    await admin.call("DELETE", f"{PATH}/local-groups/partners", SA, expect=204)
    await admin.call(
        "DELETE", f"{PATH}/service-descriptions?url={quote(url)}", SA, expect=204
    )
    assert await admin.call("GET", f"{PATH}/services", AUD) == []
    await admin.call("DELETE", PATH, RO, expect=204)
    assert [
        c["client_id"] for c in await admin.call("GET", "/api/v1/clients", AUD)
    ] == [str(OWNER)]

    actions = [a for a, _ in await admin.audit_actions() if a != "apiKey.create"]
    assert "service-description.refresh" in actions
    assert actions.index("service-description.add") < actions.index(
        "service-description.refresh"
    )
    assert actions[-1] == "client.delete"


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        ("POST", "/api/v1/clients", {"client_id": "SUBSYSTEM:JP-TEST/COM"}, None),
        ("POST", "/api/v1/clients", {"client_id": 7}, "InvalidField"),
        ("DELETE", "/api/v1/clients/JP-TEST:COM", None, "InvalidClientId"),
        ("POST", f"{PATH}/service-descriptions", {"url": "ftp://x/y"}, "InvalidUrl"),
        ("POST", f"{PATH}/service-descriptions", {"url": "x", "type": "openapi3"},
         "InvalidField"),
        ("PATCH", f"{PATH}/services/x", {"timeout_seconds": "7"}, "InvalidField"),
        ("PATCH", f"{PATH}/services/x", {"tls_verify": "no"}, "InvalidField"),
        ("DELETE", f"{PATH}/service-descriptions", None, "InvalidField"),
        ("GET", "/api/v1/access-rights?subject=nonsense", None, None),
        ("POST", f"{PATH}/local-groups", {"code": "a/b"}, None),
    ],
)  # fmt: skip
async def test_bad_input_is_a_clear_400(
    server: Server,
    aiohttp_client: ClientFactory,
    method: str,
    path: str,
    body: Any,
    code: str | None,
) -> None:
    admin = await make_admin(aiohttp_client, server.db, server.config)
    before = await admin.audit_actions()
    role = RO if "clients" in path and "data" not in path else SA
    if method == "GET":
        role = AUD
    problem = await admin.call(method, path, role, body=body, expect=400)
    assert problem["status"] == 400 and problem["detail"]
    if code:
        assert problem["code"] == code, problem
    assert await admin.audit_actions() == before
