"""``jplink ss serve`` as a real process stops cleanly on SIGTERM and SIGINT.

``systemctl stop`` sends SIGTERM. The server must stop taking connections,
answer the requests under way (their records committed), close everything
and exit 0: not die at once with SIGTERM's default action. A server started
in the background by a shell inherits SIGINT ignored; it must stop on it all
the same. A is the real process here; B and the slow service (1 s per call,
so that requests are still under way at the signal) run in the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy.engine import make_url

from jplink.protocol.request_hash import compute_request_hash
from security_server.serve import running

from .helpers import PIN
from .pair import Node, StubService, prepare_pair, start_ca, trades_request

ROOT = Path(__file__).resolve().parents[3]
IN_FLIGHT = 6


def _ignore_sigint() -> None:  # runs in the child before exec
    signal.signal(signal.SIGINT, signal.SIG_IGN)


async def _start_serve(node: Node) -> asyncio.subprocess.Process:
    """``jplink ss serve`` for ``node``, with SIGINT ignored as a shell's
    background job has it; returns once its client proxy listens."""
    pin_file = node.config.home / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "jplink.cli", "ss", "serve"),
        *("--home", str(node.config.home), "--pin-file", str(pin_file)),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_ignore_sigint,
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        try:
            _r, w = await asyncio.open_connection(
                "127.0.0.1", node.config.client_proxy.http_port
            )
        except OSError:
            if proc.returncode is not None or loop.time() > deadline:
                assert proc.stderr is not None
                tail = (await proc.stderr.read())[-2000:].decode(errors="replace")
                raise AssertionError(f"ss serve did not start:\n{tail}") from None
            await asyncio.sleep(0.1)
            continue
        w.close()
        return proc


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


def _logged(node: Node) -> list[tuple[str, str]]:
    """(query id, direction) of every record in the node's message log."""
    path = make_url(node.config.db_url).database
    assert path
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute("SELECT query_id, direction FROM message_log").fetchall()


async def _refused(port: int) -> bool:
    try:
        _r, w = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    w.close()
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_stops_serve_after_the_requests_under_way(
    tmp_path: Path, aiohttp_server: Any, signum: signal.Signals
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        ca = await start_ca(tmp_path, aiohttp_server, http)
        stub = StubService(delay=1.0)
        stub_url = str((await aiohttp_server(stub.app())).make_url("/soap"))
        a, b, _shared, _expire = await prepare_pair(tmp_path, ca, stub_url)
        await stack.enter_async_context(running(b.config, pin=PIN))
        proc = await _start_serve(a)
        stack.push_async_callback(_stop, proc)

        requests = [
            trades_request(a.subsystem, b.subsystem, query_id=f"sig-{i}")
            for i in range(IN_FLIGHT)
        ]

        async def call(body: bytes) -> tuple[int, bytes]:
            async with http.post(
                a.client_proxy_url,
                data=body,
                headers={"Content-Type": "text/xml; charset=UTF-8"},
            ) as resp:
                return resp.status, await resp.read()

        calls = [asyncio.create_task(call(body)) for body in requests]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while len(stub.received) < IN_FLIGHT:  # all of them at the service
            assert loop.time() < deadline, len(stub.received)
            assert not any(c.done() for c in calls), [c.result() for c in calls]
            await asyncio.sleep(0.02)
        proc.send_signal(signum)

        answers = await asyncio.gather(*calls)
        code = await asyncio.wait_for(proc.wait(), 40)
        assert proc.stderr is not None
        log = (await proc.stderr.read()).decode(errors="replace")

    # Every request under way was answered in full, with its requestHash.
    for body, (status, answer) in zip(requests, answers, strict=True):
        assert status == 200, answer[:500]
        assert b"Fault" not in answer, answer[:500]
        assert compute_request_hash(body).encode() in answer
    assert code == 0, log[-2000:]
    assert f"{signum.name} received: stopping" in log, log[-2000:]
    assert "security_server.serve: stopped" in log, log[-2000:]
    assert "Traceback" not in log, log[-3000:]
    # Their records were committed before the answers (both directions).
    logged = _logged(a)
    for i in range(IN_FLIGHT):
        assert (f"sig-{i}", "request") in logged, logged
        assert (f"sig-{i}", "response") in logged, logged
    # Nothing listens any more.
    assert await _refused(a.config.client_proxy.http_port)
    assert await _refused(a.config.server_proxy.port)
