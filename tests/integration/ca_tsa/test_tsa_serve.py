"""`jplink ca serve --workers 2` as a real process: curl in, openssl judges.

Two worker processes share the TSA port and the serial counter; the serials
they hand out must be unique, also after the server is restarted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest

from ca_tsa.home import init_ca_home, load_ca_material
from jplink.security.tsp import build_timestamp_request, verify_timestamp_response
from tests.conftest import require_tool
from tests.support.ports import free_port as _free_port

pytestmark = [pytest.mark.slow, pytest.mark.openssl]

REPO = Path(__file__).resolve().parents[3]


@contextmanager
def serving(home: Path, port: int) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "jplink.cli", "ca", "serve", "--home", str(home),
         "--workers", "2"],
        cwd=REPO, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "jplink ca serve exited early"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "TSA did not start"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


async def _issue(url: str, root, count: int) -> list[int]:
    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> int:
            request = build_timestamp_request(f"doc {i}".encode(), nonce=i + 1)
            async with session.post(
                url,
                data=request.der,
                headers={"Content-Type": "application/timestamp-query"},
            ) as resp:
                body = await resp.read()
            return verify_timestamp_response(
                body, request=request, trusted_tsa_certs=[root]
            ).serial

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def test_two_workers_unique_serials_across_restart_and_curl(tmp_path: Path) -> None:
    curl = require_tool("curl")
    openssl = require_tool("openssl")
    port = _free_port()
    config = init_ca_home(
        tmp_path / "ca",
        api_port=_free_port(),
        tsa_port=port,
        now=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
    )
    root = load_ca_material(config).root_cert
    data = tmp_path / "data.txt"
    data.write_text("curl me a time-stamp\n")
    serials: list[int] = []
    with serving(config.home, port) as url:
        serials += asyncio.run(_issue(url, root, 60))
        subprocess.run(
            [openssl, "ts", "-query", "-data", str(data), "-sha512", "-cert",
             "-out", str(tmp_path / "q.tsq")], check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            [curl, "-sS", "--fail", "-H", "Content-Type: application/timestamp-query",
             "--data-binary", f"@{tmp_path / 'q.tsq'}", "-o", str(tmp_path / "r.tsr"),
             url + "tsa"], check=True, capture_output=True,
        )  # fmt: skip
    verified = subprocess.run(
        [openssl, "ts", "-verify", "-data", str(data), "-in", str(tmp_path / "r.tsr"),
         "-CAfile", str(config.home / "certs" / "root.pem")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "Verification: OK" in verified.stdout, verified.stderr
    with serving(config.home, port) as url:
        after = asyncio.run(_issue(url, root, 60))
    assert len(set(serials)) == len(serials) == 60
    assert len(set(serials + after)) == 120
    assert min(after) > max(serials)
