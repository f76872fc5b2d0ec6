"""The server's messages: a whole request, a whole reply, the limits.

Used by :mod:`jplink.http11_server` and its connection protocol.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus

__all__ = [
    "Handler",
    "HttpReply",
    "HttpRequest",
    "Refused",
    "ServerLimits",
    "response_head",
]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A whole request.

    Attributes:
        method: ``POST``, ``GET``...
        target: the request target as sent (path and query).
        headers: header fields by lower-case name; repeated fields are
            joined with ``", "`` (RFC 9110 §5.3).
        body: the body (chunked coding removed).
        tls: the connection is TLS.
        peer_cert_der: the client's TLS certificate (DER), if it sent one.
    """

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    tls: bool
    peer_cert_der: bytes | None


@dataclass(frozen=True, slots=True)
class HttpReply:
    """An answer: status, header fields and the whole body.

    ``Content-Length``, ``Date`` and ``Connection`` are written by the server.
    """

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


Handler = Callable[[HttpRequest], Awaitable[HttpReply]]


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """What a connection may send and how long it may stay idle.

    Attributes:
        max_body: largest request body in bytes (413 beyond).
        max_header_bytes: largest header section (431 beyond).
        idle_seconds: close a connection with no request under way after
            this long (also a request that stops arriving half-way).
    """

    max_body: int
    max_header_bytes: int = 64 * 1024
    idle_seconds: float = 75.0


class Refused(Exception):
    """A request the connection answers itself (4xx/5xx), then closes."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


_date_cache: tuple[int, bytes] = (0, b"")


def _date() -> bytes:
    # RFC 9110 §6.6.1: an origin server with a clock MUST send Date in its
    # 2xx-4xx answers; formatted once per second.
    global _date_cache
    second = int(time.time())
    if _date_cache[0] != second:
        _date_cache = (second, formatdate(second, usegmt=True).encode("ascii"))
    return _date_cache[1]


def response_head(
    status: int,
    headers: tuple[tuple[str, str], ...],
    length: int,
    close: bool,
    http10: bool,
) -> bytes:
    """The status line and header section of an answer."""
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}".encode("latin-1")]
    for name, value in headers:
        line = f"{name}: {value}"
        if "\r" in line or "\n" in line:  # a handler bug must not split the answer
            raise ValueError(f"header field {name!r} contains a line break")
        lines.append(line.encode("latin-1"))
    lines.append(b"Content-Length: %d" % length)
    lines.append(b"Date: " + _date())
    if close:
        lines.append(b"Connection: close")
    elif http10:  # RFC 9112 §9.3: a 1.0 client keeps the connection only if told
        lines.append(b"Connection: keep-alive")
    return b"\r\n".join(lines) + b"\r\n\r\n"
