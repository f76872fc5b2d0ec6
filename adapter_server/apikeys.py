"""Admin API keys, kept only as SHA-256 hashes in a file the operator owns.

A key looks like ``jpad_<keyid>_<secret>`` (256-bit random secret). It is
shown once, when it is created; ``admin_api_key_file`` (mode 0600) holds one
line per key: ``<keyid> <sha256-hex> <name>``. Callers send the key as
``Authorization: Bearer <key>`` (RFC 6750 §2.1). Hashing and the
constant-time comparison (a dummy hash stands in for an unknown key id, so the
time taken says nothing about how close a guess was) are the shared ones of
:mod:`jplink.web`. The file is re-read when it changes, so a key made or
revoked with the CLI takes effect in a running server without a restart.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from jplink.errors import ConfigurationError, InvalidRequest, NotFound, Unauthenticated
from jplink.storage.apikeys import ApiKeyFormat
from jplink.web import verify_secret

__all__ = [
    "ApiKeyInfo",
    "ApiKeyStore",
    "create_api_key",
    "list_api_keys",
    "revoke_api_key",
]

_KEYS = ApiKeyFormat("jpad", min_secret=40)
_LINE = re.compile(r"([0-9a-f]{16}) ([0-9a-f]{64}) (.*)\Z")
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,100}\Z")


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """A stored key's public facts (never the key)."""

    key_id: str
    name: str


def _read(path: Path) -> dict[str, tuple[str, str]]:
    """key id -> (hash, name). A missing file means no keys.

    Raises:
        ConfigurationError: readable by others, unreadable or malformed.
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigurationError(f"Cannot read the API key file {path}") from exc
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"API key file {path} is accessible by other users; chmod 600 it"
        )
    keys: dict[str, tuple[str, str]] = {}
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"Cannot read the API key file {path}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ConfigurationError(f"{path}:{number}: not '<keyid> <sha256> <name>'")
        keys[match.group(1)] = (match.group(2), match.group(3))
    return keys


def _write(path: Path, keys: dict[str, tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# JP-LINK adapter admin API keys: <keyid> <sha256 of key> <name>\n")
        for key_id, (digest, name) in keys.items():
            fh.write(f"{key_id} {digest} {name}\n")
    os.replace(tmp, path)


def create_api_key(path: Path, name: str) -> tuple[ApiKeyInfo, str]:
    """Add a key to the file; the plain key is returned once, stored hashed.

    Args:
        path: the ``admin_api_key_file``.
        name: who or what the key is for (shown by ``list``).

    Returns:
        The key's facts and the plain key.

    Raises:
        InvalidRequest: an empty, over-long or multi-line name.
        ConfigurationError: the file is unsafe or malformed.
    """
    if not _NAME.match(name):
        raise InvalidRequest("The key name must be 1-100 printable characters")
    keys = _read(path)
    new = _KEYS.new_key()
    keys[new.key_id] = (new.key_hash, name)
    _write(path, keys)
    return ApiKeyInfo(new.key_id, name), new.key


def list_api_keys(path: Path) -> list[ApiKeyInfo]:
    """The stored keys' ids and names.

    Raises:
        ConfigurationError: the file is unsafe or malformed.
    """
    return [ApiKeyInfo(k, name) for k, (_, name) in _read(path).items()]


def revoke_api_key(path: Path, key_id: str) -> None:
    """Remove a key; it never authenticates again.

    Raises:
        NotFound: no key with that id.
        ConfigurationError: the file is unsafe or malformed.
    """
    keys = _read(path)
    if keys.pop(key_id, None) is None:
        raise NotFound(f"No API key with id {key_id!r}")
    _write(path, keys)


class ApiKeyStore:
    """Checks presented keys against the file, re-reading it when it changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: tuple[int, ...] | None = None
        self._keys: dict[str, tuple[str, str]] = {}

    def _current(self) -> dict[str, tuple[str, str]]:
        try:
            st = self._path.stat()
            stamp: tuple[int, ...] | None = (
                st.st_mtime_ns,
                st.st_ctime_ns,
                st.st_ino,
                st.st_size,
            )
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            # Read before remembering the stamp: a failed read stays failing.
            self._keys = _read(self._path)
            self._stamp = stamp
        return self._keys

    def authenticate(self, presented: str) -> ApiKeyInfo:
        """Check a presented key.

        Returns:
            The verified key's facts.

        Raises:
            Unauthenticated: malformed, unknown or wrong key (one message for
                all, so a caller learns nothing about which).
            ConfigurationError: the key file became unsafe or malformed.
        """
        key_id = _KEYS.key_id_of(presented)
        stored = self._current().get(key_id)
        verify_secret(presented, stored[0] if stored else None)
        if stored is None:
            raise Unauthenticated("The API key is not valid")
        return ApiKeyInfo(key_id, stored[1])
