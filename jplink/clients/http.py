"""The one place where aiohttp client errors become :class:`TransportError`.

STYLE.md §3.3 rule 5: "``jplink/clients/http.py`` wraps each call in
``map_transport_errors()`` ... Nowhere else catches ``aiohttp`` exceptions."
Every client in this package sends its requests through :func:`request_json`
or :func:`post_der` (or wraps its own calls in :func:`map_transport_errors`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ..errors import MalformedMessage, TransportError

__all__ = [
    "DEFAULT_TIMEOUT",
    "HttpResponse",
    "client_timeout",
    "map_transport_errors",
    "post_der",
    "read_body",
    "request_json",
]

#: Total time allowed for one outbound call, in seconds.
DEFAULT_TIMEOUT = 30.0

#: Largest response body read from a peer (a certificate chain is a few KiB).
MAX_RESPONSE_BYTES = 1 << 20


@functools.lru_cache(maxsize=64)
def client_timeout(total: float, connect: float | None = None) -> aiohttp.ClientTimeout:
    """An (immutable) aiohttp timeout, one object per value.

    The proxies send every message with one of a few configured timeouts;
    building the object per message showed in their profiles.
    """
    return aiohttp.ClientTimeout(total=total, sock_connect=connect)


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A response whose body has been read in full.

    Attributes:
        status: the HTTP status.
        headers: the response headers (first value of each name).
        body: the raw body.
        url: the address that was called.
    """

    status: int
    body: bytes
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON.

        Raises:
            MalformedMessage: the body is not JSON.
        """
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedMessage(
                f"{self.url} answered {self.status} with a body that is not JSON"
            ) from exc


async def read_body(resp: aiohttp.ClientResponse, *, limit: int, url: str) -> bytes:
    """Read a whole response body, refusing more than ``limit`` bytes.

    ``StreamReader.read(n)`` returns only what is buffered so far, so a body
    that arrives in several packets must be read in a loop.

    Raises:
        TransportError: the body is larger than ``limit``.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise TransportError(
                f"{url} sent a response larger than {limit} bytes",
                url=url,
                status=resp.status,
            )
        chunks.append(chunk)
    return b"".join(chunks)


@contextmanager
def map_transport_errors(url: str) -> Iterator[None]:
    """Translate aiohttp and timeout errors raised inside into TransportError.

    Args:
        url: the address being called (carried by the error).

    Raises:
        TransportError: for any connection, TLS, protocol or timeout failure.
    """
    try:
        yield
    except TimeoutError as exc:
        raise TransportError(f"{url} did not answer in time", url=url) from exc
    except aiohttp.ClientResponseError as exc:
        raise TransportError(
            f"{url} answered with HTTP {exc.status}", url=url, status=exc.status
        ) from exc
    except aiohttp.ClientError as exc:
        raise TransportError(
            f"Calling {url} failed: {type(exc).__name__}",
            url=url,
            request_sent=not isinstance(exc, aiohttp.ClientConnectorError),
        ) from exc


async def request_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> HttpResponse:
    """Send a JSON request and read the whole response.

    Any status is returned; deciding what a status means is the caller's job.

    Args:
        session: the caller's aiohttp session (created in a ``cleanup_ctx``).
        method: ``GET``, ``POST`` ...
        url: the address.
        body: a JSON object to send, or None.
        headers: extra request headers.
        timeout: total seconds allowed.

    Returns:
        The status, headers and body.

    Raises:
        TransportError: the call failed, timed out, or the body was too large.
    """
    with map_transport_errors(url):
        async with session.request(
            method,
            url,
            json=dict(body) if body is not None else None,
            headers=dict(headers or {}),
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            data = await read_body(resp, limit=MAX_RESPONSE_BYTES, url=url)
            return HttpResponse(
                status=resp.status,
                body=data,
                url=url,
                headers={k: v for k, v in resp.headers.items()},
            )


async def post_der(
    session: aiohttp.ClientSession,
    url: str,
    request_der: bytes,
    *,
    content_type: str,
    reply_type: str,
    limit: int,
    timeout: float,
) -> bytes:
    """POST a DER request and read a binary answer of one media type.

    The answer is refused at the HTTP level (a status other than 200, another
    content type, an oversized body), so the caller never parses an error
    page as DER. Redirects are not followed.

    Args:
        session: the caller's aiohttp session.
        url: the address.
        request_der: the request body.
        content_type: the request's media type.
        reply_type: the only media type accepted for the answer (also sent as
            ``Accept``).
        limit: the largest answer body read, in bytes.
        timeout: total seconds allowed.

    Returns:
        The raw answer body, not yet parsed or trusted.

    Raises:
        TransportError: connection failure, timeout, a status other than 200,
            another content type or a body larger than ``limit``.
    """
    with map_transport_errors(url):
        async with session.post(
            url,
            data=request_der,
            headers={"Content-Type": content_type, "Accept": reply_type},
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
        ) as resp:
            body = await read_body(resp, limit=limit, url=url)
            if resp.status != 200:
                raise TransportError(f"HTTP {resp.status}", url=url, status=resp.status)
            if resp.content_type != reply_type:
                raise TransportError(
                    f"content type {resp.content_type!r}, not {reply_type}",
                    url=url,
                    status=resp.status,
                )
            return body
