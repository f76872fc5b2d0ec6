"""The whole network as processes: ``jplink network up``, onboarding, exchange, down.

``jplink network up`` runs as a subprocess in a temporary directory (short
intervals); the test then checks every onboarding step's result through the
components' own CLIs and HTTP APIs, calls the provider's service through
A's client proxy with zeep (a SOAP client sending the X-Road headers) and
with curl, checks that each answer's ``requestHash`` is the base64 SHA-512
of the bytes sent, and finally runs ``jplink network down`` and checks that
no process of the network is left (recorded pids, process groups, and the
process table searched for the network's directory).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.conftest import require_tool
from tests.support.ports import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.xdist_group("e2e"),
]

JPLINK = [sys.executable, "-m", "jplink.cli"]
NS_XROAD = "http://x-road.eu/xsd/xroad.xsd"
NS_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def _run(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [*JPLINK, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (
        f"jplink {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


def _json(*args: str) -> Any:
    return json.loads(_run(*args))


def _sha512_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha512(data).digest()).decode()


def _request_hash(response: bytes) -> str:
    root = etree.fromstring(response)
    found = root.findtext(f"{{{NS_ENV}}}Header/{{{NS_XROAD}}}requestHash")
    assert found, response[:500]
    return found.strip()


def _processes_mentioning(text: str) -> list[tuple[int, str]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if text in cmd and state != "Z":
            found.append((int(entry.name), cmd))
    return found


def _bring_up(directory: Path, *extra: str) -> Iterator[dict[str, Any]]:
    base = free_port()
    up = subprocess.run(
        [
            *JPLINK,
            "network",
            "up",
            "--dir",
            str(directory),
            "--base-port",
            str(base),
            "--refresh-seconds",
            "3",
            "--conf-expire-seconds",
            "600",
            "--wait-seconds",
            "90",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=840,
        check=False,
    )
    try:
        assert up.returncode == 0, f"up failed:\n{up.stdout}\n{up.stderr}"
        assert "JP-LINK network is up." in up.stdout
        state = json.loads((directory / "network.json").read_text())
        state["stdout"] = up.stdout
        yield state
    finally:
        if (directory / "network.json").exists():
            subprocess.run(
                [*JPLINK, "network", "down", "--dir", str(directory)],
                capture_output=True,
                timeout=120,
                check=False,
            )
        for pid, _ in _processes_mentioning(str(directory)):
            os.killpg(pid, signal.SIGKILL)  # never leave a stray server behind


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    yield from _bring_up(tmp_path_factory.mktemp("net") / "jplink-network")


def _home(state: dict[str, Any], name: str) -> str:
    return str(Path(state["directory"]) / name)


def _secret(state: dict[str, Any], name: str) -> str:
    return Path(state["secrets"][name]).read_text().strip()


def test_status_reports_every_process_running(network: dict[str, Any]) -> None:
    status = _json("network", "status", "--dir", network["directory"], "--json")
    assert status["status"] == "ready" and status["running"] is True
    names = {p["name"]: p for p in status["processes"]}
    assert set(names) == {"ca", "central", "adapter", "ss-mgmt", "ss-a", "ss-b"}
    assert all(p["running"] for p in names.values())
    ports = list(status["ports"].values())
    assert len(set(ports)) == len(ports)
    assert all(1024 <= p < 32768 for p in ports)  # below the ephemeral range
    assert len(set(status["addresses"].values())) == 3
    # A second `up` in the same directory is refused while it runs.
    again = subprocess.run(
        [*JPLINK, "network", "up", "--dir", network["directory"]],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode != 0 and "network down" in again.stderr


def test_member_requests_were_approved(network: dict[str, Any]) -> None:
    import urllib.request

    reg = network["urls"]["central_registration"]
    for key, request_id in network["facts"]["member_requests"].items():
        req = urllib.request.Request(
            f"{reg}member-requests/{request_id}",
            headers={
                "Authorization": f"Bearer {_secret(network, f'member-request-{key}')}"
            },
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            state = json.loads(resp.read())
        assert state["status"] == "approved"
    members = _json("central", "members", "list", "--home", _home(network, "central"))
    ids = json.dumps(members)
    for code in ("GOV/0000", "COM/1111", "COM/2222"):
        assert code in ids


def _get(url: str, key: str | None) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=10
        ) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, None


def test_admin_apis_answer_with_their_keys_only(network: dict[str, Any]) -> None:
    central = network["urls"]["central_admin_api"]
    officer = _secret(network, "central-registration-officer")
    status, requests = _get(f"{central}member-requests", officer)
    assert status == 200
    approved = {r["organisationName"]: r["status"] for r in requests["memberRequests"]}
    assert approved == {"Consumer Ltd": "approved", "Provider Ltd": "approved"}
    assert _get(f"{central}member-requests", None)[0] == 401
    for key in ("mgmt", "a", "b"):
        url = (
            network["urls"][f"ss_{key}_admin_api"] + "diagnostics/global-configuration"
        )
        status, conf = _get(url, _secret(network, f"ss-{key}-admin"))
        assert status == 200 and conf["expired"] is False
        assert conf["security_servers"] == 3
        assert _get(url, None)[0] == 401


def test_certificates_and_clients_are_registered(network: dict[str, Any]) -> None:
    subsystems = {
        "mgmt": "SUBSYSTEM:JP/GOV/0000/MANAGEMENT",
        "a": "SUBSYSTEM:JP/COM/1111/client",
        "b": "SUBSYSTEM:JP/COM/2222/data",
    }
    for key, subsystem in subsystems.items():
        home = _home(network, f"ss-{key}")
        certs = _json("ss", "certs", "list", "--home", home)
        auth = [c for c in certs if c["usage"] == "auth"]
        assert [c["status"] for c in auth] == ["registered"], certs
        assert auth[0]["sha256"] == network["facts"][f"ss_{key}_auth_cert"]
        clients = {
            c["client_id"]: c["state"]
            for c in _json("ss", "clients", "list", "--home", home)
        }
        assert clients[subsystem] == "registered"
        assert all(state == "registered" for state in clients.values()), clients
    servers = _json("central", "servers", "list", "--home", _home(network, "central"))
    assert len(servers) == 3
    requests = _json("central", "mgmt", "list", "--home", _home(network, "central"))
    kinds = sorted(r["type"] for r in requests if r["status"] == "approved")
    assert kinds == ["authCertReg"] * 3 + ["clientReg"] * 2, requests


def test_provider_imported_the_wsdl_and_granted_access(network: dict[str, Any]) -> None:
    home = _home(network, "ss-b")
    client = "SUBSYSTEM:JP/COM/2222/data"
    listed = json.dumps(_json("ss", "services", "list", client, "--home", home))
    for code in ("municipalityByCode", "municipalitiesByPrefecture"):
        assert code in listed
    assert network["urls"]["adapter_wsdl"] in listed
    rights = json.dumps(_json("ss", "acl", "list", client, "--home", home))
    assert "SUBSYSTEM:JP/COM/1111/client" in rights
    mgmt = json.dumps(
        _json(
            "ss",
            "acl",
            "list",
            "SUBSYSTEM:JP/GOV/0000/MANAGEMENT",
            "--home",
            _home(network, "ss-mgmt"),
        )
    )
    assert "GLOBALGROUP:JP/security-server-owners" in mgmt and "clientReg" in mgmt


def test_zeep_calls_the_service_through_a(network: dict[str, Any]) -> None:
    from zeep import Client
    from zeep.transports import Transport

    sent: list[bytes] = []
    received: list[bytes] = []

    class Recording(Transport):  # type: ignore[misc]
        def post(self, address: str, message: bytes, headers: dict[str, str]) -> Any:
            sent.append(message)
            response = super().post(address, message, headers)  # type: ignore[no-untyped-call]
            received.append(response.content)
            return response

    transport = Recording()  # type: ignore[no-untyped-call]
    client = Client(network["urls"]["adapter_wsdl"], transport=transport)  # type: ignore[no-untyped-call]
    binding = next(iter(client.wsdl.bindings))
    address = network["urls"]["ss_a_client_proxy"]
    service = client.create_service(binding, address)  # type: ignore[no-untyped-call]
    header = {
        "client": {
            "objectType": "SUBSYSTEM",
            "xRoadInstance": "JP",
            "memberClass": "COM",
            "memberCode": "1111",
            "subsystemCode": "client",
        },
        "service": {
            "objectType": "SERVICE",
            "xRoadInstance": "JP",
            "memberClass": "COM",
            "memberCode": "2222",
            "subsystemCode": "data",
            "serviceCode": "municipalityByCode",
            "serviceVersion": "v1",
        },
        "id": str(uuid.uuid4()),
        "userId": "e2e",
        "protocolVersion": "4.0",
    }
    answer = service.municipalityByCode(code="131016", _soapheaders=header)
    rows = answer["body"]["row"]
    assert rows[0]["name"] == "千代田区" and rows[0]["prefecture"] == "東京都"
    assert len(sent) == 1
    assert _request_hash(received[0]) == _sha512_b64(sent[0])


def test_curl_calls_the_service_through_a(network: dict[str, Any]) -> None:
    curl = require_tool("curl")
    request_file = Path(network["facts"]["first_exchange"]["request_file"])
    assert f"--data-binary @{request_file}" in network["stdout"]
    done = subprocess.run(
        [
            curl,
            "-s",
            "-f",
            "-H",
            "Content-Type: text/xml; charset=UTF-8",
            "--data-binary",
            f"@{request_file}",
            network["urls"]["ss_a_client_proxy"],
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert "千代田区".encode() in done.stdout
    assert _request_hash(done.stdout) == _sha512_b64(request_file.read_bytes())


def test_z_down_leaves_no_process(network: dict[str, Any]) -> None:
    directory = network["directory"]
    pids = [p["pid"] for p in network["processes"]]
    assert all(Path(f"/proc/{pid}").exists() for pid in pids)
    _run("network", "down", "--dir", directory)
    for pid in pids:
        if Path(f"/proc/{pid}/stat").exists():
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
            assert state == "Z", f"pid {pid} still runs"
    assert _processes_mentioning(directory) == []
    status = _json("network", "status", "--dir", directory, "--json")
    assert status["running"] is False and status["status"] == "stopped"
    assert not any(p["running"] for p in status["processes"])


@pytest.mark.postgres
def test_the_same_network_runs_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    curl = require_tool("curl")
    directory = tmp_path / "jplink-network"
    for state in _bring_up(directory, "--database", pg_url):
        databases = state["facts"]["databases"]
        assert set(databases) == {"ca", "central", "adapter", "ss-mgmt", "ss-a", "ss-b"}
        assert all(url.startswith("postgresql://") for url in databases.values())
        toml = (directory / "ss-a" / "ss.toml").read_text()
        assert f'database_url = "{databases["ss-a"]}"' in toml
        # No component keeps a SQLite store (sample.db is the adapter's data).
        stores = [p for p in directory.glob("*/*.db") if p.name != "sample.db"]
        assert stores == []
        request_file = Path(state["facts"]["first_exchange"]["request_file"])
        done = subprocess.run(
            [curl, "-s", "-f", "-H", "Content-Type: text/xml; charset=UTF-8",
             "--data-binary", f"@{request_file}", state["urls"]["ss_a_client_proxy"]],
            capture_output=True, timeout=60, check=True,
        )  # fmt: skip
        assert _request_hash(done.stdout) == _sha512_b64(request_file.read_bytes())
        _run("network", "down", "--dir", str(directory))
        assert _processes_mentioning(str(directory)) == []
