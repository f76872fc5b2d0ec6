"""PIN-protected key material of the software token (sans-IO plus one file writer).

Private keys are stored as PKCS#8 ``EncryptedPrivateKeyInfo`` (RFC 5958 §3)
with PBES2 (RFC 8018 §6.2): PBKDF2-HMAC-SHA256 with
:data:`PBKDF2_ITERATIONS` rounds and AES-256-CBC. cryptography's
``BestAvailableEncryption`` writes the same structure but with only 2048
PBKDF2 rounds, far too few for a short PIN, so the structure is built here;
``openssl pkcs8 -in key.p8 -passin pass:PIN`` reads it, which the tests check.
Decryption goes through cryptography's own PKCS#8 loader.

The PIN itself is never stored. A token keeps a scrypt verifier (RFC 7914)
so that a wrong PIN is refused before anything is decrypted or changed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from asn1crypto import keys
from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from jplink.errors import InvalidRequest, StorageError, Unauthenticated
from jplink.security.keys import PrivateKey

__all__ = [
    "MIN_PIN_LENGTH",
    "PBKDF2_ITERATIONS",
    "SCRYPT_LOG_N",
    "check_pin",
    "decrypt_private_key",
    "encrypt_private_key",
    "make_pin_verifier",
    "pbkdf2_iterations",
    "validate_new_pin",
    "write_private_file",
]

#: PBKDF2-HMAC-SHA256 rounds for key files (OWASP 2023 guidance for SHA-256).
PBKDF2_ITERATIONS = 600_000
#: scrypt N = 2**15, r = 8, p = 1 for the PIN verifier (RFC 7914 §2).
SCRYPT_LOG_N = 15
#: Shortest PIN accepted for a new token or a PIN change.
MIN_PIN_LENGTH = 8
_MAX_PIN_LENGTH = 128
_PEM_LABEL = "ENCRYPTED PRIVATE KEY"


def validate_new_pin(pin: str) -> str:
    """Check a new PIN against the token's PIN policy.

    Returns:
        The PIN, unchanged.

    Raises:
        InvalidRequest: code ``WeakPin`` for a PIN shorter than
            :data:`MIN_PIN_LENGTH`, longer than 128 characters, or with
            non-printable characters.
    """
    if not (MIN_PIN_LENGTH <= len(pin) <= _MAX_PIN_LENGTH) or not pin.isprintable():
        raise InvalidRequest(
            f"The PIN must be {MIN_PIN_LENGTH}-{_MAX_PIN_LENGTH} printable characters",
            code="WeakPin",
        )
    return pin


def _scrypt(pin: str, salt: bytes, log_n: int) -> bytes:
    return hashlib.scrypt(
        pin.encode("utf-8"),
        salt=salt,
        n=1 << log_n,
        r=8,
        p=1,
        maxmem=256 * 1024 * 1024,
        dklen=32,
    )


def make_pin_verifier(pin: str, *, log_n: int = SCRYPT_LOG_N) -> tuple[bytes, bytes]:
    """A fresh salt and the scrypt verifier of ``pin``.

    Returns:
        ``(salt, verifier)``; store both, never the PIN.
    """
    salt = secrets.token_bytes(16)
    return salt, _scrypt(pin, salt, log_n)


def check_pin(pin: str, salt: bytes, verifier: bytes, log_n: int) -> None:
    """Check a PIN against a stored verifier, in constant time.

    Raises:
        Unauthenticated: code ``PinIncorrect`` when the PIN does not match.
    """
    if not hmac.compare_digest(_scrypt(pin, salt, log_n), verifier):
        raise Unauthenticated("The token PIN is incorrect", code="PinIncorrect")


def encrypt_private_key(
    key: PrivateKey, pin: str, *, iterations: int = PBKDF2_ITERATIONS
) -> bytes:
    """PEM ``ENCRYPTED PRIVATE KEY`` of ``key``, encrypted with the PIN.

    Args:
        key: the private key.
        pin: the token PIN (UTF-8 encoded as the PBKDF2 password).
        iterations: PBKDF2 rounds.

    Returns:
        The PEM bytes.
    """
    plain = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    salt = secrets.token_bytes(16)
    iv = secrets.token_bytes(16)
    secret = hashlib.pbkdf2_hmac("sha256", pin.encode("utf-8"), salt, iterations, 32)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    info = keys.EncryptedPrivateKeyInfo(
        {
            "encryption_algorithm": {
                "algorithm": "pbes2",
                "parameters": {
                    "key_derivation_func": {
                        "algorithm": "pbkdf2",
                        "parameters": {
                            "salt": ("specified", salt),
                            "iteration_count": iterations,
                            "key_length": 32,
                            "prf": {"algorithm": "sha256"},
                        },
                    },
                    "encryption_scheme": {"algorithm": "aes256_cbc", "parameters": iv},
                },
            },
            "encrypted_data": ciphertext,
        }
    )
    body = base64.encodebytes(info.dump()).decode("ascii").replace("\n", "")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    text = "\n".join(
        [f"-----BEGIN {_PEM_LABEL}-----", *lines, f"-----END {_PEM_LABEL}-----"]
    )
    return (text + "\n").encode("ascii")


def decrypt_private_key(
    data: bytes, pin: str, *, where: str = "key file"
) -> PrivateKey:
    """Decrypt a key file written by :func:`encrypt_private_key`.

    Args:
        data: the PEM bytes.
        pin: the token PIN.
        where: names the file in error messages.

    Returns:
        The RSA or EC private key.

    Raises:
        Unauthenticated: code ``PinIncorrect`` when the PIN does not open the
            file (a wrong PIN and a damaged file look the same).
        StorageError: the file holds an unencrypted or non-RSA/EC key.
    """
    if f"-----BEGIN {_PEM_LABEL}-----".encode() not in data:
        raise StorageError(f"{where} is not an encrypted PKCS#8 key")
    try:
        key = serialization.load_pem_private_key(data, password=pin.encode("utf-8"))
    except (ValueError, TypeError) as exc:
        raise Unauthenticated(
            f"{where} cannot be decrypted with this PIN", code="PinIncorrect"
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise StorageError(f"{where} does not hold an RSA or EC key")
    return key


def pbkdf2_iterations(data: bytes) -> int:
    """The PBKDF2 round count of a key file (for checks and diagnostics).

    Raises:
        StorageError: the data is not a PBES2/PBKDF2 encrypted PKCS#8 PEM.
    """
    try:
        der = base64.b64decode(b"".join(data.strip().splitlines()[1:-1]))
        info = keys.EncryptedPrivateKeyInfo.load(der)
        params = info["encryption_algorithm"]["parameters"]
        kdf = params["key_derivation_func"]["parameters"]
        return int(kdf["iteration_count"].native)
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageError("Not a PBES2 encrypted PKCS#8 key") from exc


def write_private_file(directory: Path, name: str, data: bytes) -> Path:
    """Write ``data`` to ``directory/name`` atomically with mode 0600.

    The directory is created with mode 0700. The file appears complete or not
    at all (temporary file, fsync, rename).

    Raises:
        StorageError: the file could not be written.
    """
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            target = directory / name
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise StorageError(f"Cannot write {directory / name}: {exc.strerror}") from exc
    return target
