"""Worker processes for the proxies (``[exchange] workers``).

One Python process runs its event loop on one core, and the message path
(parsing, signatures, hash chains) is Python CPU: a ``serve`` process alone
cannot use a second core. With ``workers = N`` the ``serve`` process starts
N - 1 workers (``jplink ss worker``) once the exchange may run. Every process
listens on the client proxy's and the server proxy's ports with
SO_REUSEPORT, so the kernel spreads new connections over them; each has its
own database connections, signer (batches per process), certificate-status
caches and message-log writer. What must happen once stays in ``serve``: the
admin API, OCSP for peers (5577), the OCSP refresher, the time-stamper, the
archiver and the configuration download. Workers pick up what those change
through the database and the saved configuration within the usual cache
periods (``serverconf_cache_seconds``, the 5-second reuse of own material,
``globalconf_check_seconds``).

The PIN goes to a worker over its stdin pipe (never argv, never a file) and
the pipe stays open: when it closes, because ``serve`` stopped or died, the
worker stops. ``serve`` restarts a worker that exits while the exchange runs
(at most one restart per :data:`RESTART_SECONDS` per slot) and stops them all
when the exchange stops (logout, a new certificate, shutdown).

Time-stamping health in a worker is read from the database: see
:class:`~.timestamping_health.PendingRecordsHealth`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sys
from collections.abc import AsyncIterator

from jplink.errors import ConfigurationError
from jplink.serving import stop_on_signals, tune_gc
from jplink.tasks import cancel_and_wait

from .app import (
    open_resources,
    server_tls_context,
)
from .client_tls import open_client_tls
from .config import SecurityServerConfig
from .proxy_listener import open_proxy_listeners

__all__ = ["READY", "RESTART_SECONDS", "WorkerPool", "run_worker", "worker_sites"]

_log = logging.getLogger(__name__)

#: The line a worker writes to stdout once it accepts connections.
READY = b"jplink-worker-ready\n"
#: A worker slot is restarted at most once per this many seconds.
RESTART_SECONDS = 5.0
#: How long a worker may take to start, and to stop before it is killed.
START_SECONDS = 60.0
STOP_SECONDS = 10.0


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextlib.asynccontextmanager
async def worker_sites(config: SecurityServerConfig, pin: str) -> AsyncIterator[None]:
    """Serve the client proxy (HTTP, HTTPS) and server proxy in this process.

    Raises:
        JPLinkError: the resources cannot be opened (PIN, database, no
            usable authentication certificate).
        OSError: a port cannot be shared (another program holds it).
    """
    async with open_resources(config, pin=pin, worker=True) as resources:
        now = _utcnow()
        tls = await server_tls_context(resources, now)
        client_tls = await open_client_tls(
            resources.db,
            config.home,
            now=now,
            refresh_seconds=max(config.exchange.serverconf_cache_seconds, 0.5),
        )
        try:
            async with open_proxy_listeners(
                config,
                resources,
                server_tls=tls,
                client_tls=client_tls.context,
                reuse_port=True,
            ):
                yield
        finally:
            await client_tls.close()


async def _worker_main(config: SecurityServerConfig) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    pin = (await reader.readline()).decode().rstrip("\n")
    if not pin:
        raise ConfigurationError("The worker received no PIN on stdin")
    stop = stop_on_signals()

    async def watch_parent() -> None:
        await reader.read()  # EOF: the serve process closed the pipe or died
        stop.set()

    watcher = asyncio.create_task(watch_parent())
    async with worker_sites(config, pin):
        sys.stdout.buffer.write(READY)
        sys.stdout.buffer.flush()
        tune_gc()
        await stop.wait()
    watcher.cancel()


def run_worker(config: SecurityServerConfig) -> None:
    """``jplink ss worker``: serve the proxies until stdin closes or SIGTERM."""
    import uvloop

    uvloop.run(_worker_main(config))


class WorkerPool:
    """Starts, watches and stops the worker processes of one exchange run.

    Args:
        config: the instance configuration (its ``home`` is passed on).
        pin: the token PIN, handed to each worker over its stdin.
        count: the number of workers (``[exchange] workers - 1``).
    """

    def __init__(self, config: SecurityServerConfig, pin: str, count: int) -> None:
        self._config = config
        self._pin = pin
        self._count = count
        self._procs: list[asyncio.subprocess.Process | None] = [None] * count
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        """Start every worker and wait until each accepts connections.

        Raises:
            ConfigurationError: a worker exited or did not get ready in time
                (its own log says why); the others are stopped.
        """
        try:
            for slot in range(self._count):
                await self._spawn(slot)
        except BaseException:
            await self.stop()
            raise
        self._tasks = [
            asyncio.create_task(self._watch(slot), name=f"worker-{slot}")
            for slot in range(self._count)
        ]

    async def _spawn(self, slot: int) -> None:
        cmd = [sys.executable, "-m", "jplink.cli", "ss", "worker"]
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            "--home",
            str(self._config.home),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        # Known from now on, so that stop() ends it even while it starts.
        self._procs[slot] = proc
        try:
            proc.stdin.write(self._pin.encode() + b"\n")
            await proc.stdin.drain()
            try:
                async with asyncio.timeout(START_SECONDS):
                    line = await proc.stdout.readline()
            except TimeoutError:
                line = b""
        except BaseException:  # cancelled (stop) or the pipe broke
            await asyncio.shield(_end(proc))
            raise
        if line != READY:
            await _end(proc)
            raise ConfigurationError(
                f"Proxy worker {slot + 1} did not start (exit status "
                f"{proc.returncode}); see its log"
            )
        _log.info("proxy worker %d running (pid %d)", slot + 1, proc.pid)

    async def _watch(self, slot: int) -> None:
        while not self._stopping:
            proc = self._procs[slot]
            if proc is not None:
                await proc.wait()
                if self._stopping:
                    return
                _log.error(
                    "proxy worker %d (pid %d) exited with %s; restarting",
                    slot + 1,
                    proc.pid,
                    proc.returncode,
                )
            await asyncio.sleep(RESTART_SECONDS)
            try:
                await self._spawn(slot)
            except ConfigurationError as exc:
                self._procs[slot] = None
                _log.error("%s", exc.message)

    async def stop(self) -> None:
        """Stop every worker (stdin closed, then SIGTERM, then SIGKILL)."""
        self._stopping = True
        for task in self._tasks:
            await cancel_and_wait(task)
        await asyncio.gather(*(_end(p) for p in self._procs if p is not None))


async def _end(proc: asyncio.subprocess.Process) -> None:
    if proc.stdin is not None and not proc.stdin.is_closing():
        proc.stdin.close()
    for action in (None, proc.terminate, proc.kill):
        if proc.returncode is not None:
            return
        if action is not None:
            with contextlib.suppress(ProcessLookupError):
                action()
        try:
            async with asyncio.timeout(STOP_SECONDS):
                await proc.wait()
        except TimeoutError:
            continue
