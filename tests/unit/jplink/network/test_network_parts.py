"""The network's parts without a network: ports, state, processes, exchange check."""

from __future__ import annotations

import base64
import hashlib
import http.server
import ipaddress
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jplink.errors import (
    ConfigurationError,
    Conflict,
    InvalidSignature,
    RemoteProtocolError,
    TransportError,
)
from jplink.network.exchange import demo_request, exchange
from jplink.network.processes import group_alive, stop_process
from jplink.network.state import (
    EPHEMERAL_FIRST,
    PORT_NAMES,
    NetworkState,
    ProcessRecord,
    allocate_addresses,
    allocate_ports,
    load_state,
    save_state,
)
from jplink.network.up import network_down, network_status, network_up
from jplink.protocol.soap import MessageRole, parse_soap_message
from tests.support.ports import free_port


def test_ports_are_free_distinct_and_below_the_ephemeral_range() -> None:
    base = free_port()
    with socket.socket() as held:  # a port in use is skipped
        held.bind(("127.0.0.1", base))
        held.listen()
        ports = allocate_ports(base)
    assert set(ports) == set(PORT_NAMES)
    assert base not in ports.values()
    assert len(set(ports.values())) == len(ports)
    assert all(base < p < EPHEMERAL_FIRST for p in ports.values())


@pytest.mark.parametrize("base", [80, EPHEMERAL_FIRST - 3])
def test_ports_refused_when_privileged_or_too_close_to_the_ephemeral_range(
    base: int,
) -> None:
    with pytest.raises(ConfigurationError):
        allocate_ports(base)


def test_each_security_server_gets_its_own_loopback_address() -> None:
    one = allocate_addresses(14000, ("mgmt", "a", "b"))
    other = allocate_addresses(20000, ("mgmt", "a", "b"))
    assert len(set(one.values())) == 3
    assert all(ipaddress.ip_address(a).is_loopback for a in one.values())
    assert set(one.values()).isdisjoint(other.values())


def test_state_round_trips_and_garbage_is_refused(tmp_path: Path) -> None:
    assert load_state(tmp_path) is None
    record = ProcessRecord("ca", 123, 123, "/x/ca.log", ("python", "-m", "jplink.cli"))
    state = NetworkState(
        str(tmp_path), "", {"ca_api": 14000}, {"a": "127.1.1.2"}, (record,)
    )
    save_state(state)
    assert load_state(tmp_path) == state
    (tmp_path / "network.json").write_text(json.dumps({"directory": 1}))
    with pytest.raises(ConfigurationError, match="not a network description"):
        load_state(tmp_path)


