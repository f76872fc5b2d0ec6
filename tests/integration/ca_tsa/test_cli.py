"""`jplink ca ...` through the root command (CliRunner), with CSRs made by openssl."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from jplink.cli import root
from tests.conftest import require_tool


def _run(*args: str) -> Result:
    return CliRunner().invoke(root, list(args), catch_exceptions=False)


def _issue(home: Path, csr: Path, profile: str, *more: str) -> Result:
    """``jplink ca issue`` for member JP/COM/1234 (Acme KK)."""
    return _run(
        "ca",
        "issue",
        "--home",
        str(home),
        "--csr",
        str(csr),
        "--profile",
        profile,
        "--instance",
        "JP",
        "--member-class",
        "COM",
        "--member-code",
        "1234",
        "--member-name",
        "Acme KK",
        *more,
    )


def _openssl_csr(tmp_path: Path, subj: str, *, bits: int = 2048) -> Path:
    openssl = require_tool("openssl")
    csr = tmp_path / f"req-{bits}.csr"
    subprocess.run(
        [
            openssl,
            "req",
            "-new",
            "-newkey",
            f"rsa:{bits}",
            "-nodes",
            "-keyout",
            str(tmp_path / f"req-{bits}.key"),
            "-subj",
            subj,
            "-out",
            str(csr),
        ],
        check=True,
        capture_output=True,
    )
    return csr


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "ca"
    result = _run(
        "ca",
        "init",
        "--home",
        str(home),
        "--intermediate",
        "--key-type",
        "ec",
        "--name",
        "CLI CA",
        "--ocsp-url",
        "http://ca.example:8888/ocsp",
    )
    assert result.exit_code == 0, result.output
    assert "Root SHA-256:" in result.output
    assert "CLI CA Issuing CA" in result.output
    return home


def test_issue_list_revoke(home: Path, tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    csr = _openssl_csr(tmp_path, "/C=JP/O=Acme KK/serialNumber=JP\\/COM\\/1234/CN=1234")
    out = tmp_path / "sign.pem"
    result = _issue(home, csr, "sign", "--days", "30", "--out", str(out))
    assert result.exit_code == 0, result.output
    text = subprocess.run(
        [openssl, "x509", "-in", str(out), "-noout", "-text", "-serial"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "Non Repudiation" in text
    assert "OCSP - URI:http://ca.example:8888/ocsp" in text
    serial = text.strip().rsplit("serial=", 1)[1].lower()
    verify = subprocess.run(
        [
            openssl,
            "verify",
            "-CAfile",
            str(home / "certs" / "root.pem"),
            "-untrusted",
            str(home / "certs" / "intermediate.pem"),
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stderr

    # Without --out the PEM goes to stdout.
    auth_csr = _openssl_csr(tmp_path, "/CN=ss1")
    result = _issue(home, auth_csr, "auth", "--server-code", "ss1")
    assert result.exit_code == 0, result.output
    assert "-----BEGIN CERTIFICATE-----" in result.stdout

    listed = json.loads(_run("ca", "list", "--home", str(home), "--json").stdout)
    assert {r["profile"] for r in listed} == {"auth", "sign"}
    assert {r["serial"].lstrip("0") for r in listed} >= {serial.lstrip("0")}

    result = _run(
        "ca",
        "revoke",
        "--home",
        str(home),
        "--serial",
        serial,
        "--reason",
        "keyCompromise",
    )
    assert result.exit_code == 0, result.output
    listed = json.loads(_run("ca", "list", "--home", str(home), "--json").stdout)
    row = next(r for r in listed if r["profile"] == "sign")
    assert row["status"] == "revoked" and row["revocation_reason"] == "keyCompromise"
    plain = _run("ca", "list", "--home", str(home)).stdout
    assert "revoked" in plain and "good" in plain


def test_errors_are_one_line_messages(home: Path, tmp_path: Path) -> None:
    again = _run("ca", "init", "--home", str(home))
    assert again.exit_code == 1
    assert "CaExists" in again.output and "Traceback" not in again.output

    weak = _openssl_csr(tmp_path, "/CN=1234", bits=1024)
    result = _issue(home, weak, "sign")
    assert result.exit_code == 1
    assert "WeakKey" in result.output and "1024" in result.output

    garbage = tmp_path / "garbage.csr"
    garbage.write_bytes(b"\x00\x01garbage")
    result = _issue(home, garbage, "sign")
    assert result.exit_code == 1 and "InvalidCsr" in result.output

    result = _run("ca", "revoke", "--home", str(home), "--serial", "abcdef")
    assert result.exit_code == 1 and "NotFound" in result.output
    result = _run("ca", "revoke", "--home", str(home), "--serial", "zz")
    assert result.exit_code == 1 and "InvalidSerial" in result.output

    empty = tmp_path / "empty"
    result = _run("ca", "list", "--home", str(empty))
    assert result.exit_code == 1 and "InvalidConfiguration" in result.output


def test_home_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JPLINK_CA_HOME", str(tmp_path / "envca"))
    result = _run("ca", "init", "--key-type", "ec")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "envca" / "ca.toml").is_file()
    assert _run("ca", "list", "--json").stdout.strip() == "[]"
