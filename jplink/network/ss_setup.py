"""Steps of ``jplink network up`` for the security servers.

Each server is set up the way its administrator would, with ``jplink ss``:
``init`` with the anchor, the token with a PIN, authentication and signing
keys, CSRs submitted to the central server's certificate-request flow (the
operator approves them through the admin API), certificates fetched and
imported, ``authCertReg`` (approved by the operator), the configuration
downloaded until the certificate is registered. Then ``clientReg`` for the
subsystems through the management security server, the provider's WSDL and
the access right for the consumer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from jplink.errors import ProcessFailed

from .context import INSTANCE, OPERATOR, SERVERS, NetworkContext, ServerIdentity
from .http import call_json
from .processes import wait_for_port
from .state import OCSP_PEERS_PORT, SERVER_PROXY_PORT

__all__ = [
    "approve_management_request",
    "certify_server",
    "grant_management_services",
    "init_server",
    "publish_provider_service",
    "register_auth_cert",
    "register_management_client",
    "register_subsystem",
    "serve_server",
]

_API = "/api/v1"
#: Management services the security-server owners may call through MGMT.
MANAGEMENT_SERVICES = ("clientReg", "clientDeletion")


def _home(ctx: NetworkContext, server: ServerIdentity) -> str:
    return str(ctx.home(f"ss-{server.key}"))


def _ss(
    ctx: NetworkContext, server: ServerIdentity, *args: str, pin: bool = False
) -> str:
    extra = ("--pin-file", str(ctx.pin_file)) if pin else ()
    return ctx.jplink("ss", *args, "--home", _home(ctx, server), *extra)


def _ss_toml(ctx: NetworkContext, server: ServerIdentity) -> str:
    p = f"ss_{server.key}"
    lines = [
        *(
            [f'database_url = "{db}"']
            if (db := ctx.database_url(f"ss-{server.key}"))
            else []
        ),
        "[client_proxy]",
        'host = "127.0.0.1"',
        f"http_port = {ctx.port(p + '_client_http')}",
        f"https_port = {ctx.port(p + '_client_https')}",
        "[server_proxy]",
        f'host = "{ctx.address(server.key)}"',
        f"port = {SERVER_PROXY_PORT}",
        "[ocsp_responder]",
        f'host = "{ctx.address(server.key)}"',
        f"port = {OCSP_PEERS_PORT}",
        "[admin]",
        'host = "127.0.0.1"',
        f"port = {ctx.port(p + '_admin')}",
        "[ocsp]",
        "retry_seconds = 5",
        "[exchange]",
        "serverconf_cache_seconds = 1",
        "[timeouts]",
        "connect_seconds = 5",
        "read_seconds = 30",
        "download_seconds = 10",
        "[globalconf]",
        f"refresh_interval_seconds = {ctx.timings.globalconf_refresh_seconds}",
    ]
    return "\n".join(lines) + "\n"


def init_server(ctx: NetworkContext, server: ServerIdentity) -> None:
    """``ss init`` with the anchor, the token, the subsystem as a client."""
    home = ctx.home(f"ss-{server.key}")
    home.mkdir()
    (home / "ss.toml").write_text(_ss_toml(ctx, server))
    anchor = str(ctx.directory / "anchor-internal.xml")
    _ss(
        ctx,
        server,
        "init",
        "--anchor",
        anchor,
        "--owner",
        server.owner,
        "--owner-name",
        server.member_name,
        "--server-code",
        server.server_code,
    )
    _ss(ctx, server, "token", "init", pin=True)
    _ss(ctx, server, "clients", "add", server.client, "--name", server.member_name)
    roles = (
        "security-officer",
        "registration-officer",
        "service-administrator",
        "system-administrator",
        "auditor",
    )
    out = _ss(
        ctx,
        server,
        "api-key",
        "create",
        "--name",
        "network-admin",
        *(w for r in roles for w in ("--role", r)),
    )
    ctx.add_secret(f"ss-{server.key}-admin", out.strip().splitlines()[-1].strip())


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ProcessFailed(f"expected JSON, got: {text[:200]!r}") from exc


def certify_server(ctx: NetworkContext, server: ServerIdentity) -> None:
    """Keys, CSRs, approval by the operator, certificates fetched and imported."""
    admin = ctx.url("central_admin", _API)
    officer = ctx.secret("central-registration-officer")
    central = ctx.url("central_registration")
    for usage in ("auth", "sign"):
        member = () if usage == "auth" else ("--member", server.owner)
        key_id = _ss(
            ctx, server, "keys", "generate", "--usage", usage, *member, pin=True
        )
        key_id = key_id.strip().splitlines()[-1]
        out = ctx.home(f"ss-{server.key}") / f"{usage}.csr"
        _ss(ctx, server, "csr", "create", key_id, "--out", str(out), pin=True)
        csrs = _json(_ss(ctx, server, "csr", "list"))
        csr_id = max(int(c["id"]) for c in csrs if c["key_id"] == key_id)
        sent = _json(
            _ss(ctx, server, "csr", "submit", str(csr_id), "--central", central)
        )
        call_json(
            "POST",
            f"{admin}/certificate-requests/{sent['request_id']}/approve",
            {},
            token=officer,
        )
        fetched = _wait(
            ctx, partial(_fetched, ctx, server, csr_id), f"{usage} certificate"
        )
        ctx.remember(**{f"ss_{server.key}_{usage}_cert": fetched})


def _fetched(ctx: NetworkContext, server: ServerIdentity, csr_id: int) -> str | None:
    result = _json(_ss(ctx, server, "csr", "fetch", str(csr_id)))
    sha = result.get("sha256") or result.get("cert_sha256")
    return str(sha) if sha else None


def _wait(ctx: NetworkContext, probe: Callable[[], Any], what: str) -> Any:
    """Poll ``probe`` until it returns something truthy."""
    deadline = time.monotonic() + ctx.timings.wait_seconds
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(1.0)
    raise ProcessFailed(f"timed out waiting for {what}", log=str(ctx.step_log))


def approve_management_request(ctx: NetworkContext, request_id: int) -> None:
    """The registration officer approves a management request."""
    admin = ctx.url("central_admin", _API)
    call_json(
        "POST",
        f"{admin}/management-requests/{request_id}/approve",
        {},
        token=ctx.secret("central-registration-officer"),
    )


def _request_id(answer: dict[str, Any]) -> int:
    for key in ("request_id", "requestId", "central_request_id", "id"):
        if key in answer:
            return int(answer[key])
    raise ProcessFailed(f"no request id in {answer}")


def _cert_state(ctx: NetworkContext, server: ServerIdentity, sha256: str) -> str:
    certs = _json(_ss(ctx, server, "certs", "list"))
    for cert in certs:
        if str(cert.get("sha256", "")).lower() == sha256.lower():
            return str(cert.get("state") or cert.get("status"))
    return "missing"


def register_auth_cert(ctx: NetworkContext, server: ServerIdentity) -> None:
    """``authCertReg``, approval, downloads until the certificate is registered."""
    sha = str(ctx.state.facts[f"ss_{server.key}_auth_cert"])
    _ss(ctx, server, "conf", "download")
    # authCertReg carries the owner signing certificate's OCSP response.
    _ss(ctx, server, "certs", "ocsp-refresh")
    address = ctx.address(server.key)
    sent = _json(
        _ss(ctx, server, "certs", "register", sha, "--address", address, pin=True)
    )
    approve_management_request(ctx, _request_id(sent))

    # The downloaded configuration lists the server with its owner: the
    # owner and the certificate become registered (registration.sync_states).
    def registered() -> bool:
        _ss(ctx, server, "conf", "download")
        return _cert_state(ctx, server, sha) == "registered" and (
            _client_state(ctx, server, server.owner) == "registered"
        )

    _wait(ctx, registered, f"{server.server_id}'s auth certificate to be registered")


def _client_state(ctx: NetworkContext, server: ServerIdentity, client: str) -> str:
    for entry in _json(_ss(ctx, server, "clients", "list")):
        if entry.get("client_id") == client or entry.get("id") == client:
            return str(entry.get("state"))
    return "missing"


def _until_client(ctx: NetworkContext, server: ServerIdentity, client: str) -> None:
    def registered() -> bool:
        _ss(ctx, server, "conf", "download")
        return _client_state(ctx, server, client) == "registered"

    _wait(ctx, registered, f"{client} to be registered on {server.server_id}")


def register_management_client(ctx: NetworkContext) -> None:
    """The operator adds ``MANAGEMENT`` to the management server (admin API).

    X-Road's central server registers its own management service provider
    directly: no clientReg can travel before that provider exists.
    """
    admin = ctx.url("central_admin", _API)
    call_json(
        "POST",
        f"{admin}/security-servers/clients",
        {"server": OPERATOR.server_id, "client": OPERATOR.client},
        token=ctx.secret("central-registration-officer"),
    )
    _until_client(ctx, OPERATOR, OPERATOR.client)


def grant_management_services(ctx: NetworkContext) -> None:
    """The management WSDL on MGMT; owners' global group may call it."""
    admin = ctx.url("central_admin", _API)
    officer = ctx.secret("central-registration-officer")
    group = f"GLOBALGROUP:{INSTANCE}/security-server-owners"
    for server in SERVERS:
        call_json(
            "POST",
            f"{admin}/global-groups/members",
            {"group": group, "client": server.owner},
            token=officer,
        )
    wsdl = ctx.url("central_registration", "/managementservice/wsdl")
    _ss(ctx, OPERATOR, "services", "add-wsdl", OPERATOR.client, "--url", wsdl)
    _ss(ctx, OPERATOR, "services", "enable", OPERATOR.client, wsdl)
    for code in MANAGEMENT_SERVICES:
        _ss(ctx, OPERATOR, "acl", "grant", OPERATOR.client, code, group)


