"""Running the CA: the API+OCSP app and the TSA app in one process, or N forks.

The runner is :func:`jplink.serving.run_workers`: with ``workers > 1`` the
parent migrates the database once, then forks N children that bind both
listeners with ``SO_REUSEPORT``, so the kernel spreads connections (OCSP is
CPU-bound signing) over the cores.
"""

from __future__ import annotations

from functools import partial

from jplink.serving import Site, install_uvloop, run_workers

from .app import make_app, make_tsa_app
from .config import CaTsaConfig
from .service import open_database

__all__ = ["install_uvloop", "run_server"]


async def _migrate(config: CaTsaConfig) -> None:
    db = await open_database(config)
    await db.dispose()


def run_server(config: CaTsaConfig, *, workers: int = 1) -> int:
    """Serve until SIGTERM/SIGINT.

    Args:
        config: the instance configuration.
        workers: processes to run; above 1 they share the ports (reuse_port).

    Returns:
        The exit status (0 after a clean stop, 1 if a worker failed).

    Raises:
        ValueError: for ``workers < 1``.
        JPLinkError: configuration or database problems found at start-up.
    """
    sites = (
        Site("CA API", partial(make_app, config), config.api.host, config.api.port),
        Site("TSA", partial(make_tsa_app, config), config.tsa.host, config.tsa.port),
    )
    return run_workers(sites, workers=workers, prepare=partial(_migrate, config))
