"""Data-source passwords, encrypted at rest with a key file the operator owns.

The key is a Fernet key (AES-128-CBC + HMAC-SHA256, cryptography's
``Fernet``) in a file of mode 0600 (``secret_key_file`` in ``adapter.toml``).
The database only ever holds the token; nothing shows a password back. Losing
the key file means re-entering the passwords, never a silent fallback to plain
text.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from jplink.errors import ConfigurationError, StorageError

__all__ = ["PasswordVault", "create_key_file"]


def create_key_file(path: Path) -> None:
    """Write a new random key to ``path`` with mode 0600.

    Raises:
        ConfigurationError: if the file already exists (never overwrite a key:
            every stored password would become unreadable).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"Key file {path} already exists") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(Fernet.generate_key())


class PasswordVault:
    """Encrypts and decrypts data-source passwords with one Fernet key."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError("The data-source key is not a Fernet key") from exc

    @classmethod
    def from_file(cls, path: Path) -> PasswordVault:
        """Load the key file.

        Raises:
            ConfigurationError: missing, unreadable, readable by others, or not
                a key.
        """
        try:
            mode = path.stat().st_mode
            data = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot read the data-source key file {path}; create it with "
                "'jplink adapter init'"
            ) from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigurationError(
                f"Key file {path} is accessible by other users; chmod 600 it"
            )
        return cls(data)

    def encrypt(self, password: str) -> str:
        """The token stored for ``password``."""
        return self._fernet.encrypt(password.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The password in ``token``.

        Raises:
            StorageError: code ``SecretUnreadable`` if the token was made with
                another key or was altered.
        """
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise StorageError(
                "A stored data-source password cannot be decrypted with the current "
                "key file; set the password again",
                code="SecretUnreadable",
            ) from exc
