"""The running network's context: directory, ports, identities, processes.

:class:`NetworkContext` is what every onboarding step works with: where each
component's home and log are, which ports it listens on, and the
identities of the demo network (:data:`INSTANCE`, :data:`OPERATOR`,
:data:`SERVERS`). It records every started process in ``network.json`` at
once, so that ``down`` can stop what a failed ``up`` left behind.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .processes import run_command, start_server, wait_for_port
from .state import NetworkState, ProcessRecord, save_state

__all__ = [
    "INSTANCE",
    "OPERATOR",
    "SERVERS",
    "NetworkContext",
    "ServerIdentity",
    "Timings",
]

INSTANCE = "JP"


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """One security server of the network and the organisation owning it."""

    #: Short name: the home is ``ss-<key>``, ports ``ss_<key>_*``.
    key: str
    member_class: str
    member_code: str
    member_name: str
    server_code: str
    subsystem: str

    @property
    def owner(self) -> str:
        return f"MEMBER:{INSTANCE}/{self.member_class}/{self.member_code}"

    @property
    def client(self) -> str:
        return (
            f"SUBSYSTEM:{INSTANCE}/{self.member_class}/{self.member_code}/"
            f"{self.subsystem}"
        )

    @property
    def server_id(self) -> str:
        return (
            f"SERVER:{INSTANCE}/{self.member_class}/{self.member_code}/"
            f"{self.server_code}"
        )


#: The central operator's member and its management security server.
OPERATOR = ServerIdentity(
    "mgmt", "GOV", "0000", "JP-LINK Operator", "mgmt", "MANAGEMENT"
)
#: Every security server: the management server, consumer A, provider B.
SERVERS = (
    OPERATOR,
    ServerIdentity("a", "COM", "1111", "Consumer Ltd", "ss1", "client"),
    ServerIdentity("b", "COM", "2222", "Provider Ltd", "ss2", "data"),
)


@dataclass(frozen=True, slots=True)
class Timings:
    """Intervals of the network: short for a demo, shorter for tests."""

    #: The central server's ``confExpireIntervalSeconds``.
    conf_expire_seconds: int = 600
    #: How often the publisher regenerates at the latest.
    publisher_refresh_seconds: float = 30.0
    #: How often the security servers download the configuration.
    globalconf_refresh_seconds: int = 30
    #: Seconds any single wait (a port, a state) may take.
    wait_seconds: float = 90.0


class NetworkContext:
    """The directory and the recorded state of one network being built."""

    def __init__(self, state: NetworkState, timings: Timings, *, verbose: bool = False):
        self.state = state
        self.timings = timings
        self.verbose = verbose
        self.directory = Path(state.directory)
        self.step_log = self.log_path("onboarding")

    # -- places ----------------------------------------------------------
    def home(self, name: str) -> Path:
        """The instance home of a component (``ca``, ``central``, ``ss-a`` ...)."""
        return self.directory / name

    def log_path(self, name: str) -> Path:
        """The log file of a process (or ``onboarding`` for the commands)."""
        return self.directory / "logs" / f"{name}.log"

    def address(self, server_key: str) -> str:
        """The loopback address of a security server (ports 5500, 5577)."""
        return self.state.addresses[server_key]

    def port(self, name: str) -> int:
        """An allocated port by its name (:data:`~.state.PORT_NAMES`)."""
        return self.state.ports[name]

    def url(self, port_name: str, path: str = "") -> str:
        """``http://127.0.0.1:<port><path>``."""
        return f"http://127.0.0.1:{self.port(port_name)}{path}"

    @property
    def pin_file(self) -> Path:
        """The token PIN file shared by the network's security servers (0600)."""
        return self.directory / "secrets" / "token-pin"

    def database_url(self, component: str) -> str:
        """The database of one component ("" = its SQLite default)."""
        urls: dict[str, str] = self.state.facts.get("databases", {})
        return urls.get(component, "")

    # -- recording -------------------------------------------------------
    def update(self, **changes: Any) -> None:
        """Replace fields of the state and save ``network.json``."""
        self.state = replace(self.state, **changes)
        save_state(self.state)

    def remember(self, **facts: Any) -> None:
        """Record facts (request ids, certificate hashes ...) in the state."""
        self.update(facts={**self.state.facts, **facts})

    def add_secret(self, name: str, value: str) -> Path:
        """Write a secret into ``secrets/<name>`` (mode 0600) and record it."""
        path = self.directory / "secrets" / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value.strip() + "\n")
        self.update(secrets={**self.state.secrets, name: str(path)})
        return path

    def secret(self, name: str) -> str:
        """Read back a recorded secret."""
        return Path(self.state.secrets[name]).read_text().strip()

    # -- processes -------------------------------------------------------
    def jplink(self, *args: str, timeout: float = 120.0) -> str:
        """Run a component command; its output goes to the onboarding log."""
        return run_command(args, self.step_log, timeout=timeout)

    def serve(self, name: str, args: tuple[str, ...], ports: tuple[int, ...]) -> None:
        """Start a server process, record it, wait until it listens."""
        record: ProcessRecord = start_server(name, args, self.log_path(name))
        self.update(processes=(*self.state.processes, record))
        for port in ports:
            wait_for_port(record, port, timeout=self.timings.wait_seconds)
