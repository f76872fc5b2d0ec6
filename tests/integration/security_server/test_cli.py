"""``jplink ss ...`` end to end with CliRunner, checked with openssl.

The flow an operator follows: init -> token init -> keys generate -> csr ->
the CA signs -> certs import -> clients add -> services from a WSDL file ->
acl grant -> list. SQLite only (the service layer runs on both databases).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jplink.cli import root
from jplink.security.certs import (
    CertProfile,
    MemberSubject,
    build_end_entity_certificate,
    random_serial_number,
    verify_csr,
    verify_csr_subject,
)
from tests.conftest import require_tool
from tests.support.pki import TestPki, build_test_pki

from .helpers import make_anchor, make_wsdl

PIN = "cli pin 12345"
OWNER = "MEMBER:JP-TEST/COM/1111"
SUB = "SUBSYSTEM:JP-TEST/COM/1111/client"
CONSUMER = "SUBSYSTEM:JP-TEST/COM/2222/app"


class Ss:
    """Runs ``jplink ss ...`` against one home."""

    def __init__(self, home: Path, pin_file: Path) -> None:
        self.home, self.pin_file = home, pin_file
        self.runner = CliRunner()

    def __call__(
        self, *args: str, ok: bool = True, pin: bool = False, input: str | None = None
    ) -> Result:
        argv = ["ss", *args, "--home", str(self.home)]
        if pin:
            argv += ["--pin-file", str(self.pin_file)]
        result = self.runner.invoke(root, argv, input=input)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args).output)


def _sign(
    pki: TestPki, csr_pem: bytes, profile: CertProfile, subject: MemberSubject
) -> bytes:
    checked = verify_csr(csr_pem)
    name = verify_csr_subject(checked.csr, profile, subject)
    cert = build_end_entity_certificate(
        checked,
        name,
        profile,
        pki.issuing,
        serial=random_serial_number(),
        ocsp_url=pki.ocsp_url,
        now=pki.now,
        validity=dt.timedelta(days=365),
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def ss(tmp_path: Path) -> Ss:
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    return Ss(tmp_path / "home", pin_file)


def test_operator_flow(ss: Ss, tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    wall = dt.datetime.now(dt.UTC)
    anchor = tmp_path / "anchor.xml"
    anchor.write_bytes(make_anchor(wall))
    out = ss(
        "init",
        "--anchor",
        str(anchor),
        "--owner",
        OWNER,
        "--owner-name",
        "Consumer Ltd",
        "--server-code",
        "ss1",
    ).output
    assert "SERVER:JP-TEST/COM/1111/ss1" in out
    assert (ss.home / "ss.toml").is_file()

    # PIN prompted twice, hidden.
    ss("token", "init", input=f"{PIN}\n{PIN}\n")
    ss("token", "login", pin=True)
    auth_id = ss("keys", "generate", "--usage", "auth", pin=True).output.strip()
    sign_id = ss(
        "keys",
        "generate",
        "--usage",
        "sign",
        "--member",
        OWNER,
        "--type",
        "ec",
        pin=True,
    ).output.strip()
    listed = ss.json("keys", "list")
    assert [k["key_id"] for k in listed] == [auth_id, sign_id]

    pki = build_test_pki(wall - dt.timedelta(minutes=5))
    cert_files = {}
    for key_id, profile, server_code in (
        (auth_id, CertProfile.AUTH, "ss1"),
        (sign_id, CertProfile.SIGN, None),
    ):
        csr_file = tmp_path / f"{profile.value}.csr"
        ss("csr", "create", key_id, "--out", str(csr_file), pin=True)
        # An independent tool checks the CSR's self-signature.
        verified = subprocess.run(
            [openssl, "req", "-in", str(csr_file), "-verify", "-noout"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert verified.returncode == 0, verified.stderr
        assert "verify OK" in verified.stdout + verified.stderr
        subject = MemberSubject("JP-TEST", "COM", "1111", "Consumer Ltd", server_code)
        cert_file = tmp_path / f"{profile.value}.pem"
        cert_file.write_bytes(_sign(pki, csr_file.read_bytes(), profile, subject))
        cert_files[profile] = cert_file
        ss("certs", "import", str(cert_file))
    certs = ss.json("certs", "list")
    assert {c["usage"] for c in certs} == {"auth", "sign"}
    first = certs[0]["sha256"]
    ss("certs", "disable", first[:12])
    assert ss.json("certs", "list")[0]["active"] is False
    ss("certs", "activate", first[:12])

    # The key files are encrypted PKCS#8 that openssl opens with the PIN only.
    key_files = sorted((ss.home / "token").iterdir())
    assert len(key_files) == 2
    for key_file in key_files:
        opened = subprocess.run(
            [openssl, "pkcs8", "-in", str(key_file), "-passin", f"pass:{PIN}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert opened.returncode == 0, opened.stderr
        assert "-----BEGIN PRIVATE KEY-----" in opened.stdout
        refused = subprocess.run(
            [openssl, "pkcs8", "-in", str(key_file), "-passin", "pass:wrong-pin"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode != 0
        # The key inside is the one the certificate certifies.
        key = serialization.load_pem_private_key(opened.stdout.encode(), None)
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        matches = [
            p
            for p, f in cert_files.items()
            if x509.load_pem_x509_certificate(f.read_bytes())
            .public_key()
            .public_bytes(
                serialization.Encoding.DER,
                serialization.PublicFormat.SubjectPublicKeyInfo,
            )
            == spki
        ]
        assert len(matches) == 1

    ss("clients", "add", SUB, "--name", "Consumer Ltd")
    wsdl = tmp_path / "service.wsdl"
    wsdl.write_bytes(make_wsdl())
    added = ss(
        "services", "add-wsdl", SUB, "--url", "http://adapter/wsdl", "--file", str(wsdl)
    ).output
    assert "SERVICE:JP-TEST/COM/1111/client/getTrades/v1" in added
    ss("services", "set", SUB, "getTrades", "--timeout", "10")
    ss("services", "enable", SUB, "http://adapter/wsdl")
    ss("groups", "add", SUB, "partners")
    ss("groups", "add-member", SUB, "partners", CONSUMER)
    ss("acl", "grant", SUB, "getTrades", CONSUMER)
    ss("acl", "grant", SUB, "getBalance", "LOCALGROUP:partners")
    ss("acl", "grant", SUB, "getBalance", "GLOBALGROUP:JP-TEST/everyone")

    (desc,) = ss.json("services", "list", SUB)
    assert desc["enabled"] is True
    timeouts = {s["service_id"]: s["timeout_seconds"] for s in desc["services"]}
    assert timeouts["SERVICE:JP-TEST/COM/1111/client/getTrades/v1"] == 10
    rights = ss.json("acl", "list", SUB)
    assert [(r["service_code"], r["subject"]) for r in rights] == [
        ("getTrades", CONSUMER),
        ("getBalance", "LOCALGROUP:partners"),
        ("getBalance", "GLOBALGROUP:JP-TEST/everyone"),
    ]
    assert len(ss.json("acl", "list-subject", CONSUMER)) == 1
    clients = ss.json("clients", "list")
    assert [c["client_id"] for c in clients] == [OWNER, SUB]
    status = ss.json("status")
    assert status["token"]["key_count"] == 2


def test_wrong_pin_is_a_clear_error_and_changes_nothing(ss: Ss, tmp_path: Path) -> None:
    anchor = tmp_path / "anchor.xml"
    anchor.write_bytes(make_anchor(dt.datetime.now(dt.UTC)))
    ss(
        "init",
        "--anchor",
        str(anchor),
        "--owner",
        OWNER,
        "--owner-name",
        "C",
        "--server-code",
        "ss1",
    )
    ss("token", "init", pin=True)
    ss("keys", "generate", "--usage", "auth", pin=True)
    before = {p.name: p.read_bytes() for p in (ss.home / "token").iterdir()}

    for args in (
        ("keys", "generate", "--usage", "auth"),
        ("token", "login"),
        ("token", "change-pin"),
    ):
        extra = "new pin 7654321\n" * 2 if args[1] == "change-pin" else ""
        result = ss(*args, ok=False, input="wrong pin 999\n" + extra)
        assert result.exit_code == 1
        assert "PinIncorrect" in result.output
        assert "Traceback" not in result.output
    after = {p.name: p.read_bytes() for p in (ss.home / "token").iterdir()}
    assert after == before
    assert len(ss.json("keys", "list")) == 1


def test_errors_are_one_line_messages(ss: Ss, tmp_path: Path) -> None:
    result = ss("clients", "list", ok=False)
    assert result.exit_code == 1 and "ss.toml" in result.output
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>")
    result = ss(
        "init",
        "--anchor",
        str(bad),
        "--owner",
        OWNER,
        "--owner-name",
        "C",
        "--server-code",
        "ss1",
        ok=False,
    )
    assert result.exit_code == 1 and "Error:" in result.output
    assert "Traceback" not in result.output
    result = ss("clients", "list", ok=False)
    assert "ServerNotInitialized" in result.output
    result = ss("conf", "status", ok=False)
    assert "ServerNotInitialized" in result.output
