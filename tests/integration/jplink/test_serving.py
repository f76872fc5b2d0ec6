"""jplink.serving as a real process: forked workers share a port, SIGTERM stops all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from jplink.serving import run_workers
from tests.support.ports import free_port as _free_port

ROOT = Path(__file__).resolve().parents[3]

_SERVER = textwrap.dedent(
    """
    import os, sys
    from aiohttp import web
    from jplink.serving import Site, run_workers

    port, marker, workers = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

    def make_app():
        async def pid(request):
            return web.Response(text=str(os.getpid()))
        app = web.Application()
        app.router.add_get("/", pid)
        return app

    async def prepare():
        with open(marker, "a") as fh:
            fh.write(f"{os.getpid()}\\n")

    site = Site("test", make_app, "127.0.0.1", port)
    sys.exit(run_workers([site], workers=workers, prepare=prepare))
    """
)


def _start(tmp_path: Path, port: int, workers: int) -> subprocess.Popen[str]:
    script = tmp_path / "server.py"
    script.write_text(_SERVER)
    return subprocess.Popen(
        [
            sys.executable,
            str(script),
            str(port),
            str(tmp_path / "marker"),
            str(workers),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _get(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as resp:
            return int(resp.read())
    except OSError:
        return None


def test_workers_share_the_port_and_stop_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    proc = _start(tmp_path, port, workers=2)
    try:
        pids: set[int] = set()
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0]
            pid = _get(port)  # a new connection each time: the kernel spreads them
            if pid is None:
                time.sleep(0.1)
            else:
                pids.add(pid)
        assert len(pids) == 2, pids
        assert proc.pid not in pids  # the parent only supervises
        # The start-up work ran once, in the parent, before the fork.
        assert (tmp_path / "marker").read_text().split() == [str(proc.pid)]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.communicate()[0]
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_worker_that_cannot_bind_fails_the_whole_server(tmp_path: Path) -> None:
    with socket.socket() as taken:  # listening without SO_REUSEPORT
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        proc = _start(tmp_path, port, workers=2)
        try:
            assert proc.wait(timeout=60) == 1
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "worker" in (proc.stdout.read() if proc.stdout else "")


def test_workers_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        run_workers([], workers=0)
