"""Loopback ports for servers the tests start.

Asking the kernel for port 0 and closing the socket hands out a port from
the *ephemeral* range (32768-60999 on Linux), and the many outgoing
connections the suite makes draw their local ports from that same range: a
port picked that way can be taken by a client socket before the server
binds it (seen in CI as "address already in use").  So test servers get
ports from below the ephemeral range instead, in a block of their own per
xdist worker, handed out in sequence and checked to be free.
"""

from __future__ import annotations

import itertools
import os
import random
import socket
import threading

_BASE = 20000
_BLOCK = 1500  # ports per xdist worker: 8 workers fit below 32768

_lock = threading.Lock()


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = worker.removeprefix("gw")
    return int(digits) % 8 if digits.isdigit() else 0


_start = _BASE + _worker_index() * _BLOCK
# A random starting point, so that two test runs at once (several engineers
# on one machine) rarely walk the same ports in step.
_first = random.randrange(_BLOCK)
_counter: itertools.cycle[int] = itertools.cycle(
    [*range(_start + _first, _start + _BLOCK), *range(_start, _start + _first)]
)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback TCP port no one listens on, outside the ephemeral range."""
    with _lock:
        for _ in range(_BLOCK):
            port = next(_counter)
            if _bindable(port):
                return port
    raise RuntimeError("no free loopback port left in this worker's block")
