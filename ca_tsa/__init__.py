"""Certificate authority, OCSP responder (RFC 6960) and time-stamping (RFC 3161)."""

from __future__ import annotations

__all__: list[str] = []
