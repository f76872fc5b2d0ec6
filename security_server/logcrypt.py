"""Encryption of message-log bodies at rest: AES-256-GCM with a key id per record.

X-Road can keep the logged message encrypted (PROTOCOLS.md §12.1
``ciphermessage``); we encrypt the ``message`` and ``attachment`` columns of
each record with AES-256-GCM and store the key's id on the record
(``message_key_id``), so keys can rotate: new records use the newest key,
older ids still decrypt.

Keystore file (``[message_log] encryption_keystore``), JSON, mode 0600 (the
loader refuses a file that group or others may read)::

    {"version": 1,
     "current": "20261121T065934Z-1a2b3c4d",
     "keys": {"20261121T065934Z-1a2b3c4d": "<base64 of 32 random bytes>"}}

``current`` names the key for new records; every key ever used must stay in
``keys`` until the records it encrypted are deleted. Stored value of a column:
12-byte random nonce followed by the AES-GCM ciphertext and 16-byte tag. The
associated data binds the body to its record (query id, direction, side,
client), so a body moved onto another record does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from jplink.errors import ConfigurationError, Conflict, SecurityError

__all__ = [
    "KEYSTORE_VERSION",
    "LogKeystore",
    "create_keystore",
    "load_keystore",
    "record_aad",
    "rotate_keystore",
]

KEYSTORE_VERSION = 1
_NONCE = 12
_KEY_BYTES = 32


def record_aad(query_id: str, direction: str, side: str, client: str) -> bytes:
    """The associated data that binds an encrypted body to its record."""
    return "\n".join(("jplink-mlog-v1", query_id, direction, side, client)).encode()


@dataclass(frozen=True, slots=True)
class LogKeystore:
    """The loaded keys; ``current_id`` encrypts, every id decrypts.

    Build it with :func:`load_keystore`.
    """

    current_id: str
    keys: Mapping[str, bytes] = field(repr=False)
    _ciphers: dict[str, AESGCM] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.current_id not in self.keys:
            raise ValueError("current_id must name one of the keys")
        object.__setattr__(
            self, "_ciphers", {k: AESGCM(v) for k, v in self.keys.items()}
        )

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt with the current key: ``nonce || ciphertext || tag``."""
        nonce = secrets.token_bytes(_NONCE)
        return nonce + self._ciphers[self.current_id].encrypt(nonce, plaintext, aad)

    def decrypt(self, key_id: str, blob: bytes, aad: bytes) -> bytes:
        """Decrypt a stored column value.

        Args:
            key_id: the record's ``message_key_id``.
            blob: the stored value.
            aad: :func:`record_aad` of the record.

        Returns:
            The plaintext.

        Raises:
            SecurityError: code ``LogKeyNotFound`` (the keystore lacks the
                key) or ``LogDecryptionFailed`` (tampered, truncated, or
                belonging to another record).
        """
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise SecurityError(
                f"The message-log keystore has no key {key_id!r}",
                code="LogKeyNotFound",
                detail={"key_id": key_id},
            )
        try:
            return cipher.decrypt(blob[:_NONCE], blob[_NONCE:], aad)
        except (InvalidTag, ValueError) as exc:
            raise SecurityError(
                "A message-log body does not decrypt (tampered, or not this record's)",
                code="LogDecryptionFailed",
                detail={"key_id": key_id},
            ) from exc


def _new_key_id(now: dt.datetime) -> str:
    return f"{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def _write_atomically(path: Path, document: dict[str, object]) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _document(keystore: LogKeystore) -> dict[str, object]:
    return {
        "version": KEYSTORE_VERSION,
        "current": keystore.current_id,
        "keys": {
            k: base64.b64encode(v).decode("ascii") for k, v in keystore.keys.items()
        },
    }


def create_keystore(path: Path, *, now: dt.datetime) -> LogKeystore:
    """Create a keystore with one fresh key (file mode 0600).

    Raises:
        Conflict: the file exists already (rotate it instead).
        ConfigurationError: the file cannot be written.
    """
    if path.exists():
        raise Conflict(f"The keystore {path} exists; rotate it instead")
    key_id = _new_key_id(now)
    keystore = LogKeystore(key_id, {key_id: AESGCM.generate_key(bit_length=256)})
    try:
        _write_atomically(path, _document(keystore))
    except OSError as exc:
        raise ConfigurationError(f"Cannot write the keystore {path}: {exc}") from exc
    return keystore


def rotate_keystore(path: Path, *, now: dt.datetime) -> LogKeystore:
    """Add a fresh key and make it current; old keys stay for decryption.

    The running server reads the keystore at start: restart it afterwards.

    Raises:
        ConfigurationError: the keystore cannot be read or written.
    """
    old = load_keystore(path)
    key_id = _new_key_id(now)
    keys = {**old.keys, key_id: AESGCM.generate_key(bit_length=256)}
    keystore = LogKeystore(key_id, keys)
    try:
        _write_atomically(path, _document(keystore))
    except OSError as exc:
        raise ConfigurationError(f"Cannot write the keystore {path}: {exc}") from exc
    return keystore


def load_keystore(path: Path) -> LogKeystore:
    """Read and check a keystore file.

    Raises:
        ConfigurationError: missing or unreadable file, a mode that lets
            group or others read it, bad JSON, an unknown version, a key that
            is not 32 bytes of base64, or ``current`` naming no key.
    """
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"Cannot read the keystore {path}: {exc}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"The keystore {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(mode):o}); chmod 600 it"
        )
    try:
        doc = json.loads(text)
        if doc.get("version") != KEYSTORE_VERSION:
            raise ValueError(f"version must be {KEYSTORE_VERSION}")
        keys = {
            str(k): base64.b64decode(v, validate=True) for k, v in doc["keys"].items()
        }
        if not keys or any(len(v) != _KEY_BYTES for v in keys.values()):
            raise ValueError("every key must be 32 bytes")
        return LogKeystore(str(doc["current"]), keys)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise ConfigurationError(f"The keystore {path} is malformed: {exc}") from exc
