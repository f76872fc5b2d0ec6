"""The RFC 3161 time-stamping authority.

A pure core (:mod:`.query` parses requests, :mod:`.authority` signs tokens and
builds rejections, :mod:`.serials` hands out unique serial numbers) behind a
thin aiohttp handler (:mod:`.http`, wired in by ``ca_tsa.app.make_tsa_app``).
"""

from __future__ import annotations

from .authority import TimestampAuthority, build_rejection
from .query import TimestampQuery, parse_timestamp_query
from .serials import SerialAllocator

__all__ = [
    "SerialAllocator",
    "TimestampAuthority",
    "TimestampQuery",
    "build_rejection",
    "parse_timestamp_query",
]
