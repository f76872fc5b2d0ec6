"""Interop with OpenSSL as an independent RFC 3161 implementation.

``openssl ts -reply`` is the TSA here (its own key and certificate with a
critical timeStamping EKU, made in tmp_path): our requests must be understood
by it, and our verifiers must accept its tokens and refuse tampered ones.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from jplink.errors import InvalidDigest, InvalidSignature, TimestampError
from jplink.security.tsp import (
    build_timestamp_request,
    new_nonce,
    verify_timestamp_response,
    verify_timestamp_token,
)
from tests.conftest import require_tool

from .test_tsp_pki import Pki, make_pki

pytestmark = pytest.mark.openssl

DATA = b"time-stamped by openssl"
POLICY = "1.2.3.4.1"
OTHER_POLICY = "1.2.3.4.5"

CONFIG = """
[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = {policy}
other_policies = {other}
digests = sha256, sha384, sha512
accuracy = secs:1, millisecs:500, microsecs:100
clock_precision_digits = 0
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = {ess}
"""


@dataclass(frozen=True)
class OpensslTsa:
    dir: Path
    pki: Pki
    openssl: str

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [self.openssl, "ts", *args], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    def reply(self, request_der: bytes, *, token_out: bool = False) -> bytes:
        (self.dir / "req.tsq").write_bytes(request_der)
        out = self.dir / "resp.tsr"
        extra = ["-token_out"] if token_out else []
        self.run(
            "-reply", "-config", str(self.dir / "tsa.cnf"),
            "-queryfile", str(self.dir / "req.tsq"), "-out", str(out), *extra,
        )  # fmt: skip
        return out.read_bytes()


def _make_tsa(tmp_path: Path, kind: str, ess: str) -> OpensslTsa:
    openssl = require_tool("openssl")
    pki = make_pki(kind, start=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    pem = serialization.Encoding.PEM
    (tmp_path / "tsa.pem").write_bytes(pki.tsa.public_bytes(pem))
    (tmp_path / "tsa.key").write_bytes(
        pki.tsa_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (tmp_path / "serial").write_text("01\n")
    (tmp_path / "tsa.cnf").write_text(
        CONFIG.format(dir=tmp_path, policy=POLICY, other=OTHER_POLICY, ess=ess)
    )
    return OpensslTsa(tmp_path, pki, openssl)


@pytest.fixture
def tsa(tmp_path: Path) -> OpensslTsa:
    return _make_tsa(tmp_path, "rsa", "sha256")


@pytest.mark.parametrize(
    ("kind", "ess"), [("rsa", "sha256"), ("rsa", "sha1"), ("ec", "sha256")]
)
@pytest.mark.parametrize("alg", ["sha256", "sha384", "sha512"])
@pytest.mark.parametrize("with_nonce", [True, False])
@pytest.mark.parametrize("cert_req", [True, False])
def test_openssl_responses_verify(tmp_path, kind, ess, alg, with_nonce, cert_req):
    tsa = _make_tsa(tmp_path, kind, ess)
    nonce = new_nonce() if with_nonce else None
    req = build_timestamp_request(
        DATA, hash_algorithm=alg, nonce=nonce, cert_req=cert_req
    )
    resp = tsa.reply(req.der)
    trusted = [tsa.pki.root] if cert_req else [tsa.pki.tsa]
    result = verify_timestamp_response(
        resp, request=req, trusted_tsa_certs=trusted, now=dt.datetime.now(dt.UTC)
    )
    text = tsa.run("-reply", "-in", str(tmp_path / "resp.tsr"), "-text")
    assert int(re.search(r"Serial number: 0x([0-9A-F]+)", text)[1], 16) == result.serial
    assert result.policy == POLICY
    assert result.nonce == nonce
    assert result.accuracy == dt.timedelta(
        seconds=1, milliseconds=500, microseconds=100
    )
    assert result.tsa_cert == tsa.pki.tsa
    assert result.imprint.algorithm.hashlib_name == alg


def test_openssl_honours_our_policy_request(tsa):
    req = build_timestamp_request(DATA, policy=OTHER_POLICY, nonce=new_nonce())
    result = verify_timestamp_response(
        tsa.reply(req.der), request=req, trusted_tsa_certs=[tsa.pki.root]
    )
    assert result.policy == OTHER_POLICY


def test_openssl_token_verifies_later_and_only_for_its_data(tsa):
    req = build_timestamp_request(DATA)
    token = tsa.reply(req.der, token_out=True)
    result = verify_timestamp_token(token, data=DATA, trusted_tsa_certs=[tsa.pki.root])
    assert result.token_der == token
    with pytest.raises(TimestampError, match="imprint"):
        verify_timestamp_token(
            token, data=DATA + b".", trusted_tsa_certs=[tsa.pki.root]
        )


def test_tampered_openssl_tokens_are_refused(tsa):
    req = build_timestamp_request(DATA, nonce=0x5A5A5A5A5A5A5A5A)
    token = tsa.reply(req.der, token_out=True)
    trusted = [tsa.pki.root]
    nonce = (0x5A5A5A5A5A5A5A5A).to_bytes(8, "big")
    assert token.count(nonce) == 1
    in_tst_info = token.replace(nonce, b"\x5b" + nonce[1:])
    with pytest.raises(InvalidDigest):
        verify_timestamp_token(in_tst_info, data=DATA, trusted_tsa_certs=trusted)
    in_signature = token[:-1] + bytes([token[-1] ^ 0x01])
    with pytest.raises(InvalidSignature):
        verify_timestamp_token(in_signature, data=DATA, trusted_tsa_certs=trusted)


QUERY_CASES = [
    # (build kwargs, lines `openssl ts -query -text` must print)
    (
        {"hash_algorithm": "sha256", "nonce": 0x1234, "cert_req": True},
        ["Hash Algorithm: sha256", "Nonce: 0x1234", "Certificate required: yes",
         "Policy OID: unspecified"],
    ),
    (
        {"hash_algorithm": "sha384", "cert_req": False, "policy": "1.2.3"},
        ["Hash Algorithm: sha384", "Nonce: unspecified", "Certificate required: no",
         "Policy OID: 1.2.3"],
    ),
    (
        {"hash_algorithm": "sha512", "nonce": None, "cert_req": False},
        ["Hash Algorithm: sha512", "Nonce: unspecified"],
    ),
]  # fmt: skip


@pytest.mark.parametrize(("kwargs", "lines"), QUERY_CASES)
def test_openssl_reads_our_requests(tsa, kwargs, lines):
    req = build_timestamp_request(DATA, **kwargs)
    (tsa.dir / "ours.tsq").write_bytes(req.der)
    text = tsa.run("-query", "-in", str(tsa.dir / "ours.tsq"), "-text")
    for line in lines:
        assert line in text
    digest = req.imprint.digest.hex()
    flat = re.sub(r"[^0-9a-f]", "", "".join(
        re.sub(r"^\s*[0-9a-f]{4} - ", "", row)[:48]
        for row in text.lower().splitlines() if re.match(r"^\s*[0-9a-f]{4} - ", row)
    ))  # fmt: skip
    assert flat == digest
