"""Small synchronous HTTP calls for the network's onboarding steps.

The onboarding talks to the components' public HTTP APIs (the central
server's admin and registration APIs, the adapter's WSDL, the security
servers' client proxies) the way an operator's script would. Failures become
:class:`~jplink.errors.TransportError` carrying the URL, the HTTP status and
the problem document's ``code``/``detail`` when there is one.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jplink.errors import TransportError

__all__ = ["HttpAnswer", "call", "call_json", "wait_http"]


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A received HTTP answer."""

    status: int
    content_type: str
    body: bytes


def call(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> HttpAnswer:
    """One HTTP request; any status is returned, only transport errors raise.

    Raises:
        TransportError: connection refused, reset or timed out.
    """
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url}")
    request = urllib.request.Request(  # noqa: S310 (checked above)
        url, data=body, method=method, headers=dict(headers or {})
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            return HttpAnswer(
                resp.status, resp.headers.get("Content-Type", ""), resp.read()
            )
    except urllib.error.HTTPError as err:
        return HttpAnswer(err.code, err.headers.get("Content-Type", ""), err.read())
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise TransportError(f"{method} {url} failed: {reason}", url=url) from err


def call_json(
    method: str,
    url: str,
    payload: Mapping[str, Any] | None = None,
    *,
    token: str | None = None,
    timeout: float = 30.0,
) -> Any:
    """A JSON API call; a non-2xx answer raises.

    Args:
        method: HTTP method.
        url: the full URL.
        payload: the JSON body, if any.
        token: sent as ``Authorization: Bearer <token>``.
        timeout: seconds.

    Returns:
        The decoded JSON answer (None for an empty body).

    Raises:
        TransportError: transport failure or an error status, with the
            problem document's code and detail in the message.
    """
    headers = {"Accept": "application/json"}
    data = None
    if payload is not None:
        data = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    answer = call(method, url, body=data, headers=headers, timeout=timeout)
    try:
        decoded = json.loads(answer.body) if answer.body else None
    except ValueError:
        decoded = None
    if not 200 <= answer.status < 300:
        what = answer.body[:300].decode("utf-8", "replace")
        if isinstance(decoded, dict):
            what = f"{decoded.get('code', '')}: {decoded.get('detail', '')}".strip()
        raise TransportError(
            f"{method} {url} answered {answer.status}: {what}",
            url=url,
            status=answer.status,
        )
    if decoded is None and answer.body:
        raise TransportError(f"{method} {url} did not answer JSON", url=url)
    return decoded


def wait_http(url: str, *, timeout: float = 60.0, ok: tuple[int, ...] = (200,)) -> None:
    """Poll ``GET url`` until it answers one of ``ok``.

    Raises:
        TransportError: no such answer within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            answer = call("GET", url, timeout=5.0)
            if answer.status in ok:
                return
            last = f"status {answer.status}"
        except TransportError as err:
            last = err.message
        time.sleep(0.3)
    raise TransportError(f"{url} not ready after {timeout:.0f} s ({last})", url=url)
