"""``jplink adapter serve`` as a real process, called with curl (SOAP, REST, admin)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import require_tool
from tests.support.ports import free_port as _free_port

pytestmark = pytest.mark.slow

JPLINK = str(Path(sys.executable).parent / "jplink")
NS = "http://jplink.example/adapter/MUNICIPALITY"

REQUEST = """<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:xrd="http://x-road.eu/xsd/xroad.xsd" xmlns:id="http://x-road.eu/xsd/identifiers"
 xmlns:m="http://jplink.example/adapter/MUNICIPALITY"><SOAP-ENV:Header>
<xrd:client id:objectType="SUBSYSTEM"><id:xRoadInstance>JP</id:xRoadInstance>
<id:memberClass>COM</id:memberClass><id:memberCode>1111</id:memberCode>
<id:subsystemCode>CLIENT</id:subsystemCode></xrd:client>
<xrd:service id:objectType="SERVICE"><id:xRoadInstance>JP</id:xRoadInstance>
<id:memberClass>GOV</id:memberClass><id:memberCode>2222</id:memberCode>
<id:subsystemCode>MUNICIPALITY</id:subsystemCode>
<id:serviceCode>municipalityByCode</id:serviceCode>
<id:serviceVersion>v1</id:serviceVersion></xrd:service>
<xrd:id>curl-1</xrd:id><xrd:userId>JP:tester</xrd:userId>
<xrd:protocolVersion>4.0</xrd:protocolVersion></SOAP-ENV:Header>
<SOAP-ENV:Body><m:municipalityByCode><m:code>131016</m:code></m:municipalityByCode>
</SOAP-ENV:Body></SOAP-ENV:Envelope>"""


def _jplink(*args: str) -> str:
    done = subprocess.run(
        [JPLINK, "adapter", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server did not start listening")


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
def served(request, tmp_path) -> Iterator[tuple[int, str]]:
    if not Path(JPLINK).exists():
        pytest.fail(f"{JPLINK} is missing: run .venv/bin/pip install -e .")
    home, port = str(tmp_path / "adapter"), _free_port()
    key = _jplink("init", "--home", home, "--port", str(port)).splitlines()[-1]
    _jplink("sample", "--home", home)
    proc = subprocess.Popen(
        [JPLINK, "adapter", "serve", "--home", home, "--workers", str(request.param)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_listening(port, proc)
        yield port, key
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert code == 0, proc.stderr.read().decode() if proc.stderr else code


def _curl(*args: str) -> bytes:
    curl = require_tool("curl")
    done = subprocess.run([curl, "-sS", *args], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_curl_soap_call_against_the_served_sample(served):
    port, _ = served
    out = _curl(
        "-H", "Content-Type: text/xml; charset=utf-8", "--data-binary", REQUEST,
        f"http://127.0.0.1:{port}/soap",
    )  # fmt: skip
    doc = etree.fromstring(out)
    row = doc.find(f".//{{{NS}}}municipalityByCodeResponse/{{{NS}}}row")
    assert row is not None, out
    values = {etree.QName(c).localname: c.text for c in row}
    assert values["name"] == "千代田区"
    assert values["prefecture"] == "東京都"
    assert values["population"] == "66680"
    assert values["area_km2"] == "11.66"
    xrd = "{http://x-road.eu/xsd/xroad.xsd}"
    assert doc.findtext(f".//{xrd}id") == "curl-1"
    assert doc.findtext(f".//{xrd}userId") == "JP:tester"


def test_curl_rest_wsdl_and_admin(served):
    port, key = served
    base = f"http://127.0.0.1:{port}"
    rest = json.loads(
        _curl(
            "-H",
            "Content-Type: application/json",
            "--data",
            '{"prefecture": "大阪府", "minPopulation": 300000}',
            f"{base}/rest/municipalitiesByPrefecture",
        )
    )
    assert [r["name"] for r in rest["rows"]] == ["大阪市", "堺市"]
    wsdl = etree.fromstring(_curl(f"{base}/wsdl/MUNICIPALITY"))
    ops = wsdl.findall(".//{http://schemas.xmlsoap.org/wsdl/}portType/*")
    assert sorted(o.get("name") for o in ops) == [
        "municipalitiesByPrefecture",
        "municipalityByCode",
    ]
    status = _curl("-o", "/dev/null", "-w", "%{http_code}", f"{base}/api/v1/services")
    assert status == b"401"
    services = json.loads(
        _curl("-H", f"Authorization: Bearer {key}", f"{base}/api/v1/services")
    )
    assert len(services) == 2
