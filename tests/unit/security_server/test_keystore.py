"""PIN-encrypted PKCS#8 key files and the PIN verifier, checked with openssl."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from jplink.errors import InvalidRequest, StorageError, Unauthenticated
from jplink.security.keys import (
    KeyType,
    PrivateKey,
    generate_private_key,
    serialize_private_key_pem,
)
from security_server.keystore import (
    PBKDF2_ITERATIONS,
    check_pin,
    decrypt_private_key,
    encrypt_private_key,
    make_pin_verifier,
    pbkdf2_iterations,
    validate_new_pin,
    write_private_file,
)
from tests.conftest import require_tool

PIN = "s3cret PIN"


def _private_der(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.mark.parametrize("key_type", list(KeyType))
def test_round_trip_and_openssl(key_type: KeyType, tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    key = generate_private_key(key_type)
    pem = encrypt_private_key(key, PIN)
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert pbkdf2_iterations(pem) == PBKDF2_ITERATIONS
    assert _private_der(decrypt_private_key(pem, PIN)) == _private_der(key)
    path = write_private_file(tmp_path / "tok", "k.p8", pem)
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "tok").stat().st_mode & 0o777 == 0o700
    # An independent implementation decrypts it with the PIN, and says what it is.
    shown = subprocess.run(
        [openssl, "asn1parse", "-in", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "PBES2" in shown and "PBKDF2" in shown and "aes-256-cbc" in shown
    assert "hmacWithSHA256" in shown
    plain = subprocess.run(
        [
            openssl,
            "pkcs8",
            "-in",
            str(path),
            "-passin",
            f"pass:{PIN}",
            "-outform",
            "DER",
        ],
        capture_output=True,
        check=True,
    ).stdout
    reloaded = serialization.load_der_private_key(plain, None)
    assert reloaded.private_numbers() == key.private_numbers()  # type: ignore[union-attr]
    wrong = subprocess.run(
        [openssl, "pkcs8", "-in", str(path), "-passin", "pass:not-the-pin"],
        capture_output=True,
        check=False,
    )
    assert wrong.returncode != 0


def test_wrong_pin_and_bad_files() -> None:
    key = generate_private_key(KeyType.EC)
    pem = encrypt_private_key(key, PIN, iterations=1000)
    with pytest.raises(Unauthenticated) as exc:
        decrypt_private_key(pem, PIN + "!")
    assert exc.value.code == "PinIncorrect"
    with pytest.raises(StorageError):
        decrypt_private_key(serialize_private_key_pem(key), PIN)  # never plain text
    damaged = pem.replace(pem[100:104], b"AAAA")
    with pytest.raises(Unauthenticated):
        decrypt_private_key(damaged, PIN)


def test_pin_verifier_and_policy() -> None:
    salt, verifier = make_pin_verifier(PIN, log_n=10)
    assert PIN.encode() not in salt + verifier
    check_pin(PIN, salt, verifier, 10)
    with pytest.raises(Unauthenticated):
        check_pin(PIN.upper(), salt, verifier, 10)
    assert make_pin_verifier(PIN, log_n=10)[1] != verifier  # salted
    for bad in ("1234567", "x" * 129, "tab\there1"):
        with pytest.raises(InvalidRequest):
            validate_new_pin(bad)
    assert validate_new_pin("12345678") == "12345678"
