"""parse_multipart's delimiter scan agrees with the RFC 2046 regular expression.

The scanner replaced a regular expression compiled for every boundary (one of
the largest costs of parsing a transport message). The expression is kept
here as the oracle: on any body, both find the same parts or both refuse.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from jplink.errors import MalformedMessage
from jplink.protocol.mime import MimePart, _split_part, parse_multipart

BOUNDARY = "b1"


def oracle(data: bytes, boundary: str) -> list[tuple[bytes, bytes]] | str:
    """The former implementation: a regex per boundary, same part splitting."""
    delimiter = re.compile(
        rb"(?:\A|\r?\n)--" + re.escape(boundary.encode()) + rb"(--)?[ \t]*(?:\r?\n|\Z)"
    )
    parts: list[MimePart] = []
    start: int | None = None
    try:
        for match in delimiter.finditer(data):
            if start is not None:
                parts.append(_split_part(data[start : match.start()]))
            if match.group(1):
                if start is None:
                    break
                return [(p.raw_headers, p.body) for p in parts]
            start = match.end()
    except MalformedMessage as exc:
        return f"error: {exc.message}"
    return "error: no close"


def actual(data: bytes, boundary: str) -> list[tuple[bytes, bytes]] | str:
    try:
        parts = parse_multipart(data, boundary)
    except MalformedMessage as exc:
        if exc.message.startswith("Multipart body without"):
            return "error: no close"
        return f"error: {exc.message}"
    return [(p.raw_headers, p.body) for p in parts]


PIECES = st.sampled_from(
    [
        b"--",
        b"b1",
        b"--b1",
        b"--b1--",
        b"\r\n",
        b"\n",
        b"\r",
        b" ",
        b"\t",
        b"x",
        b"A: 1",
        b"-",
        b"b",
        b"1",
    ]
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(PIECES, max_size=24))
def test_agrees_with_the_regex(pieces: list[bytes]) -> None:
    data = b"".join(pieces)
    assert actual(data, BOUNDARY) == oracle(data, BOUNDARY)


def test_typical_transport_body() -> None:
    body = (
        b"--b1\r\nContent-Type: text/xml\r\n\r\n<a/>\r\n"
        b"--b1 \t\r\nContent-Type: signature/bdoc-1.0/ts\r\n\r\n<s/>\r\n"
        b"--b1--\r\nepilogue"
    )
    assert actual(body, BOUNDARY) == oracle(body, BOUNDARY)
    assert [p.body for p in parse_multipart(body, BOUNDARY)] == [b"<a/>", b"<s/>"]
