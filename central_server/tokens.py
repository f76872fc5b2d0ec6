"""Secrets handed out once and stored only as hashes.

API keys and requester tokens are 256-bit random values; a single SHA-256 is
enough to store them (no password stretching is needed for high-entropy
secrets), and they are compared in constant time so the time taken never
reveals how much of a guess was right.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["hash_secret", "new_secret", "secret_matches"]


def new_secret() -> str:
    """A fresh URL-safe random secret with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The hex SHA-256 stored in place of ``secret``."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Whether ``secret`` hashes to ``stored_hash``, compared in constant time."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)
