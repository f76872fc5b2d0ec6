"""The live OCSP responder (`jplink ca serve`) checked by independent clients.

A CA home is created, a certificate issued and later revoked with the CA CLI,
and the server runs as a real process on free loopback ports. ``openssl ocsp``
is the client for the status checks; plain HTTP (urllib) sends the GET form
and the bad input.
"""

from __future__ import annotations

import base64
import datetime as dt
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ca_tsa.home import init_ca_home, load_ca_material
from jplink.security.certs import CertProfile, MemberSubject, build_subject_name
from jplink.security.ocsp import (
    OcspCertStatus,
    OcspResponseStatus,
    build_ocsp_request,
    parse_ocsp_response,
    verify_ocsp_response,
)
from tests.conftest import require_tool
from tests.support.ports import free_port as _free_port

pytestmark = [pytest.mark.slow, pytest.mark.openssl]

JPLINK = [sys.executable, "-m", "jplink.cli"]


@dataclass
class LiveCa:
    home: Path
    url: str
    ca: x509.Certificate
    leaf: x509.Certificate
    process: subprocess.Popen[bytes]
    log: Path

    def post(self, body: bytes, content_type: str = "application/ocsp-request"):
        request = urllib.request.Request(
            self.url, data=body, headers={"Content-Type": content_type}
        )
        return _fetch(request)

    def revoke(self) -> None:
        subprocess.run(
            [*JPLINK, "ca", "revoke", "--home", str(self.home),
             "--serial", f"{self.leaf.serial_number:x}", "--reason", "keyCompromise"],
            check=True, capture_output=True,
        )  # fmt: skip


