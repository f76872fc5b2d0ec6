"""``jplink network up|down|status``: bring a whole network up, and down.

``up`` runs the onboarding steps in order, printing each with its duration;
on the first failure it says which step failed, the error, and which log to
read, and stops every process it started (unless ``keep_on_failure``).
``down`` stops every recorded process group (SIGTERM, then SIGKILL) and
checks that none is left.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from jplink.errors import (
    Conflict,
    JPLinkError,
    ProcessFailed,
    RemoteProtocolError,
    TransportError,
)

from . import central_setup as cs
from . import ss_setup as ss
from .context import SERVERS, NetworkContext, Timings
from .databases import component_databases
from .exchange import exchange
from .processes import group_alive, stop_process
from .state import (
    NetworkState,
    allocate_addresses,
    allocate_ports,
    load_state,
    save_state,
)

__all__ = [
    "network_down",
    "network_status",
    "network_up",
    "running_pids",
]

Echo = Callable[[str], None]


def running_pids(state: NetworkState) -> dict[str, list[int]]:
    """Process name -> live pids of its process group."""
    return {p.name: group_alive(p.pgid) for p in state.processes}


def _steps(ctx: NetworkContext) -> list[tuple[str, Callable[[], None]]]:
    _, a, b = SERVERS
    steps: list[tuple[str, Callable[[], None]]] = [
        ("CA, OCSP responder and TSA", lambda: cs.start_ca(ctx)),
        ("central server", lambda: cs.start_central(ctx)),
        (
            "central operator: CA, TSA, parameters, anchor",
            lambda: cs.configure_central(ctx),
        ),
        (
            "member-code requests COM/1111, COM/2222 approved",
            lambda: cs.approve_member_requests(ctx),
        ),
        ("adapter server with the sample services", lambda: cs.start_adapter(ctx)),
    ]
    for server in SERVERS:
        steps += [
            (
                f"{server.server_id}: init, token, client",
                partial(ss.init_server, ctx, server),
            ),
            (
                f"{server.server_id}: keys, CSRs approved, certificates imported",
                partial(ss.certify_server, ctx, server),
            ),
            (
                f"{server.server_id}: authCertReg approved, registered",
                partial(ss.register_auth_cert, ctx, server),
            ),
        ]
    steps += [
        (
            "management subsystem registered on the management server",
            lambda: ss.register_management_client(ctx),
        ),
        (
            "management services (WSDL, access for security-server-owners)",
            lambda: ss.grant_management_services(ctx),
        ),
        *((f"serve {s.server_id}", partial(ss.serve_server, ctx, s)) for s in SERVERS),
        (f"clientReg {a.client} approved", lambda: ss.register_subsystem(ctx, a)),
        (f"clientReg {b.client} approved", lambda: ss.register_subsystem(ctx, b)),
        (
            "provider imports the adapter WSDL, grants A access",
            lambda: ss.publish_provider_service(ctx),
        ),
        ("first exchange through A and B", lambda: _first_exchange(ctx)),
    ]
    return steps


def _first_exchange(ctx: NetworkContext) -> None:
    from wsdl.parse import parse_wsdl

    from .exchange import demo_request
    from .http import call

    wsdl = call("GET", ctx.url("adapter", f"/wsdl/{SERVERS[2].subsystem}")).body
    namespace = parse_wsdl(wsdl).target_namespace or ""
    request = demo_request(namespace)
    request_file = ctx.directory / "request.xml"
    request_file.write_bytes(request)
    url = ctx.url("ss_a_client_http", "/")
    deadline = time.monotonic() + ctx.timings.wait_seconds
    while True:  # the proxies' configuration caches catch up within seconds
        try:
            result = exchange(url, request)
            break
        except (RemoteProtocolError, TransportError):
            if time.monotonic() > deadline:
                raise
            time.sleep(2.0)
    ctx.remember(
        first_exchange={
            "request_hash": result.request_hash,
            "request_file": str(request_file),
            "namespace": namespace,
        }
    )


def network_up(
    directory: Path,
    *,
    base_port: int,
    database: str = "",
    timings: Timings | None = None,
    keep_on_failure: bool = False,
    echo: Echo = print,
) -> NetworkState:
    """Create and start a network in ``directory``.

    Args:
        directory: the state directory (created; must hold no network).
        base_port: ports are allocated from here upwards.
        database: a PostgreSQL URL, or "" for SQLite everywhere.
        timings: intervals (defaults suit a demo).
        keep_on_failure: leave the processes running after a failed step.
        echo: where progress lines go.

    Returns:
        The state of the ready network.

    Raises:
        Conflict: a network already runs (or ran) in ``directory``.
        ProcessFailed: a step failed; ``detail`` has ``step`` and ``log``.
    """
    existing = load_state(directory) if directory.exists() else None
    if existing is not None:
        alive = [n for n, pids in running_pids(existing).items() if pids]
        if alive:
            raise Conflict(
                f"A network runs in {directory} ({', '.join(alive)}); "
                "stop it with 'jplink network down' first"
            )
        raise Conflict(
            f"{directory} holds a stopped network; remove the directory first"
        )
    if directory.exists() and any(directory.iterdir()):
        raise Conflict(f"{directory} is not empty; choose a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    for sub in ("logs", "secrets"):
        (directory / sub).mkdir(mode=0o700)
    timings = timings or Timings()
    state = NetworkState(
        str(directory.resolve()),
        database,
        allocate_ports(base_port),
        allocate_addresses(base_port, tuple(s.key for s in SERVERS)),
    )
    save_state(state)
    ctx = NetworkContext(state, timings)
    # The token PIN of every security server: random, in a 0600 file.
    ctx.add_secret("token-pin", secrets.token_urlsafe(18))
    echo(f"Bringing up a JP-LINK network in {ctx.directory}")
    try:
        if database:
            ctx.remember(databases=component_databases(database, ctx.directory.name))
        steps = _steps(ctx)
        for number, (name, action) in enumerate(steps, 1):
            started = time.monotonic()
            echo(f"[{number:2d}/{len(steps)}] {name} ...")
            try:
                action()
            except JPLinkError as err:
                log = getattr(err, "log", None) or str(ctx.step_log)
                raise ProcessFailed(
                    f"Step '{name}' failed: {err.code}: {err.message}",
                    log=log,
                    detail={"step": name, "log": log},
                ) from err
            echo(f"        ok ({time.monotonic() - started:.1f} s)")
    except BaseException:
        if not keep_on_failure:
            echo("Stopping the processes started so far ...")
            for record in reversed(ctx.state.processes):
                stop_process(record)
            ctx.update(status="failed")
        else:
            ctx.update(status="failed (kept running)")
        raise
    ctx.update(status="ready")
    return ctx.state


def network_down(directory: Path, *, echo: Echo = print) -> NetworkState:
    """Stop every process of the network in ``directory``.

    Raises:
        Conflict: no network description in ``directory``.
        ProcessFailed: a process group survived SIGKILL.
    """
    state = load_state(directory)
    if state is None:
        raise Conflict(f"No network in {directory} (no network.json)")
    for record in reversed(state.processes):
        if group_alive(record.pgid):
            killed = stop_process(record)
            echo(
                f"stopped {record.name} (pid {record.pid})"
                + (" with SIGKILL" if killed else "")
            )
    left = {n: pids for n, pids in running_pids(state).items() if pids}
    if left:
        raise ProcessFailed(f"Processes survived: {left}")
    stopped = replace(state, status="stopped")
    save_state(stopped)
    return stopped


def network_status(directory: Path) -> dict[str, Any]:
    """``network.json`` with each process's liveness (``running``)."""
    state = load_state(directory)
    if state is None:
        raise Conflict(f"No network in {directory} (no network.json)")
    data = state.to_json()
    alive = running_pids(state)
    for process in data["processes"]:
        process["running"] = bool(alive.get(process["name"]))
    data["running"] = any(alive.values())
    return data
