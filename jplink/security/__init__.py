"""Pure cryptographic decisions: signatures, certificates, OCSP, time-stamps.

Sans-IO: bytes and objects in, results out; ``now`` is always a parameter.
Import the modules directly (``from jplink.security import ocsp``).
"""

from __future__ import annotations

__all__: list[str] = []
