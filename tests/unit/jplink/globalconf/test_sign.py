"""build_signed_directory: verifies with our verifier and with openssl."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import subprocess
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from jplink.errors import GlobalConfExpired, GlobalConfSignatureError
from jplink.globalconf import (
    ConfFile,
    ContentIdentifier,
    DigestAlgorithm,
    SignatureAlgorithm,
    build_signed_directory,
    parse_signed_directory,
    verify_directory,
    verify_file,
)
from tests.conftest import require_tool

from .helpers import Key, ec_pair, rsa_pair

SHARED = b"<conf>shared</conf>"
PRIVATE = b"<conf>private</conf>"


def _files() -> list[ConfFile]:
    return [
        ConfFile(
            ContentIdentifier.SHARED_PARAMETERS,
            "/V6/20261121090000000000000/shared-params.xml",
            SHARED,
        ),
        ConfFile(
            "PRIVATE-PARAMETERS",
            "/V6/20261121090000000000000/private-params.xml",
            PRIVATE,
            file_name="private-params.xml",
        ),
    ]


def _build(
    now: dt.datetime, pair: tuple[Key, x509.Certificate] | None = None, **kwargs: Any
) -> tuple[str, bytes]:
    key, cert = pair or rsa_pair()
    args: dict[str, Any] = {
        "instance": "JP",
        "signing_key": key,
        "signing_cert": cert,
        "expire": now + dt.timedelta(seconds=600),
        "now": now,
    }
    args.update(kwargs)
    return build_signed_directory(_files(), **args)


@pytest.mark.parametrize("pair", [rsa_pair, ec_pair], ids=["rsa", "ecdsa"])
def test_round_trip_through_our_verifier(now, pair):
    key, cert = pair()
    content_type, body = _build(now, (key, cert))
    result = verify_directory(body, content_type, verification_certs=[cert], now=now)
    expected_alg = (
        SignatureAlgorithm.RSA_SHA512
        if pair is rsa_pair
        else SignatureAlgorithm.ECDSA_SHA512
    )
    assert result.signature_algorithm is expected_alg
    assert result.version == 6
    assert result.expire_date == dt.datetime(2026, 11, 21, 9, 10, tzinfo=dt.UTC)
    shared, private = result.entries
    assert shared.content_identifier is ContentIdentifier.SHARED_PARAMETERS
    assert private.content_identifier is ContentIdentifier.PRIVATE_PARAMETERS
    assert shared.instance == private.instance == "JP"
    assert private.file_name == "private-params.xml"
    assert shared.hash == hashlib.sha512(SHARED).digest()
    verify_file(shared, SHARED)
    verify_file(private, PRIVATE)
    with pytest.raises(GlobalConfSignatureError):
        verify_file(shared, PRIVATE)


def test_layout_matches_x_road(now):
    content_type, body = _build(now)
    assert content_type.startswith("multipart/related; charset=UTF-8; boundary=")
    outer = content_type.rsplit("=", 1)[1]
    lines = body.split(b"\r\n")
    assert lines[0] == b"--" + outer.encode()
    assert lines[1].startswith(
        b"Content-Type: multipart/mixed; charset=UTF-8; boundary="
    )
    inner = lines[1].rsplit(b"=", 1)[1]
    assert lines[2:6] == [
        b"",
        b"--" + inner,
        b"Expire-date: 2026-11-21T09:10:00Z",
        b"Version: 6",
    ]
    assert b"Content-identifier: SHARED-PARAMETERS; instance='JP'" in lines
    assert b"Hash-algorithm-id: http://www.w3.org/2001/04/xmlenc#sha512" in lines
    assert body.endswith(b"\r\n--" + outer.encode() + b"--\r\n")
    # The reader sees exactly 2 files and the same algorithm identifiers.
    parsed = parse_signed_directory(body, content_type)
    assert parsed.cert_hash_algorithm is DigestAlgorithm.SHA512
    assert len(parsed.entries) == 2


@pytest.mark.openssl
@pytest.mark.parametrize("pair", [rsa_pair, ec_pair], ids=["rsa", "ecdsa"])
def test_signature_verifies_with_openssl(now, tmp_path, pair):
    openssl = require_tool("openssl")
    key, cert = pair()
    _, body = _build(now, (key, cert))
    # Cut the signed part and the signature out by hand, not with our parser.
    start = body.index(b"\r\n\r\n") + 4
    inner = body[start : body.index(b"\r\n", start)]
    end = body.index(inner + b"--\r\n", start) + len(inner) + 4
    signed = body[start:end]
    signature = base64.b64decode(body.split(b"\r\n")[-3])
    (tmp_path / "signed_part.bin").write_bytes(signed)
    (tmp_path / "sig.bin").write_bytes(signature)
    (tmp_path / "pubkey.pem").write_bytes(
        cert.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    cmd = [
        openssl,
        "dgst",
        "-sha512",
        "-verify",
        "pubkey.pem",
        "-signature",
        "sig.bin",
        "signed_part.bin",
    ]
    ok = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "Verified OK" in ok.stdout
    # And openssl rejects it when one signed byte changes.
    (tmp_path / "signed_part.bin").write_bytes(
        signed.replace(b"Version: 6", b"Version: 5")
    )
    bad = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode != 0
    # The certificate hash header is SHA-512 of the DER certificate.
    cert_hash = hashlib.sha512(cert.public_bytes(Encoding.DER)).digest()
    assert base64.b64encode(cert_hash) in body


def test_sha256_digest_variant(now):
    _, cert = rsa_pair()
    content_type, body = _build(now, digest=DigestAlgorithm.SHA256)
    result = verify_directory(body, content_type, verification_certs=[cert], now=now)
    assert result.signature_algorithm is SignatureAlgorithm.RSA_SHA256
    assert result.entries[0].hash == hashlib.sha256(SHARED).digest()


def test_expiry_is_enforced_on_our_output(now):
    _, cert = rsa_pair()
    content_type, body = _build(now)
    later = now + dt.timedelta(seconds=601)
    with pytest.raises(GlobalConfExpired):
        verify_directory(body, content_type, verification_certs=[cert], now=later)


def test_other_key_does_not_verify(now):
    _, other = rsa_pair("other")
    content_type, body = _build(now)
    with pytest.raises(GlobalConfSignatureError):
        verify_directory(body, content_type, verification_certs=[other], now=now)


def test_misuse(now):
    key, _ = rsa_pair()
    _, other_cert = rsa_pair("other")
    with pytest.raises(ValueError, match="does not match"):
        _build(now, (key, other_cert))
    with pytest.raises(ValueError, match="after now"):
        _build(now, expire=now)
    with pytest.raises(ValueError, match="timezone-aware"):
        _build(now, expire=dt.datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="one line"):
        _build(now, instance="JP\r\nX-Evil: 1")
    with pytest.raises(TypeError):
        build_signed_directory(
            [],
            instance="JP",
            signing_key=object(),  # type: ignore[arg-type]
            signing_cert=rsa_pair()[1],
            expire=now + dt.timedelta(1),
            now=now,
        )


def test_ecdsa_raw_r_s_signature_is_accepted(now):
    # XML-DSig style r||s instead of DER must verify too (and stay fail-closed).
    key, cert = ec_pair()
    content_type, body = _build(now, (key, cert))
    old = body.split(b"\r\n")[-3]
    r, s = decode_dss_signature(base64.b64decode(old))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    converted = body.replace(old, base64.b64encode(raw))
    result = verify_directory(
        converted, content_type, verification_certs=[cert], now=now
    )
    assert result.signature_algorithm is SignatureAlgorithm.ECDSA_SHA512
    flipped = raw[:-1] + bytes([raw[-1] ^ 1])
    with pytest.raises(GlobalConfSignatureError):
        verify_directory(
            body.replace(old, base64.b64encode(flipped)),
            content_type,
            verification_certs=[cert],
            now=now,
        )


def test_raw_r_s_beginning_like_der_is_still_accepted(now):
    # One raw r||s value in 256 begins with 0x30, the DER SEQUENCE tag: it
    # must not be mistaken for DER (this made the test above flaky).
    key, cert = ec_pair()
    content_type, body = _build(now, (key, cert))
    old = body.split(b"\r\n")[-3]
    signed = parse_signed_directory(body, content_type).signed_data
    for _ in range(5000):
        r, s = decode_dss_signature(key.sign(signed, ec.ECDSA(hashes.SHA512())))
        raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if raw[0] == 0x30:
            break
    assert raw[0] == 0x30
    converted = body.replace(old, base64.b64encode(raw))
    result = verify_directory(
        converted, content_type, verification_certs=[cert], now=now
    )
    assert result.signature_algorithm is SignatureAlgorithm.ECDSA_SHA512
    flipped = raw[:-1] + bytes([raw[-1] ^ 1])
    with pytest.raises(GlobalConfSignatureError):
        verify_directory(
            body.replace(old, base64.b64encode(flipped)),
            content_type,
            verification_certs=[cert],
            now=now,
        )
