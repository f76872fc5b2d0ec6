"""``[exchange] workers``: proxy worker processes sharing the ports.

B runs with ``workers = 2`` (on SQLite, then on PostgreSQL): this test
process is its ``serve`` side (:func:`security_server.serve.running`) and
starts one real ``jplink ss worker`` process. The test checks that the
worker takes part in the exchange (its own CPU time grows while A's
requests are served), that a killed worker is restarted, and that stopping
the exchange leaves no worker process behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from jplink.errors import ConfigurationError
from jplink.protocol.request_hash import compute_request_hash
from security_server import workers as workers_mod
from security_server.config import CONFIG_FILE, SecurityServerConfig, load_ss_config
from security_server.serve import running
from tests.conftest import require_tool

from .helpers import PIN
from .pair import StubService, prepare_pair, start_ca, trades_request


def _with_workers(config: SecurityServerConfig, count: int) -> SecurityServerConfig:
    path = config.home / CONFIG_FILE
    setting = f"[exchange]\nworkers = {count}\n"
    path.write_text(path.read_text().replace("[exchange]\n", setting, 1))
    return load_ss_config(config.home)


def _workers_of(parent: int) -> list[int]:
    """Pids of the ``ss worker`` children of ``parent``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if fields[1] == str(parent) and b"worker" in cmdline and b"ss" in cmdline:
            found.append(int(stat.parent.name))
    return found


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[11]) + int(fields[12])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


async def _wait_for(predicate: Any, seconds: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        if loop.time() >= deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.1)


async def _exchange(
    http: aiohttp.ClientSession, url: str, request: bytes, count: int
) -> None:
    expected = compute_request_hash(request).encode()
    semaphore = asyncio.Semaphore(24)

    async def one() -> None:
        async with (
            semaphore,
            http.post(
                url, data=request, headers={"Content-Type": "text/xml; charset=UTF-8"}
            ) as resp,
        ):
            body = await resp.read()
            assert resp.status == 200, body.decode()
            assert expected in body  # the provider's requestHash of our bytes

    await asyncio.gather(*(one() for _ in range(count)))


async def _curl(url: str, request: bytes) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        require_tool("curl"), "-sS", "--fail", "-H",
        "Content-Type: text/xml; charset=UTF-8", "--data-binary", "@-", url,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate(request)
    assert proc.returncode == 0, out
    return out


async def _recovers(http: aiohttp.ClientSession, url: str, request: bytes) -> None:
    """After a worker died, A's kept-alive connections to it fail once each
    (``NetworkError``, nothing else); then every exchange succeeds."""
    streak = 0
    for _ in range(200):
        async with http.post(
            url, data=request, headers={"Content-Type": "text/xml; charset=UTF-8"}
        ) as resp:
            body = await resp.read()
        if resp.status == 200:
            streak += 1
            if streak == 30:
                return
        else:
            assert b"Server.ClientProxy.NetworkError" in body, body.decode()
            streak = 0
    raise AssertionError("the exchange did not recover after the worker died")


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
async def test_a_worker_shares_the_exchange_is_restarted_and_stopped(
    tmp_path: Path,
    aiohttp_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    database: str,
) -> None:
    provider_db = None
    if database == "postgresql":  # both of B's processes write to one server
        server = request.getfixturevalue("postgres_server")
        provider_db = await asyncio.to_thread(server.create_database)
    monkeypatch.setattr(workers_mod, "RESTART_SECONDS", 0.5)
    async with contextlib.AsyncExitStack() as stack:
        # Many connections from A, so that the kernel hands some to B's worker.
        http = await stack.enter_async_context(
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        )
        ca = await start_ca(tmp_path, aiohttp_server, http)
        stub = StubService()
        stub_url = str((await aiohttp_server(stub.app())).make_url("/soap"))
        a, b, _shared, _expire = await prepare_pair(
            tmp_path, ca, stub_url, provider_database_url=provider_db
        )
        b_config = _with_workers(b.config, 2)
        await stack.enter_async_context(running(a.config, pin=PIN))
        b_run = contextlib.AsyncExitStack()
        await b_run.enter_async_context(running(b_config, pin=PIN))
        try:
            (worker,) = _workers_of(os.getpid())
            message = trades_request(a.subsystem, b.subsystem)
            before = _cpu_ticks(worker)
            await _exchange(http, a.client_proxy_url, message, 160)
            # The worker verified, signed and logged part of the messages.
            assert _cpu_ticks(worker) - before >= 2
            # An information system's own HTTP client gets the same answer.
            body = await _curl(a.client_proxy_url, message)
            assert compute_request_hash(message).encode() in body

            os.kill(worker, 9)

            def others() -> list[int]:
                return [p for p in _workers_of(os.getpid()) if p != worker]

            await _wait_for(others)
            (replacement,) = others()
            await _recovers(http, a.client_proxy_url, message)
        finally:
            await b_run.aclose()
        # Stopping the exchange stops the workers.
        await _wait_for(lambda: not _alive(replacement), seconds=15)
        assert _workers_of(os.getpid()) == []


def test_workers_exclude_immediate_timestamping(tmp_path: Path) -> None:
    home = tmp_path / "ss"
    home.mkdir()
    (home / CONFIG_FILE).write_text(
        "[exchange]\nworkers = 2\n[message_log]\ntimestamp_immediately = true\n"
    )
    with pytest.raises(ConfigurationError, match="timestamp_immediately"):
        load_ss_config(home)
    (home / CONFIG_FILE).write_text("[exchange]\nworkers = 0\n")
    with pytest.raises(ConfigurationError, match="workers"):
        load_ss_config(home)
