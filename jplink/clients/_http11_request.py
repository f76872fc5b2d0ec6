"""Requests of :mod:`jplink.clients.http11`: where a URL goes, the request head."""

from __future__ import annotations

import base64
import functools
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from jplink.protocol.mime import TOKEN

__all__ = ["Endpoint", "endpoint", "request_head", "tls_context"]

#: Header fields the pool writes itself (RFC 9110 §7.6.1 connection-specific
#: fields, framing, and Host).
_OWN_FIELDS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "expect",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
    }
)
_BAD_VALUE = re.compile(r"[\r\n\x00]")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a URL's requests go."""

    https: bool
    host: str
    port: int
    #: The request target: path and query.
    target: str
    #: The Host field (RFC 9112 §3.2).
    authority: str
    #: The URL without credentials, for errors and logs.
    url: str
    #: ``Authorization`` from credentials in the URL, if any.
    authorization: str | None


@functools.lru_cache(maxsize=256)
def endpoint(url: str) -> Endpoint:
    """Parse an ``http://`` or ``https://`` URL.

    Raises:
        ValueError: another scheme, no host, a bad port, or a path with
            whitespace or control characters.
    """
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    if not https and parts.scheme.lower() != "http":
        raise ValueError(f"Not an http(s) URL: {url!r}")
    host = parts.hostname
    if not host:
        raise ValueError(f"No host in {url!r}")
    default = 443 if https else 80
    port = parts.port or default  # .port raises ValueError when out of range
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if re.search(r"[\x00-\x20\x7f]", target):
        raise ValueError(f"Whitespace or control characters in {url!r}")
    shown = f"[{host}]" if ":" in host else host
    authority = shown if port == default else f"{shown}:{port}"
    authorization = None
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    clean = f"{parts.scheme}://{authority}{target}"
    return Endpoint(https, host, port, target, authority, clean, authorization)


@functools.lru_cache(maxsize=2)
def tls_context(verify: bool) -> ssl.SSLContext:
    """The client TLS context for services: the system's CAs, or none at all."""
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def request_head(ep: Endpoint, headers: Mapping[str, str], length: int) -> bytes:
    """The head of a POST of ``length`` bytes to ``ep``.

    Raises:
        ValueError: a field the caller may not set, or with a line break.
    """
    lines = [f"POST {ep.target} HTTP/1.1", f"Host: {ep.authority}"]
    if ep.authorization is not None:
        lines.append(f"Authorization: {ep.authorization}")
    for name, value in headers.items():
        if name.lower() in _OWN_FIELDS or not TOKEN.fullmatch(name):
            raise ValueError(f"Header field {name!r} cannot be set")
        if _BAD_VALUE.search(value):  # no header injection (RFC 9110 §5.5)
            raise ValueError(f"Header field {name!r} has a line break or NUL")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {length}\r\n\r\n")
    # Values that came in as HTTP header bytes go out as the same bytes.
    return "\r\n".join(lines).encode("utf-8", "surrogateescape")
