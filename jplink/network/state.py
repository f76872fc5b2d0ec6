"""What a local network is: its directory, ports, processes (``network.json``).

Everything of one network lives under one directory: a home per component
(``ca/``, ``central/``, ``adapter/``, ``ss-mgmt/``, ``ss-a/``, ``ss-b/``), a
log per process (``logs/<name>.log``), secrets (``secrets/``, mode 0700) and
``network.json``, which says what runs where. ``network.json`` is written
after every started process, so ``jplink network down`` can stop whatever a
failed or interrupted ``up`` left behind.

Ports are chosen below Linux's ephemeral range (32768-60999), from which the
kernel draws the local ports of outgoing connections: a server port picked
from that range could be taken by a client socket before the server binds it.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from jplink.errors import ConfigurationError

__all__ = [
    "DEFAULT_BASE_PORT",
    "EPHEMERAL_FIRST",
    "OCSP_PEERS_PORT",
    "PORT_NAMES",
    "SERVER_PROXY_PORT",
    "STATE_FILE",
    "NetworkState",
    "ProcessRecord",
    "allocate_addresses",
    "allocate_ports",
    "default_directory",
    "load_state",
    "save_state",
]

STATE_FILE = "network.json"
DEFAULT_BASE_PORT = 14000
#: First port of Linux's default ephemeral range (net.ipv4.ip_local_port_range).
EPHEMERAL_FIRST = 32768

#: Every listening port of the network, in allocation order.
PORT_NAMES = (
    "ca_api",
    "ca_tsa",
    "central_admin",
    "central_registration",
    "central_publisher",
    "adapter",
    *(
        f"{ss}_{port}"
        for ss in ("ss_mgmt", "ss_a", "ss_b")
        for port in ("client_http", "client_https", "admin")
    ),
)
#: X-Road's fixed ports between security servers (PR-MESSTRANSP): the global
#: configuration gives a server's address without a port, and the central
#: server accepts only a host in ``authCertReg``; so each security server of
#: a network gets a loopback address of its own and listens on these.
SERVER_PROXY_PORT = 5500
OCSP_PEERS_PORT = 5577


@dataclass(frozen=True, slots=True)
class ProcessRecord:
    """One started server process."""

    name: str
    pid: int
    #: The process group (the process started its own session: pgid == pid).
    pgid: int
    log: str
    command: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NetworkState:
    """The contents of ``network.json``."""

    directory: str
    database: str
    ports: dict[str, int]
    #: Security server key -> its own loopback address (ports 5500, 5577).
    addresses: dict[str, str] = field(default_factory=dict)
    processes: tuple[ProcessRecord, ...] = ()
    #: ``ready`` once onboarding and the first exchange succeeded.
    status: str = "starting"
    #: Name -> URL of each endpoint an operator uses.
    urls: dict[str, str] = field(default_factory=dict)
    #: Name -> path of each file holding an API key or the token PIN.
    secrets: dict[str, str] = field(default_factory=dict)
    #: Facts about the onboarded identities (members, subsystems, services).
    facts: dict[str, Any] = field(default_factory=dict)

    def with_process(self, record: ProcessRecord) -> NetworkState:
        """This state with one more process."""
        return replace(self, processes=(*self.processes, record))

    def to_json(self) -> dict[str, Any]:
        """The JSON document (``status --json`` prints it with liveness)."""
        data = asdict(self)
        data["processes"] = [
            {**asdict(p), "command": list(p.command)} for p in self.processes
        ]
        return data


def default_directory() -> Path:
    """``$JPLINK_NETWORK_DIR``, else ``./jplink-network``."""
    return Path(os.environ.get("JPLINK_NETWORK_DIR") or "jplink-network")


def _bindable(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def allocate_ports(base: int) -> dict[str, int]:
    """Free loopback ports for :data:`PORT_NAMES`, from ``base`` upwards.

    Args:
        base: the first port to try.

    Returns:
        Name -> port; every port was bindable on 127.0.0.1 when checked.

    Raises:
        ConfigurationError: ``base`` is privileged, or not enough free ports
            lie between it and the ephemeral range.
    """
    if base < 1024:
        raise ConfigurationError(f"Base port {base} is privileged; use 1024 or more")
    ports: dict[str, int] = {}
    candidate = base
    for name in PORT_NAMES:
        while candidate < EPHEMERAL_FIRST and not _bindable(candidate):
            candidate += 1
        if candidate >= EPHEMERAL_FIRST:
            raise ConfigurationError(
                f"Not enough free ports between {base} and {EPHEMERAL_FIRST}; "
                "choose another --base-port"
            )
        ports[name] = candidate
        candidate += 1
    return ports


def allocate_addresses(base: int, names: tuple[str, ...]) -> dict[str, str]:
    """A loopback address per security server, free on ports 5500 and 5577.

    The addresses are ``127.<a>.<b>.<n>``, with ``a.b`` derived from
    ``base`` so that networks with different base ports do not meet.

    Raises:
        ConfigurationError: no free block of addresses was found.
    """
    for attempt in range(64):
        block = (base // 10 + attempt * 7) % 60000
        prefix = f"127.{1 + block // 250}.{1 + block % 250}"
        chosen = {name: f"{prefix}.{n}" for n, name in enumerate(names, 1)}
        if all(
            _bindable(port, host)
            for host in chosen.values()
            for port in (SERVER_PROXY_PORT, OCSP_PEERS_PORT)
        ):
            return chosen
    raise ConfigurationError(
        f"Ports {SERVER_PROXY_PORT} and {OCSP_PEERS_PORT} are taken on every loopback "
        "address tried; is a server listening on 0.0.0.0:5500 or 0.0.0.0:5577?"
    )


def save_state(state: NetworkState) -> None:
    """Write ``network.json`` atomically (a reader never sees half a file)."""
    path = Path(state.directory) / STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state.to_json(), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def load_state(directory: Path) -> NetworkState | None:
    """Read ``network.json`` of ``directory``.

    Returns:
        The state, or None when the directory holds no network.

    Raises:
        ConfigurationError: the file exists but is not a network description.
    """
    path = directory / STATE_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        processes = tuple(
            ProcessRecord(
                name=str(p["name"]),
                pid=int(p["pid"]),
                pgid=int(p["pgid"]),
                log=str(p["log"]),
                command=tuple(str(c) for c in p["command"]),
            )
            for p in data["processes"]
        )
        return NetworkState(
            directory=str(data["directory"]),
            database=str(data["database"]),
            ports={str(k): int(v) for k, v in data["ports"].items()},
            addresses={str(k): str(v) for k, v in data.get("addresses", {}).items()},
            processes=processes,
            status=str(data["status"]),
            urls={str(k): str(v) for k, v in data.get("urls", {}).items()},
            secrets={str(k): str(v) for k, v in data.get("secrets", {}).items()},
            facts=dict(data.get("facts", {})),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigurationError(f"{path} is not a network description: {exc}") from exc