def serve_server(ctx: NetworkContext, server: ServerIdentity) -> None:
    """``jplink ss serve`` for one server; waits for its listeners."""
    p = f"ss_{server.key}"
    args = (
        "ss",
        "serve",
        "--home",
        _home(ctx, server),
        "--pin-file",
        str(ctx.pin_file),
    )
    ports = (ctx.port(f"{p}_client_http"), ctx.port(f"{p}_admin"))
    ctx.serve(f"ss-{server.key}", args, ports)
    address = ctx.address(server.key)
    for port in (SERVER_PROXY_PORT, OCSP_PEERS_PORT):
        wait_for_port(ctx.state.processes[-1], port, address)
    ctx.update(
        urls={
            **ctx.state.urls,
            f"ss_{server.key}_client_proxy": ctx.url(f"{p}_client_http", "/"),
            f"ss_{server.key}_admin_api": ctx.url(f"{p}_admin", "/api/v1/"),
            f"ss_{server.key}_server_proxy": f"https://{address}:{SERVER_PROXY_PORT}/",
        }
    )


def register_subsystem(ctx: NetworkContext, server: ServerIdentity) -> None:
    """``clientReg`` through the management server; approval; downloads."""
    sent = _json(_ss(ctx, server, "clients", "register", server.client, pin=True))
    approve_management_request(ctx, _request_id(sent))
    _until_client(ctx, server, server.client)


def publish_provider_service(ctx: NetworkContext) -> None:
    """B imports the adapter's WSDL, enables it and lets A's subsystem call."""
    provider, consumer = SERVERS[2], SERVERS[1]
    wsdl = ctx.url("adapter", f"/wsdl/{provider.subsystem}")
    _ss(ctx, provider, "services", "add-wsdl", provider.client, "--url", wsdl)
    _ss(ctx, provider, "services", "enable", provider.client, wsdl)
    for code in ctx.state.facts["adapter_services"]:
        _ss(ctx, provider, "acl", "grant", provider.client, str(code), consumer.client)
    listed = _json(_ss(ctx, provider, "services", "list", provider.client))
    ctx.remember(provider_services=listed)