@pytest.fixture
def stubborn_group() -> Iterator[ProcessRecord]:
    """A process group whose members ignore SIGTERM."""
    proc = subprocess.Popen(
        ["sh", "-c", 'trap "" TERM; sleep 60 & sleep 60 & wait'],
        start_new_session=True,
    )
    deadline = time.monotonic() + 5
    while len(group_alive(proc.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    yield ProcessRecord("stub", proc.pid, proc.pid, "/dev/null", ("sh",))
    stop_process(ProcessRecord("stub", proc.pid, proc.pid, "", ()), timeout=0.1)
    proc.wait(timeout=5)


def test_stop_kills_a_group_that_ignores_sigterm(stubborn_group: ProcessRecord) -> None:
    assert len(group_alive(stubborn_group.pgid)) == 3
    assert stop_process(stubborn_group, timeout=0.5) is True
    assert group_alive(stubborn_group.pgid) == []


def test_up_refuses_a_directory_with_a_running_network(
    tmp_path: Path, stubborn_group: ProcessRecord
) -> None:
    save_state(NetworkState(str(tmp_path), "", {}, {}, (stubborn_group,)))
    with pytest.raises(Conflict, match="network down"):
        network_up(tmp_path, base_port=free_port(), echo=lambda _: None)
    assert network_status(tmp_path)["running"] is True
    network_down(tmp_path, echo=lambda _: None)
    assert group_alive(stubborn_group.pgid) == []
    assert network_status(tmp_path)["status"] == "stopped"


def test_up_refuses_a_non_empty_directory_and_down_needs_a_network(
    tmp_path: Path,
) -> None:
    (tmp_path / "something").write_text("x")
    with pytest.raises(Conflict, match="not empty"):
        network_up(tmp_path, base_port=free_port(), echo=lambda _: None)
    with pytest.raises(Conflict, match="No network"):
        network_down(tmp_path)


def test_the_demo_request_is_a_valid_x_road_request() -> None:
    data = demo_request("http://jplink.example/adapter/data", query_id="q-1")
    message = parse_soap_message(
        data, content_type="text/xml; charset=UTF-8", role=MessageRole.REQUEST
    )
    assert message.header.id == "q-1"
    assert str(message.header.client) == "SUBSYSTEM:JP/COM/1111/client"
    assert message.header.service.service_code == "municipalityByCode"


class _Answer(http.server.BaseHTTPRequestHandler):
    reply: bytes = b""
    status: int = 200

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(self.status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(self.reply)))
        self.end_headers()
        self.wfile.write(self.reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[tuple[str, type[_Answer]]]:
    handler = type("Handler", (_Answer,), {})
    server = http.server.HTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/", handler
    server.shutdown()
    server.server_close()


_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


def _response(request_hash: str) -> bytes:
    return (
        f'<e:Envelope xmlns:e="{_ENV}" xmlns:x="http://x-road.eu/xsd/xroad.xsd">'
        f"<e:Header><x:requestHash>{request_hash}</x:requestHash></e:Header>"
        "<e:Body><r/></e:Body></e:Envelope>"
    ).encode()


def test_exchange_accepts_only_the_request_hash_of_what_was_sent(
    answering: tuple[str, type[_Answer]],
) -> None:
    url, handler = answering
    request = demo_request("urn:x")
    good = base64.b64encode(hashlib.sha512(request).digest()).decode()
    handler.reply = _response(good)
    assert exchange(url, request).request_hash == good
    other = base64.b64encode(hashlib.sha512(request + b" ").digest()).decode()
    handler.reply = _response(other)
    with pytest.raises(InvalidSignature) as err:
        exchange(url, request)
    assert err.value.code == "InconsistentResponse"


def test_exchange_reports_a_fault_and_an_unreachable_proxy(
    answering: tuple[str, type[_Answer]],
) -> None:
    url, handler = answering
    handler.status = 500
    handler.reply = (
        f'<e:Envelope xmlns:e="{_ENV}"><e:Body><e:Fault>'
        "<faultcode>Server.ClientProxy.UnknownMember</faultcode>"
        "<faultstring>no</faultstring></e:Fault></e:Body></e:Envelope>"
    ).encode()
    with pytest.raises(RemoteProtocolError, match="UnknownMember"):
        exchange(url, demo_request("urn:x"))
    with pytest.raises(TransportError):
        exchange(f"http://127.0.0.1:{free_port()}/", demo_request("urn:x"))


@pytest.mark.parametrize("keep", [False, True])
def test_a_failed_step_names_itself_and_stops_what_was_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep: bool
) -> None:
    import jplink.network.up as up_module
    from jplink.errors import ProcessFailed
    from jplink.network.context import NetworkContext

    started: list[ProcessRecord] = []

    def steps(ctx: NetworkContext) -> list[tuple[str, Callable[[], None]]]:
        def start() -> None:
            proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
            record = ProcessRecord("sleeper", proc.pid, proc.pid, "/dev/null", ())
            started.append(record)
            ctx.update(processes=(*ctx.state.processes, record))

        def fail() -> None:
            raise TransportError("GET http://x/ failed: refused", url="http://x/")

        return [("start a server", start), ("call it", fail)]

    monkeypatch.setattr(up_module, "_steps", steps)
    lines: list[str] = []
    directory = tmp_path / "net"
    with pytest.raises(ProcessFailed) as err:
        network_up(
            directory, base_port=free_port(), keep_on_failure=keep, echo=lines.append
        )
    assert err.value.detail["step"] == "call it"
    assert "NetworkError" in err.value.message
    assert err.value.log == str(directory.resolve() / "logs" / "onboarding.log")
    assert any(line.startswith("[ 2/2] call it") for line in lines)
    alive = bool(group_alive(started[0].pgid))
    assert alive is keep
    assert network_status(directory)["status"].startswith("failed")
    if keep:
        network_down(directory, echo=lines.append)
        assert group_alive(started[0].pgid) == []
