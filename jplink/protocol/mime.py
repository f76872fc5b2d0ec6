"""Pure MIME: multipart/related|mixed bodies (Content-Type: :mod:`.content_type`).

Bytes in, bytes out, no I/O. Rules that matter for X-Road (PROTOCOLS.md §5.4,
§14.3):

- part bodies are kept **raw**: no Content-Transfer-Encoding decoding, because
  signatures and hash chains digest the bytes as transmitted;
- the line break before a delimiter belongs to the delimiter, not to the body
  (RFC 2046 §5.1.1); CRLF and bare LF are both accepted (the X-Road vector
  files use LF);
- header names are case-insensitive, parameter values may be quoted with
  ``"`` or ``'``; the header block of every part is kept byte for byte so an
  attachment can be forwarded with its MIME headers untouched.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from ..errors import MalformedMessage
from .content_type import (
    TCHARS,
    TOKEN,
    ContentType,
    parse_content_type,
)

__all__ = [
    "DEFAULT_MAX_PARTS",
    "TOKEN",
    "ContentType",
    "MimePart",
    "build_multipart",
    "make_boundary",
    "parse_content_type",
    "parse_multipart",
]

#: Upper bound on the number of parts in one multipart body.
DEFAULT_MAX_PARTS = 1000

_HEADER_NAME = re.compile(TCHARS.encode())  # a token, in a raw header block
#: Header names that are tokens (plain str only, at most 256).
_GOOD_NAMES: set[str] = set()
_LINE_BREAK = re.compile(rb"\r?\n")
_EMPTY_LINE = re.compile(rb"\r?\n\r?\n")
# RFC 2046 §5.1.1: boundary is 1..70 characters from bchars.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


def _bad_boundary(message: str) -> MalformedMessage:
    # The boundary is a parameter of the Content-Type header.
    return MalformedMessage(message, code="InvalidContentType")


@dataclass(frozen=True, slots=True)
class MimePart:
    """One MIME part with its header block kept byte for byte.

    Attributes:
        headers: ``(name, value)`` pairs as received (names keep their case,
            folded values are unfolded).
        body: the raw body bytes (no transfer decoding).
        raw_headers: the exact header block, without the empty separator line.
    """

    headers: tuple[tuple[str, str], ...]
    body: bytes = field(repr=False)
    raw_headers: bytes = field(repr=False, default=b"")

    @classmethod
    def create(cls, headers: Iterable[tuple[str, str]], body: bytes) -> MimePart:
        """A new part whose header block is written with CRLF line ends.

        Raises:
            ValueError: for a header name or value that cannot be written.
        """
        pairs = tuple(headers)
        for name, value in pairs:
            if name not in _GOOD_NAMES:
                if not TOKEN.fullmatch(name):
                    raise ValueError(f"invalid header name {name!r}")
                if type(name) is str and len(_GOOD_NAMES) < 256:  # a few recur
                    _GOOD_NAMES.add(name)
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name} has a line break")
        raw = b"\r\n".join(f"{n}: {v}".encode() for n, v in pairs)
        return cls(pairs, bytes(body), raw)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        for key, value in self.headers:  # (a loop: this runs per part, often)
            if key.lower() == wanted:
                return value
        return None

    @property
    def content_type(self) -> ContentType:
        """The part's Content-Type (``text/plain`` when absent, RFC 2045 §5.2).

        Raises:
            MalformedMessage: for a malformed Content-Type header.
        """
        value = self.header("Content-Type")
        return parse_content_type(value) if value else ContentType("text/plain")

    @property
    def content_id(self) -> str | None:
        """The Content-ID without its angle brackets, or ``None``."""
        value = self.header("Content-ID")
        return None if value is None else value.strip().strip("<>")


def _parse_headers(block: bytes) -> tuple[tuple[str, str], ...]:
    headers: list[tuple[str, str]] = []
    for line in _LINE_BREAK.split(block):
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            if not headers:
                raise MalformedMessage("MIME part starts with a continuation line")
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip().decode('utf-8', 'replace')}")
            continue
        name_b, sep, value_b = line.partition(b":")
        if not sep or not _HEADER_NAME.fullmatch(name_b):
            raise MalformedMessage(f"Malformed MIME header line {line[:60]!r}")
        headers.append((name_b.decode(), value_b.strip().decode("utf-8", "replace")))
    return tuple(headers)


def _split_part(chunk: bytes) -> MimePart:
    # The header block ends at the first empty line (CRLF CRLF or LF LF).
    if chunk.startswith((b"\r\n", b"\n")):  # no headers at all
        start = 2 if chunk.startswith(b"\r\n") else 1
        return MimePart((), chunk[start:], b"")
    match = _EMPTY_LINE.search(chunk)
    if match is None:
        raise MalformedMessage("MIME part without an empty line after its headers")
    raw = chunk[: match.start()]
    return MimePart(_parse_headers(raw), chunk[match.end() :], raw)


def _delimiters(data: bytes, marker: bytes) -> Iterator[tuple[int, int, bool]]:
    """Yield ``(start, end, is_close)`` of each delimiter line, in order.

    RFC 2046 §5.1.1: a delimiter is CRLF (or, leniently, LF), ``--``, the
    boundary, ``--`` for the close delimiter, optional linear white space and
    a line end; the first one may start the body. ``start`` includes the line
    break before the delimiter (it belongs to the delimiter, not the body),
    ``end`` the line end after it. Plain ``bytes.find`` instead of a regular
    expression compiled per boundary: a fresh boundary every message made the
    regex compile one of the largest costs of parsing.
    """
    pos = 0
    while (found := data.find(marker, pos)) >= 0:
        start = -1
        if found == 0:
            start = 0
        elif found - 1 >= pos and data[found - 1] == 0x0A:
            start = found - 1
            if start - 1 >= pos and data[start - 1] == 0x0D:
                start -= 1
        end = found + len(marker)
        close = data.startswith(b"--", end)
        if close:
            end += 2
        while end < len(data) and data[end] in (0x20, 0x09):
            end += 1
        if data.startswith(b"\r\n", end):
            end += 2
        elif data.startswith(b"\n", end):
            end += 1
        elif end != len(data):
            start = -1
        if start < 0:
            pos = found + 1
            continue
        yield start, end, close
        pos = end


def parse_multipart(
    data: bytes, boundary: str, *, max_parts: int = DEFAULT_MAX_PARTS
) -> tuple[MimePart, ...]:
    """Split a multipart body into its parts.

    Args:
        data: the HTTP body (starting with the preamble or the first delimiter).
        boundary: the ``boundary`` parameter of the Content-Type.
        max_parts: refuse bodies with more parts.

    Returns:
        The parts in order, bodies raw.

    Raises:
        MalformedMessage: ``InvalidContentType`` for a bad boundary; otherwise
            ``InvalidMessage`` for a missing delimiter, a missing close
            delimiter, too many parts or malformed part headers.
    """
    if not _BOUNDARY.fullmatch(boundary):
        raise _bad_boundary(f"Invalid multipart boundary {boundary!r}")
    parts: list[MimePart] = []
    start: int | None = None
    for begin, end, close in _delimiters(data, b"--" + boundary.encode()):
        if start is not None:
            parts.append(_split_part(data[start:begin]))
            if len(parts) > max_parts:
                raise MalformedMessage(f"More than {max_parts} MIME parts")
        if close:  # close delimiter: the rest is the epilogue
            if start is None:
                break
            return tuple(parts)
        start = end
    raise MalformedMessage(
        "Multipart body without "
        + ("any part" if start is None else "its closing delimiter")
    )


def make_boundary(prefix: str = "jplink") -> str:
    """A fresh random boundary (``prefix`` + 32 hex digits)."""
    return f"{prefix}{secrets.token_hex(16)}"


def build_multipart(parts: Sequence[MimePart], boundary: str) -> bytes:
    """Write parts as a multipart body with CRLF delimiters.

    Each part's ``raw_headers`` are written unchanged (so received attachments
    are forwarded with their headers byte for byte).

    Args:
        parts: the parts in order.
        boundary: the boundary (see :func:`make_boundary`).

    Returns:
        The body bytes, ending with the close delimiter and CRLF.

    Raises:
        ValueError: for an invalid boundary, or one that occurs in a body.
    """
    if not _BOUNDARY.fullmatch(boundary):
        raise ValueError(f"invalid boundary {boundary!r}")
    marker = b"--" + boundary.encode()
    out: list[bytes] = []
    for part in parts:
        if marker in part.body or marker in part.raw_headers:
            raise ValueError("the boundary occurs inside a part; choose another")
        head = part.raw_headers + b"\r\n" if part.raw_headers else b""
        out += [marker, b"\r\n", head, b"\r\n", part.body, b"\r\n"]
    out += [marker, b"--\r\n"]
    return b"".join(out)
