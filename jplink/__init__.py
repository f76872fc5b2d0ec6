"""JP-LINK shared core: identifiers, protocol, security, configuration, storage."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
