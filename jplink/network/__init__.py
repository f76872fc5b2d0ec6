"""The local JP-LINK network: every component as a process on loopback.

``jplink network up`` starts the CA/OCSP/TSA, the central server, the adapter
server and three security servers (the operator's management server, the
consumer A and the provider B), onboards them through their public CLIs and
HTTP APIs only, and makes a first signed exchange; ``down`` stops them;
``status`` says what runs where (``network.json``). This package and
``jplink/cli.py`` are the only parts of the core that start servers.
"""

from __future__ import annotations

from .context import INSTANCE, OPERATOR, SERVERS, ServerIdentity, Timings
from .state import NetworkState, ProcessRecord, default_directory, load_state
from .up import network_down, network_status, network_up

__all__ = [
    "INSTANCE",
    "OPERATOR",
    "SERVERS",
    "NetworkState",
    "ProcessRecord",
    "ServerIdentity",
    "Timings",
    "default_directory",
    "load_state",
    "network_down",
    "network_status",
    "network_up",
]
