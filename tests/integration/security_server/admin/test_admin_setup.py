"""Initialisation, the token, status and global configuration through the API."""

from __future__ import annotations

import datetime as dt

from security_server.admin import Role

from ..helpers import OWNER, OWNER_NAME, PIN, SERVER_CODE, make_anchor
from .conftest import Admin

SO, SYS, AUD = Role.SECURITY_OFFICER, Role.SYSTEM_ADMINISTRATOR, Role.AUDITOR


def _init_body(now: dt.datetime) -> dict[str, str]:
    return {
        "anchor": make_anchor(now).decode(),
        "owner": str(OWNER),
        "owner_name": OWNER_NAME,
        "server_code": SERVER_CODE,
    }


async def test_initialise_and_token(admin: Admin, now: dt.datetime) -> None:
    status = await admin.call("GET", "/api/v1/status", AUD)
    assert status["server"] is None and "not initialised" in status["server_error"]
    assert status["token"] == {"info": None, "logged_in": False}
    assert status["exchange"]["state"] == "not-supervised"

    server = await admin.call(
        "POST", "/api/v1/initialization", SYS, body=_init_body(now), expect=201
    )
    assert server["server_id"] == f"SERVER:JP-TEST/COM/1111/{SERVER_CODE}"
    again = await admin.call(
        "POST", "/api/v1/initialization", SO, body=_init_body(now), expect=409
    )
    assert again["code"] == "ServerAlreadyInitialized"

    await admin.call("POST", "/api/v1/tokens/0/init", SO, body={"pin": PIN}, expect=201)
    token = await admin.call("GET", "/api/v1/tokens/0", AUD)
    assert token["logged_in"] is False and token["info"]["key_count"] == 0

    wrong = await admin.call(
        "PUT", "/api/v1/tokens/0/login", SO, body={"pin": "wrong pin 123"}, expect=400
    )
    assert wrong["code"] == "PinIncorrect"
    assert not admin.runtime.login.is_logged_in
    await admin.call("PUT", "/api/v1/tokens/0/login", SO, body={"pin": PIN})
    assert admin.runtime.login.is_logged_in
    assert (await admin.call("GET", "/api/v1/status", AUD))["token"]["logged_in"]
    await admin.call("PUT", "/api/v1/tokens/0/logout", Role.REGISTRATION_OFFICER)
    assert not admin.runtime.login.is_logged_in

    status = await admin.call("GET", "/api/v1/status", AUD)
    assert status["server"]["server_id"] == server["server_id"]
    assert "global_configuration_error" in status  # nothing downloaded yet
    missing = await admin.call("GET", "/api/v1/global-configuration", AUD, expect=404)
    assert missing["code"] == "GlobalConfNotAvailable"

    actions = await admin.audit_actions()
    sysadmin = "apikey:system-administrator("
    officer = "apikey:security-officer("
    wanted = [
        ("server.init", sysadmin),
        ("token.init", officer),
        ("token.login-failed", officer),
        ("token.login", officer),
        ("token.logout", "apikey:registration-officer("),
    ]
    got = [(a, actor) for a, actor in actions if not a.startswith("apiKey.")]
    assert [a for a, _ in got] == [a for a, _ in wanted]
    for (_, actor), (_, prefix) in zip(got, wanted, strict=True):
        assert actor.startswith(prefix)


async def test_bad_initialisation_writes_nothing(
    admin: Admin, now: dt.datetime
) -> None:
    cases = [
        ({**_init_body(now), "anchor": "<not-an-anchor/>"}, "InvalidAnchor"),
        (
            {**_init_body(now), "anchor": "<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"},
            None,
        ),
        ({**_init_body(now), "owner": "SUBSYSTEM:JP-TEST/COM/1111/x"}, None),
        ({**_init_body(now), "owner": "nonsense"}, None),
        ({**_init_body(now), "server_code": "bad/code"}, None),
        ({k: v for k, v in _init_body(now).items() if k != "owner"}, "InvalidField"),
        ({**_init_body(now), "extra": 1}, "InvalidField"),
        ({**_init_body(now), "owner_name": 5}, "InvalidField"),
    ]
    for body, code in cases:
        problem = await admin.call(
            "POST", "/api/v1/initialization", SYS, body=body, expect=400
        )
        assert problem["status"] == 400 and problem["detail"]
        if code:
            assert problem["code"] == code, problem
    resp = await admin.client.post(
        "/api/v1/initialization",
        data=b"{not json",
        headers=admin.headers(SYS),
    )
    assert resp.status == 400 and (await resp.json())["code"] == "InvalidJson"
    status = await admin.call("GET", "/api/v1/status", AUD)
    assert status["server"] is None
    assert not admin.config.anchor_path.exists()
    assert [a for a, _ in await admin.audit_actions() if a != "apiKey.create"] == []
