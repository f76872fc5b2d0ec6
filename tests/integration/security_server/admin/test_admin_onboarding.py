"""The onboarding routes refuse what cannot be sent, and write nothing then.

The whole onboarding against a real central server is the network's e2e
test (tests/e2e); here the routes' own checks are covered.
"""

from __future__ import annotations

from security_server.admin import Role

from ..conftest import Server
from ..helpers import PIN
from .conftest import ClientFactory, make_admin

SO, RO = Role.SECURITY_OFFICER, Role.REGISTRATION_OFFICER
SUB = "/api/v1/clients/JP-TEST:COM:1111:client"


async def test_onboarding_refusals(
    server: Server, aiohttp_client: ClientFactory
) -> None:
    admin = await make_admin(aiohttp_client, server.db, server.config)
    before = await admin.audit_actions()
    problem = await admin.call("POST", f"{SUB}/register", RO, expect=409)
    assert problem["code"] == "TokenNotActive"
    problem = await admin.call(
        "POST", f"/api/v1/certificates/{'ab' * 32}/register", SO,
        body={"address": "ss1.example.jp"}, expect=409,
    )  # fmt: skip
    assert problem["code"] == "TokenNotActive"
    await admin.call("PUT", "/api/v1/tokens/0/login", SO, body={"pin": PIN})
    after_login = await admin.audit_actions()
    problem = await admin.call(
        "POST", f"/api/v1/certificates/{'ab' * 32}/register", SO,
        body={"address": "ss1.example.jp"}, expect=409,
    )  # fmt: skip
    assert problem["code"] == "InvalidGlobalConf"  # nothing downloaded yet
    for path, body in (
        ("/api/v1/csrs/0/submit", {"central_url": "http://127.0.0.1:9"}),
        ("/api/v1/csrs/x/fetch", {}),
        ("/api/v1/csrs/1/submit", {}),
        ("/api/v1/csrs/1/submit", {"central": "http://x"}),
    ):
        problem = await admin.call("POST", path, RO, body=body, expect=400)
        assert problem["detail"]
    problem = await admin.call("POST", "/api/v1/csrs/1/fetch", RO, body={}, expect=404)
    assert problem["detail"]
    assert len(after_login) == len(before) + 1
    assert await admin.audit_actions() == after_login
