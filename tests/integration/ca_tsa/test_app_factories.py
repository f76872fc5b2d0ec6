"""make_app / make_tsa_app wired together: issue over the API, then ask OCSP and the TSA
with the openssl command-line tool as the independent client."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ca_tsa.app import make_app, make_tsa_app
from ca_tsa.config import CaTsaConfig
from ca_tsa.home import init_ca_home, read_api_key
from tests.conftest import require_tool
from tests.support.pki import make_csr
from tests.support.ports import free_port as _free_port

MEMBER = {
    "instance": "JP",
    "member_class": "COM",
    "member_code": "1234",
    "member_name": "Acme",
}


async def _openssl(*args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        require_tool("openssl"),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


@pytest.fixture
def config(tmp_path: Path) -> CaTsaConfig:
    # Real time: openssl checks validity against the wall clock.
    return init_ca_home(
        tmp_path / "ca",
        intermediate=True,
        key_type="ec",
        now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1),
    )


async def test_issue_then_ocsp_good_then_revoked(
    aiohttp_client: Any, config: CaTsaConfig, tmp_path: Path
) -> None:
    client: TestClient[web.Request, web.Application] = await aiohttp_client(
        make_app(config)
    )
    key = rsa.generate_private_key(65537, 2048)
    csr = make_csr(key, x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "1234")]))
    auth = {"Authorization": f"Bearer {read_api_key(config)}"}
    resp = await client.post(
        "/api/v1/certificates",
        json={"csr": csr.decode(), "profile": "sign", **MEMBER},
        headers=auth,
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    ee = tmp_path / "ee.pem"
    ee.write_text(body["certificate"])
    certs = config.home / "certs"
    url = str(client.make_url("/ocsp"))

    def ocsp_args() -> list[str]:
        return [
            "ocsp",
            "-issuer",
            str(certs / "intermediate.pem"),
            "-cert",
            str(ee),
            "-url",
            url,
            "-CAfile",
            str(certs / "root.pem"),
            "-verify_other",
            str(certs / "intermediate.pem"),
        ]

    code, out = await _openssl(*ocsp_args())
    assert code == 0, out
    assert "Response verify OK" in out
    assert f"{ee}: good" in out

    resp = await client.post(
        f"/api/v1/certificates/{body['serial']}/revoke",
        json={"reason": "keyCompromise"},
        headers=auth,
    )
    assert resp.status == 200
    code, out = await _openssl(*ocsp_args())
    assert code == 0, out
    assert f"{ee}: revoked" in out
    assert "Reason: keyCompromise" in out


async def test_tsa_app_answers_openssl(
    aiohttp_client: Any, config: CaTsaConfig, tmp_path: Path
) -> None:
    client: TestClient[web.Request, web.Application] = await aiohttp_client(
        make_tsa_app(config)
    )
    data = tmp_path / "data.bin"
    data.write_bytes(b"message log batch")
    query = tmp_path / "q.tsq"
    code, out = await _openssl(
        "ts", "-query", "-data", str(data), "-sha256", "-cert", "-out", str(query)
    )
    assert code == 0, out
    resp = await client.post(
        "/",
        data=query.read_bytes(),
        headers={"Content-Type": "application/timestamp-query"},
    )
    assert resp.status == 200
    reply = tmp_path / "r.tsr"
    reply.write_bytes(await resp.read())
    certs = config.home / "certs"
    chain = tmp_path / "chain.pem"
    chain.write_bytes((certs / "intermediate.pem").read_bytes())
    code, out = await _openssl(
        "ts",
        "-verify",
        "-data",
        str(data),
        "-in",
        str(reply),
        "-CAfile",
        str(certs / "root.pem"),
        "-untrusted",
        str(chain),
    )
    assert code == 0, out
    assert "Verification: OK" in out


@pytest.mark.slow
def test_serve_with_two_workers(tmp_path: Path) -> None:
    api_port, tsa_port = _free_port(), _free_port()
    home = tmp_path / "ca"
    init_ca_home(
        home,
        key_type="ec",
        api_port=api_port,
        tsa_port=tsa_port,
        now=dt.datetime.now(dt.UTC),
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jplink.cli",
            "ca",
            "serve",
            "--home",
            str(home),
            "--workers",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        body = b""
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{api_port}/api/v1/ca-certificates", timeout=2
                ) as r:
                    body = r.read()
                break
            except OSError:
                time.sleep(0.2)
        assert b"BEGIN CERTIFICATE" in body
        # The TSA listener is up as well (a garbage query gets a TSA rejection).
        req = urllib.request.Request(
            f"http://127.0.0.1:{tsa_port}/",
            data=b"x",
            headers={"Content-Type": "application/timestamp-query"},
        )
        status = 0
        while time.monotonic() < deadline and not status:
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    status = r.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                time.sleep(0.2)
        assert status in (200, 400)
        workers = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
        ).stdout.split()
        assert len(workers) == 2
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out.decode()
