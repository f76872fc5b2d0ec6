"""Certificate authority, OCSP responder (RFC 6960) and time-stamping authority (RFC 3161)."""

from __future__ import annotations

__all__: list[str] = []