def _fetch(request: urllib.request.Request | str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("jplink ca serve exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("jplink ca serve did not start")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCa]:
    require_tool("openssl")
    home = tmp_path_factory.mktemp("ca")
    port = _free_port()
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    config = init_ca_home(home, api_port=port, tsa_port=_free_port(), now=now)
    material = load_ca_material(config)
    subject = MemberSubject("JP", "COM", "1234", "Test Org")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(build_subject_name(CertProfile.SIGN, subject))
        .sign(key, hashes.SHA256())
    )
    (home / "leaf.csr").write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    subprocess.run(
        [*JPLINK, "ca", "issue", "--home", str(home), "--csr", str(home / "leaf.csr"),
         "--profile", "sign", "--instance", "JP", "--member-class", "COM",
         "--member-code", "1234", "--member-name", "Test Org",
         "--out", str(home / "leaf.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    leaf = x509.load_pem_x509_certificate((home / "leaf.pem").read_bytes())
    (home / "issuer.pem").write_bytes(
        material.ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    log = home / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*JPLINK, "ca", "serve", "--home", str(home)], stdout=sink, stderr=sink
        )
    try:
        _wait_for(port, process)
        yield LiveCa(
            home, f"http://127.0.0.1:{port}/ocsp", material.ca_cert, leaf, process, log
        )
    finally:
        process.terminate()
        process.wait(timeout=20)


def _openssl(live: LiveCa, *extra: str) -> str:
    # Options such as -sha256 and -no_nonce must come before -cert.
    out = subprocess.run(
        [require_tool("openssl"), "ocsp", *extra,
         "-issuer", str(live.home / "issuer.pem"),
         "-cert", str(live.home / "leaf.pem"), "-url", live.url,
         "-CAfile", str(live.home / "certs" / "root.pem"), "-resp_text"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return out.stdout + out.stderr


def _status_line(output: str) -> str:
    return next(line for line in output.splitlines() if "leaf.pem:" in line)


@pytest.mark.parametrize("digest", ["-sha1", "-sha256"])
def test_1_openssl_sees_good_with_nonce(live: LiveCa, digest: str) -> None:
    output = _openssl(live, digest)
    assert "Response verify OK" in output
    assert _status_line(output).endswith("good")
    assert "WARNING: no nonce" not in output and "Nonce Verify error" not in output
    assert "OCSP Nonce" in output  # echoed in the response


def test_2_get_form(live: LiveCa) -> None:
    der = build_ocsp_request(live.leaf, live.ca)
    path = urllib.parse.quote(base64.b64encode(der).decode(), safe="")
    status, content_type, body = _fetch(f"{live.url}/{path}")
    assert (status, content_type) == (200, "application/ocsp-response")
    now = dt.datetime.now(dt.UTC)
    verified = verify_ocsp_response(
        body, cert=live.leaf, issuer=live.ca, now=now, max_age=dt.timedelta(minutes=5)
    )
    assert verified.status is OcspCertStatus.GOOD
    # Unescaped base64 ('/' and '+' left as they are) is accepted too.
    status, _, body = _fetch(f"{live.url}/{base64.b64encode(der).decode()}")
    assert parse_ocsp_response(body).response_status is OcspResponseStatus.SUCCESSFUL


def _unknown_hash_request(live: LiveCa) -> bytes:
    der = build_ocsp_request(live.leaf, live.ca, hash_algorithm=hashes.SHA1())
    sha1_oid = bytes.fromhex("06052b0e03021a")
    return der.replace(sha1_oid, bytes.fromhex("06052b0e03021b"))


def _foreign_request() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Foreign CA")])
    now = dt.datetime.now(dt.UTC)
    foreign = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return build_ocsp_request(foreign, foreign)


MALFORMED = OcspResponseStatus.MALFORMED_REQUEST


def _request(live: LiveCa) -> bytes:
    return build_ocsp_request(live.leaf, live.ca)


BAD_INPUT = [
    ("garbage", lambda live: live.post(b"garbage, not DER"), 200, MALFORMED),
    ("truncated DER", lambda live: live.post(_request(live)[:-3]), 200, MALFORMED),
    (
        "wrong content type",
        lambda live: live.post(_request(live), "text/plain"),
        200,
        MALFORMED,
    ),
    (
        "unknown hash OID",
        lambda live: live.post(_unknown_hash_request(live)),
        200,
        MALFORMED,
    ),
    ("oversized body", lambda live: live.post(b"\x30" * 20000), 413, MALFORMED),
    (
        "bad GET base64",
        lambda live: _fetch(f"{live.url}/%%%not-base64"),
        200,
        MALFORMED,
    ),
    (
        "foreign issuer",
        lambda live: live.post(_foreign_request()),
        200,
        OcspResponseStatus.UNAUTHORIZED,
    ),
]


@pytest.mark.parametrize(
    ("send", "http_status", "expected"),
    [case[1:] for case in BAD_INPUT],
    ids=[case[0] for case in BAD_INPUT],
)
def test_3_bad_input_gets_error_response(
    live: LiveCa, send, http_status, expected
) -> None:
    status, content_type, body = send(live)
    assert (status, content_type) == (http_status, "application/ocsp-response")
    assert parse_ocsp_response(body).response_status is expected
    # ... and the server keeps serving.
    assert _status_line(_openssl(live, "-no_nonce")).endswith("good")


def test_4_unknown_serial(live: LiveCa) -> None:
    other_key = ec.generate_private_key(ec.SECP256R1())
    stranger = (
        x509.CertificateBuilder()
        .subject_name(live.leaf.subject)
        .issuer_name(live.ca.subject)
        .public_key(other_key.public_key())
        .serial_number(12345)
        .not_valid_before(live.leaf.not_valid_before_utc)
        .not_valid_after(live.leaf.not_valid_after_utc)
        .sign(other_key, hashes.SHA256())  # not really issued: a bad signature
    )
    _, _, body = live.post(build_ocsp_request(stranger, live.ca))
    (single,) = parse_ocsp_response(body).responses
    assert single.status is OcspCertStatus.UNKNOWN


@pytest.mark.parametrize("digest", ["-sha1", "-sha256"])
def test_5_revoked_after_revocation(live: LiveCa, digest: str) -> None:
    if digest == "-sha1":
        live.revoke()
    output = _openssl(live, digest)
    assert "Response verify OK" in output
    assert _status_line(output).endswith("revoked")
    assert "Reason: keyCompromise" in output


def test_6_no_traceback_in_server_log(live: LiveCa) -> None:
    assert live.process.poll() is None
    assert "Traceback" not in live.log.read_text(errors="replace")
