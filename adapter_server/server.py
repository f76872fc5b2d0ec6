"""Running the adapter: one process, or N forked workers sharing the port.

With ``workers > 1`` the parent migrates the store once, then forks N
children; each binds the port with ``SO_REUSEPORT`` so the kernel spreads
connections over the cores (the SOAP path is CPU-bound XML work). The parent
forwards SIGTERM/SIGINT to the children and waits for them; if one fails
(port in use, broken home) the others are stopped too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from aiohttp import web

from .config import AdapterConfig
from .store import open_registry

__all__ = ["install_uvloop", "run_server"]

log = logging.getLogger(__name__)


def install_uvloop() -> bool:
    """Use uvloop for new event loops when it is installed; True if it is."""
    try:
        import uvloop
    except ImportError:
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


async def _migrate(config: AdapterConfig) -> None:
    # Opening the registry migrates the store and checks the key file.
    async with open_registry(config):
        pass


async def _serve(config: AdapterConfig, *, reuse_port: bool) -> None:
    from .app import make_app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(make_app(config), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port, reuse_port=reuse_port)
        await site.start()
        log.info(
            "adapter listening on http://%s:%d (pid %d)",
            config.host,
            config.port,
            os.getpid(),
        )
        await stop.wait()
    finally:
        await runner.cleanup()


def _child(config: AdapterConfig) -> None:  # pragma: no cover - runs in a fork
    code = 0
    try:
        asyncio.run(_serve(config, reuse_port=True))
    except Exception:
        log.exception("worker %d failed", os.getpid())
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


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
    if workers < 1:
        raise ValueError("workers must be at least 1")
    install_uvloop()
    # Migrate once, before any worker starts, so workers never race on DDL.
    asyncio.run(_migrate(config))
    if workers == 1:
        asyncio.run(_serve(config, reuse_port=False))
        return 0
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            _child(config)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    remaining = set(children)
    while remaining:
        pid, code = os.wait()
        if pid not in remaining:
            continue
        remaining.discard(pid)
        if os.waitstatus_to_exitcode(code) != 0 and status == 0:
            status = 1
            forward(signal.SIGTERM, None)
    return status
