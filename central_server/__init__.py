"""The JP-LINK central server: registry, approvals, admin API and CLI."""

from __future__ import annotations

__all__: list[str] = []
