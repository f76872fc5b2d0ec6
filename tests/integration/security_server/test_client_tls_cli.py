"""``jplink ss clients set-connection-type|is-cert``, the internal TLS key pair,
and the pure IS-authentication decision."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jplink.cli import root
from jplink.errors import CertificateValidationError, ConfigurationError
from jplink.identifiers import ClientId
from security_server.client_tls import ensure_internal_tls
from security_server.exchange_is_auth import (
    ConnectionType,
    IsChannel,
    verify_is_authentication,
)
from tests.conftest import require_tool

from .helpers import make_anchor
from .test_client_tls import make_is_cert

OWNER = "MEMBER:JP-TEST/COM/1111"
SUB = "SUBSYSTEM:JP-TEST/COM/1111/client"


class Ss:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = self.runner.invoke(root, ["ss", *args, "--home", str(self.home)])
        if ok:
            assert result.exit_code == 0, result.output
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args).output)


@pytest.fixture
def ss(tmp_path: Path) -> Ss:
    ss = Ss(tmp_path / "home")
    anchor = tmp_path / "anchor.xml"
    anchor.write_bytes(make_anchor(dt.datetime.now(dt.UTC)))
    ss("init", "--anchor", str(anchor), "--owner", OWNER,
       "--owner-name", "Consumer Ltd", "--server-code", "ss1")  # fmt: skip
    ss("clients", "add", SUB)
    return ss


def test_connection_type_and_is_certificates(ss: Ss, tmp_path: Path) -> None:
    out = ss.json("clients", "set-connection-type", SUB, "https")
    assert out == {"client": SUB, "connection_type": "HTTPS"}
    out = ss.json("clients", "set-connection-type", SUB, "https-no-auth")
    assert out["connection_type"] == "HTTPS_NO_AUTH"
    bad = ss("clients", "set-connection-type", SUB, "ftp", ok=False)
    assert bad.exit_code != 0

    cert = make_is_cert(tmp_path, "is-one")
    der = cert.cert.public_bytes(serialization.Encoding.DER)
    sha = hashlib.sha256(der).hexdigest()
    added = ss.json("clients", "is-cert", "add", SUB, str(cert.cert_file))
    assert added["sha256"] == sha
    assert "CN=is-one" in added["subject"]
    # DER works too; a second registration of the same cert is a conflict.
    der_file = tmp_path / "one.der"
    der_file.write_bytes(der)
    again = ss("clients", "is-cert", "add", SUB, str(der_file), ok=False)
    assert again.exit_code != 0 and "CertificateExists" in again.output
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    refused = ss("clients", "is-cert", "add", SUB, str(junk), ok=False)
    assert "InvalidCertificate" in refused.output
    unknown = ss("clients", "is-cert", "add", SUB + "x", str(cert.cert_file), ok=False)
    assert "ClientNotFound" in unknown.output

    listed = ss.json("clients", "is-cert", "list", SUB)
    assert [c["sha256"] for c in listed] == [sha]
    ss("clients", "is-cert", "delete", SUB, sha)
    assert ss.json("clients", "is-cert", "list", SUB) == []
    gone = ss("clients", "is-cert", "delete", SUB, sha, ok=False)
    assert "CertificateNotFound" in gone.output


def test_internal_tls_key_pair(tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    now = dt.datetime.now(dt.UTC)
    cert_path, key_path = ensure_internal_tls(tmp_path, now=now)
    assert key_path.stat().st_mode & 0o777 == 0o600
    # An independent check: the key matches the certificate, which verifies
    # as its own (self-signed) trust anchor for TLS server use.
    verify = subprocess.run(
        [
            openssl,
            "verify",
            "-purpose",
            "sslserver",
            "-CAfile",
            str(cert_path),
            str(cert_path),
        ],
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0, verify.stderr
    pub_cert = subprocess.run(
        [openssl, "x509", "-in", str(cert_path), "-noout", "-pubkey"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    pub_key = subprocess.run(
        [openssl, "pkey", "-in", str(key_path), "-pubout"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    assert pub_cert == pub_key
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.not_valid_after_utc - now > dt.timedelta(days=7000)
    # Kept on the next start; a half-present pair is an error, not replaced.
    assert ensure_internal_tls(tmp_path, now=now) == (cert_path, key_path)
    assert cert_path.read_bytes() == cert.public_bytes(serialization.Encoding.PEM)
    key_path.unlink()
    with pytest.raises(ConfigurationError):
        ensure_internal_tls(tmp_path, now=now)


CLIENT = ClientId("JP-TEST", "COM", "1111", "client")
CERT = b"certificate bytes"
SHA = hashlib.sha256(CERT).hexdigest()
PLAIN = IsChannel(tls=False)
TLS = IsChannel(tls=True)
TLS_CERT = IsChannel(tls=True, cert_der=CERT)
TLS_OTHER = IsChannel(tls=True, cert_der=b"another certificate")


@pytest.mark.parametrize(
    ("ctype", "registered", "channel", "ok"),
    [
        (ConnectionType.HTTP, frozenset(), PLAIN, True),
        (ConnectionType.HTTP, frozenset(), TLS_OTHER, True),
        (ConnectionType.HTTPS_NO_AUTH, frozenset(), PLAIN, False),
        (ConnectionType.HTTPS_NO_AUTH, frozenset(), TLS, True),
        (ConnectionType.HTTPS_NO_AUTH, frozenset(), TLS_OTHER, True),
        (ConnectionType.HTTPS, frozenset({SHA}), PLAIN, False),
        (ConnectionType.HTTPS, frozenset({SHA}), TLS, False),
        (ConnectionType.HTTPS, frozenset(), TLS_CERT, False),
        (ConnectionType.HTTPS, frozenset({SHA}), TLS_OTHER, False),
        (ConnectionType.HTTPS, frozenset({SHA}), TLS_CERT, True),
    ],
)
def test_verify_is_authentication(
    ctype: ConnectionType, registered: frozenset[str], channel: IsChannel, ok: bool
) -> None:
    if ok:
        result = verify_is_authentication(CLIENT, ctype, registered, channel)
        assert result.client == CLIENT and result.connection_type is ctype
        expect = SHA if ctype is ConnectionType.HTTPS else None
        assert result.cert_sha256 == expect
    else:
        with pytest.raises(CertificateValidationError) as caught:
            verify_is_authentication(CLIENT, ctype, registered, channel)
        assert caught.value.code == "SslAuthenticationFailed"
