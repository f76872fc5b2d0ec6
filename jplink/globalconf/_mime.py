"""A minimal, byte-exact MIME multipart reader for signed directories.

Why our own: the directory signature covers the raw bytes of part 1, so the
reader must hand back exact slices of the input, never re-encoded text. Only
what PR-GCONF uses is supported: CRLF line ends, ``Name: value`` headers
(case-insensitive names, folded lines), parameters quoted with ``"`` or ``'``.

RFC 2046 §5.1.1: "The boundary delimiter MUST occur at the beginning of a line,
i.e., following a CRLF, and the initial CRLF is considered to be attached to the
boundary delimiter line rather than part of the preceding part."
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import GlobalConfError

__all__ = ["MimePart", "parse_header_value", "split_multipart"]


@dataclass(frozen=True, slots=True)
class MimePart:
    """One body part: headers keyed by lower-case name, and the exact body bytes."""

    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str:
        """A required header's value.

        Raises:
            GlobalConfError: the header is missing.
        """
        value = self.headers.get(name.lower())
        if value is None:
            raise GlobalConfError(f"Signed directory: missing header {name}")
        return value


def parse_header_value(value: str) -> tuple[str, dict[str, str]]:
    """Split ``main; a=1; b="two"; c='three'`` into the main value and parameters.

    Parameter names are lower-cased; quotes (double or single) are removed.

    Raises:
        GlobalConfError: a parameter without ``=`` or an unterminated quote.
    """
    pieces: list[str] = []
    current: list[str] = []
    quote: str | None = None
    for char in value:
        if quote is not None:
            current.append(char)
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
            current.append(char)
        elif char == ";":
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
    if quote is not None:
        raise GlobalConfError(f"Unterminated quote in header value {value[:80]!r}")
    pieces.append("".join(current))
    params: dict[str, str] = {}
    for piece in pieces[1:]:
        if not piece.strip():
            continue
        name, sep, raw = piece.partition("=")
        if not sep:
            raise GlobalConfError(f"Malformed header parameter {piece[:80]!r}")
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            raw = raw[1:-1]
        params[name.strip().lower()] = raw
    return pieces[0].strip(), params


def _parse_headers(part: bytes) -> MimePart:
    headers: dict[str, str] = {}
    last: str | None = None
    pos = 0
    while True:
        end = part.find(b"\r\n", pos)
        line = part[pos:] if end < 0 else part[pos:end]
        if not line:
            body = b"" if end < 0 else part[end + 2 :]
            return MimePart(headers, body)
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            raise GlobalConfError("Signed directory: non-ASCII header line") from None
        if text[0] in " \t":
            if last is None:
                raise GlobalConfError("Signed directory: header continuation first")
            headers[last] += " " + text.strip()
        else:
            name, sep, value = text.partition(":")
            key = name.strip().lower()
            if not sep or not key or key != name.lower():
                raise GlobalConfError(
                    f"Signed directory: bad header line {text[:80]!r}"
                )
            if key in headers:
                # Two different values for one header would make the signed
                # meaning ambiguous: refuse rather than pick one.
                raise GlobalConfError(f"Signed directory: duplicate header {name}")
            headers[key] = value.strip()
            last = key
        if end < 0:
            return MimePart(headers, b"")
        pos = end + 2


def split_multipart(body: bytes, boundary: str) -> list[MimePart]:
    """Split a multipart body into its parts (preamble and epilogue dropped).

    Args:
        body: the multipart entity body.
        boundary: the ``boundary`` parameter of its Content-Type.

    Returns:
        The parts in order, each body an exact slice of ``body``.

    Raises:
        GlobalConfError: no opening delimiter, no closing delimiter, or a
            delimiter line followed by something other than CRLF.
    """
    if not boundary or len(boundary) > 70:
        raise GlobalConfError("Signed directory: missing or invalid MIME boundary")
    dash = b"--" + boundary.encode("ascii", "replace")
    delim = b"\r\n" + dash
    if body.startswith(dash):
        pos = len(dash)
    else:
        found = body.find(delim)
        if found < 0:
            raise GlobalConfError("Signed directory: MIME boundary not found")
        pos = found + len(delim)
    parts: list[MimePart] = []
    while True:
        if body.startswith(b"--", pos):
            return parts  # close delimiter; the epilogue is ignored
        # Transport padding (RFC 2046 §5.1.1) then CRLF.
        while pos < len(body) and body[pos] in b" \t":
            pos += 1
        if not body.startswith(b"\r\n", pos):
            raise GlobalConfError("Signed directory: malformed MIME delimiter line")
        start = pos + 2
        search = start
        while True:
            nxt = body.find(delim, search)
            if nxt < 0:
                raise GlobalConfError("Signed directory: missing closing MIME boundary")
            after = nxt + len(delim)
            tail = body[after : after + 2]
            if tail == b"--" or tail == b"\r\n" or tail[:1] in (b" ", b"\t"):
                break
            search = after  # the boundary text continued: not a delimiter
        parts.append(_parse_headers(body[start:nxt]))
        pos = after
