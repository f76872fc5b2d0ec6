"""Running the adapter: one process, or N forked workers sharing the port.

The runner is :func:`jplink.serving.run_workers`: with ``workers > 1`` the
parent migrates the store once, then forks N children that bind the port with
``SO_REUSEPORT``, so the kernel spreads connections over the cores (the SOAP
path is CPU-bound XML work); if one fails the others are stopped too.
"""

from __future__ import annotations

from functools import partial

from jplink.serving import Site, install_uvloop, run_workers

from .app import make_app
from .config import AdapterConfig
from .store import open_registry

__all__ = ["install_uvloop", "run_server"]


async def _migrate(config: AdapterConfig) -> None:
    # Opening the registry migrates the store and checks the key file.
    async with open_registry(config):
        pass


def run_server(config: AdapterConfig, *, workers: int = 1) -> int:
    """Serve until SIGTERM/SIGINT.

    Args:
        config: the instance configuration.
        workers: processes to run; above 1 they share the port (reuse_port).

    Returns:
        The exit status (0 after a clean stop, 1 if a worker failed).

    Raises:
        ValueError: for ``workers < 1``.
        JPLinkError: configuration or store problems found at start-up.
    """
    site = Site("adapter", partial(make_app, config), config.host, config.port)
    return run_workers((site,), workers=workers, prepare=partial(_migrate, config))
