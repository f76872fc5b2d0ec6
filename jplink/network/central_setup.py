"""Steps of ``jplink network up`` for the shared services.

The trust services (``jplink ca``), the central server and its operator's
set-up through the admin API, the organisations' member-code requests and
their approval, and the adapter server with the sample database. Every step
uses the components' CLIs and HTTP APIs only, as an operator would.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from jplink.errors import ProcessFailed

from .context import INSTANCE, OPERATOR, SERVERS, NetworkContext
from .http import call_json, wait_http

__all__ = [
    "ADAPTER_SUBSYSTEM_FILE",
    "approve_member_requests",
    "configure_central",
    "start_adapter",
    "start_ca",
    "start_central",
]

ADAPTER_SUBSYSTEM_FILE = "services-data.json"
_API = "/api/v1"
_REG = "/register/v1"


def start_ca(ctx: NetworkContext) -> None:
    """``jplink ca init`` (EC keys, OCSP URL on its port), then ``ca serve``."""
    home = ctx.home("ca")
    args = [
        "ca",
        "init",
        "--home",
        str(home),
        "--key-type",
        "ec",
        "--ocsp-url",
        ctx.url("ca_api", "/ocsp"),
        "--api-port",
        str(ctx.port("ca_api")),
        "--tsa-port",
        str(ctx.port("ca_tsa")),
    ]
    if db := ctx.database_url("ca"):
        args += ["--database-url", db]
    ctx.jplink(*args)
    ctx.serve(
        "ca",
        ("ca", "serve", "--home", str(home)),
        (ctx.port("ca_api"), ctx.port("ca_tsa")),
    )
    ctx.update(
        urls={
            **ctx.state.urls,
            "ca_ocsp": ctx.url("ca_api", "/ocsp"),
            "ca_api": ctx.url("ca_api", "/api/v1/"),
            "tsa": ctx.url("ca_tsa", "/"),
        }
    )
    ctx.update(
        secrets={**ctx.state.secrets, "ca-api-key": str(home / "secrets/api-key")}
    )


def _central_toml(ctx: NetworkContext) -> str:
    db = ctx.database_url("central")
    management = ctx.url("central_registration", "/managementservice/")
    return "\n".join(
        [
            *([f'database_url = "{db}"'] if db else []),
            "[admin]",
            'host = "127.0.0.1"',
            f"port = {ctx.port('central_admin')}",
            "[registration]",
            'host = "127.0.0.1"',
            f"port = {ctx.port('central_registration')}",
            "[ca]",
            f'url = "{ctx.url("ca_api")}"',
            'api_key_file = "secrets/ca-api-key"',
            "[publisher]",
            'host = "127.0.0.1"',
            f"port = {ctx.port('central_publisher')}",
            f'source_urls = ["{ctx.url("central_publisher")}"]',
            f'management_service_url = "{management}"',
            f"refresh_seconds = {ctx.timings.publisher_refresh_seconds}",
            "poll_seconds = 1",
            "",
        ]
    )


def start_central(ctx: NetworkContext) -> None:
    """Init the central server, its signing keys, and serve it."""
    home = ctx.home("central")
    home.mkdir(mode=0o700)
    (home / "central.toml").write_text(_central_toml(ctx))
    secrets = home / "secrets"
    secrets.mkdir(mode=0o700)
    key_copy = secrets / "ca-api-key"
    shutil.copyfile(ctx.home("ca") / "secrets" / "api-key", key_copy)
    key_copy.chmod(0o600)
    out = ctx.jplink(
        "central",
        "init",
        "--home",
        str(home),
        "--instance",
        INSTANCE,
        "--member-class",
        "COM=Companies",
        "--member-class",
        "GOV=Government",
    )
    key = out.strip().splitlines()[-1].strip()
    if not key or " " in key:
        raise ProcessFailed("central init printed no API key", log=str(ctx.step_log))
    ctx.add_secret("central-system-administrator", key)
    ctx.jplink("central", "conf", "keys", "add", "--home", str(home))
    ctx.jplink("central", "conf", "keys", "add", "--external", "--home", str(home))
    ports = ("central_admin", "central_registration", "central_publisher")
    ctx.serve(
        "central",
        ("central", "serve", "--home", str(home)),
        tuple(map(ctx.port, ports)),
    )
    ctx.update(
        urls={
            **ctx.state.urls,
            "central_admin_api": ctx.url("central_admin", "/api/v1/"),
            "central_registration": ctx.url("central_registration", "/register/v1/"),
            "central_publisher": ctx.url("central_publisher", "/internalconf"),
            "management_wsdl": ctx.url(
                "central_registration", "/managementservice/wsdl"
            ),
        }
    )


def _pem(path: Path) -> str:
    return path.read_text()


def configure_central(ctx: NetworkContext) -> None:
    """The operator's set-up through the admin API, then the anchor.

    API keys per role, the approved CA (with its OCSP responder) and TSA, the
    operator's member with its ``MANAGEMENT`` subsystem as the management
    service provider, short configuration intervals, the global group
    ``security-server-owners``; finally ``central conf anchor``.
    """
    admin = ctx.url("central_admin", _API)
    sysadmin = ctx.secret("central-system-administrator")
    for role in ("registration-officer", "security-officer"):
        made = call_json(
            "POST",
            f"{admin}/api-keys",
            {"name": f"network-{role}", "role": role},
            token=sysadmin,
        )
        ctx.add_secret(f"central-{role}", str(made["key"]))
    so, ro = (
        ctx.secret("central-security-officer"),
        ctx.secret("central-registration-officer"),
    )
    certs = ctx.home("ca") / "certs"
    call_json(
        "POST",
        f"{admin}/approved-cas",
        {
            "name": "JP-LINK Demo CA",
            "topCa": {
                "cert": _pem(certs / "root.pem"),
                "ocspUrl": ctx.url("ca_api", "/ocsp"),
                "ocspCert": _pem(certs / "ocsp.pem"),
            },
            "certificateProfile": "jp.jplink.Profile",
        },
        token=so,
    )
    call_json(
        "POST",
        f"{admin}/approved-tsas",
        {
            "name": "JP-LINK Demo TSA",
            "url": ctx.url("ca_tsa", "/"),
            "cert": _pem(certs / "tsa.pem"),
        },
        token=so,
    )
    member = OPERATOR.owner.removeprefix("MEMBER:")
    call_json(
        "POST",
        f"{admin}/members",
        {"id": OPERATOR.owner, "name": OPERATOR.member_name},
        token=ro,
    )
    call_json(
        "POST",
        f"{admin}/subsystems",
        {"id": OPERATOR.client, "name": "Management services"},
        token=ro,
    )
    for name, value in (
        ("managementServiceProvider", OPERATOR.client),
        ("confExpireIntervalSeconds", ctx.timings.conf_expire_seconds),
    ):
        call_json("PUT", f"{admin}/parameters/{name}", {"value": value}, token=sysadmin)
    groups = call_json("GET", f"{admin}/global-groups", token=ro)
    if not any("security-server-owners" in json.dumps(g) for g in _items(groups)):
        call_json(
            "POST",
            f"{admin}/global-groups",
            {
                "id": f"GLOBALGROUP:{INSTANCE}/security-server-owners",
                "description": "Owners of security servers",
            },
            token=ro,
        )
    ctx.remember(operator_member=member)
    anchor = ctx.directory / "anchor-internal.xml"
    ctx.jplink(
        "central",
        "conf",
        "anchor",
        "--home",
        str(ctx.home("central")),
        "--out",
        str(anchor),
    )
    wait_http(
        ctx.url("central_publisher", "/internalconf"), timeout=ctx.timings.wait_seconds
    )


def _items(answer: object) -> list[object]:
    if isinstance(answer, list):
        return answer
    if isinstance(answer, dict):
        for value in answer.values():
            if isinstance(value, list):
                return value
    return []


def approve_member_requests(ctx: NetworkContext) -> None:
    """Each organisation requests its member code; the operator approves."""
    reg = ctx.url("central_registration", _REG)
    admin = ctx.url("central_admin", _API)
    ro = ctx.secret("central-registration-officer")
    done = {}
    for server in SERVERS[1:]:
        sent = call_json(
            "POST",
            f"{reg}/member-requests",
            {
                "adminEmail": f"admin@{server.member_code}.example.jp",
                "organisationName": server.member_name,
                "memberClass": server.member_class,
                "memberCode": server.member_code,
            },
        )
        ctx.add_secret(f"member-request-{server.key}", str(sent["token"]))
        call_json(
            "POST",
            f"{admin}/member-requests/{sent['id']}/approve",
            {"memberCode": server.member_code},
            token=ro,
        )
        state = call_json(
            "GET",
            f"{reg}/member-requests/{sent['id']}",
            token=ctx.secret(f"member-request-{server.key}"),
        )
        if state["status"] != "approved":
            raise ProcessFailed(
                f"member request {sent['id']} is {state['status']}",
                log=str(ctx.step_log),
            )
        done[server.key] = int(sent["id"])
    ctx.remember(member_requests=done)


def start_adapter(ctx: NetworkContext) -> None:
    """Adapter home, the sample database, its services in subsystem ``data``."""
    home = ctx.home("adapter")
    provider = SERVERS[2]
    args = [
        "adapter",
        "init",
        "--home",
        str(home),
        "--port",
        str(ctx.port("adapter")),
        "--public-url",
        ctx.url("adapter"),
    ]
    if db := ctx.database_url("adapter"):
        args += ["--database-url", db]
    out = ctx.jplink(*args)
    ctx.add_secret("adapter-admin", out.strip().splitlines()[-1].strip())
    ctx.jplink("adapter", "sample", "--home", str(home))
    # The sample registers its services in subsystem MUNICIPALITY; the
    # provider's subsystem is "data": export, move, import (all or nothing).
    exported = home / ADAPTER_SUBSYSTEM_FILE
    ctx.jplink(
        "adapter",
        "service",
        "export",
        "--home",
        str(home),
        "--format",
        "json",
        "-o",
        str(exported),
    )
    data = json.loads(exported.read_text())
    for service in data["services"]:
        service["subsystem"] = provider.subsystem
    exported.write_text(json.dumps(data, ensure_ascii=False, indent=2))
    ctx.jplink(
        "adapter",
        "service",
        "import",
        "--home",
        str(home),
        "--format",
        "json",
        str(exported),
    )
    ctx.serve(
        "adapter", ("adapter", "serve", "--home", str(home)), (ctx.port("adapter"),)
    )
    wsdl = ctx.url("adapter", f"/wsdl/{provider.subsystem}")
    wait_http(wsdl, timeout=ctx.timings.wait_seconds)
    ctx.remember(adapter_services=[s["code"] for s in data["services"]])
    ctx.update(
        urls={
            **ctx.state.urls,
            "adapter_wsdl": wsdl,
            "adapter_admin_api": ctx.url("adapter", "/api/v1/"),
        }
    )
