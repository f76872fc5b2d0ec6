"""Pure MIME: Content-Type parameters and multipart/related|mixed bodies.

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

import functools
import re
import secrets
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from ..errors import MalformedMessage

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

_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# RFC 2045 §5.1 makes the subtype a token, and a token cannot hold "/". X-Road
# nevertheless labels the signature part of a security-server message
# "signature/bdoc-1.0/ts" (PR-MESSTRANSP §3.1, PROTOCOLS.md §5.4), so a subtype
# may be several tokens joined by "/"; each segment must still be a token.
_MEDIA_TYPE = re.compile(rf"\s*({_TCHARS})/({_TCHARS}(?:/{_TCHARS})*)\s*")

#: Distinct Content-Type values whose parse is remembered.
_CONTENT_TYPE_MEMO = 512

_PARAM_NAME = re.compile(rf"\s*;\s*({_TCHARS})\s*=\s*")
#: An RFC 9110 §5.6.2 token: a header field name, a media type's parts.
TOKEN = re.compile(_TCHARS)
_HEADER_NAME = re.compile(_TCHARS.encode())  # the same, in a raw header block
#: Header names that are tokens (plain str only, at most 256).
_GOOD_NAMES: set[str] = set()
_LINE_BREAK = re.compile(rb"\r?\n")
_EMPTY_LINE = re.compile(rb"\r?\n\r?\n")
# RFC 2046 §5.1.1: boundary is 1..70 characters from bchars.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


def _error(message: str) -> MalformedMessage:
    return MalformedMessage(message, code="InvalidContentType")


@dataclass(frozen=True, slots=True)
class ContentType:
    """A parsed Content-Type value.

    Attributes:
        media_type: lower-cased ``type/subtype``.
        params: parameters in order, names lower-cased, values unquoted.
    """

    media_type: str
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str | None:
        """The value of parameter ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        return next((v for n, v in self.params if n == wanted), None)

    @property
    def is_multipart(self) -> bool:
        """Whether this is a ``multipart/*`` type."""
        return self.media_type.startswith("multipart/")

    def __str__(self) -> str:
        out = self.media_type
        for name, value in self.params:
            quoted = TOKEN.fullmatch(value) is None
            out += f'; {name}="{value}"' if quoted else f"; {name}={value}"
        return out


def _quoted(text: str, pos: int) -> tuple[str, int]:
    quote = text[pos]
    out: list[str] = []
    pos += 1
    while pos < len(text):
        char = text[pos]
        if char == "\\" and quote == '"' and pos + 1 < len(text):
            out.append(text[pos + 1])
            pos += 2
            continue
        if char == quote:
            return "".join(out), pos + 1
        out.append(char)
        pos += 1
    raise _error("Unterminated quoted parameter value in Content-Type")


@functools.lru_cache(maxsize=_CONTENT_TYPE_MEMO)
def parse_content_type(value: str) -> ContentType:
    """Parse a Content-Type header value.

    The subtype may contain ``/`` (X-Road's ``signature/bdoc-1.0/ts``), which
    RFC 2045 does not allow; see ``_MEDIA_TYPE``. Every message repeats the
    same few part types (``text/xml; charset=UTF-8``,
    ``application/ocsp-response`` ...), so results are memoised: at most
    ``_CONTENT_TYPE_MEMO`` values, least recently used out; the result is
    frozen and a pure function of the text; errors are not memoised.

    Args:
        value: e.g. ``multipart/related; type="text/xml"; boundary=abc``.

    Returns:
        The media type and its parameters.

    Raises:
        MalformedMessage: code ``InvalidContentType`` for a malformed value or a
            repeated parameter.
    """
    match = _MEDIA_TYPE.match(value)
    if match is None:
        raise _error(f"Malformed Content-Type {value!r}")
    media_type = f"{match.group(1)}/{match.group(2)}".lower()
    params: list[tuple[str, str]] = []
    pos = match.end()
    while pos < len(value):
        if value[pos:].strip() in ("", ";"):
            break
        pm = _PARAM_NAME.match(value, pos)
        if pm is None:
            raise _error(f"Malformed Content-Type parameters in {value!r}")
        name = pm.group(1).lower()
        pos = pm.end()
        if pos < len(value) and value[pos] in "\"'":
            param_value, pos = _quoted(value, pos)
        else:
            tm = TOKEN.match(value, pos)
            if tm is None:
                raise _error(f"Malformed value of parameter {name} in {value!r}")
            param_value, pos = tm.group(0), tm.end()
        if any(n == name for n, _ in params):
            raise _error(f"Content-Type parameter {name} given twice")
        params.append((name, param_value))
        while pos < len(value) and value[pos] in " \t":
            pos += 1
    return ContentType(media_type, tuple(params))


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
        raise _error(f"Invalid multipart boundary {boundary!r}")
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
