"""Content-Type header values: parsed, memoised, written back.

Pure, no I/O: the media type (lower-cased) and the parameters in order, with
quoted values unquoted (``"`` or ``'``), as :mod:`.mime` and the transport
reader need them (PROTOCOLS.md §5.4, §14.3).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from ..errors import MalformedMessage

__all__ = [
    "TCHARS",
    "TOKEN",
    "ContentType",
    "parse_content_type",
]

#: RFC 9110 §5.6.2 token characters (a regular expression).
TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
# RFC 2045 §5.1 makes the subtype a token, and a token cannot hold "/". X-Road
# nevertheless labels the signature part of a security-server message
# "signature/bdoc-1.0/ts" (PR-MESSTRANSP §3.1, PROTOCOLS.md §5.4), so a subtype
# may be several tokens joined by "/"; each segment must still be a token.
_MEDIA_TYPE = re.compile(rf"\s*({TCHARS})/({TCHARS}(?:/{TCHARS})*)\s*")

#: Distinct Content-Type values whose parse is remembered.
_CONTENT_TYPE_MEMO = 512

_PARAM_NAME = re.compile(rf"\s*;\s*({TCHARS})\s*=\s*")
#: An RFC 9110 §5.6.2 token: a header field name, a media type's parts.
TOKEN = re.compile(TCHARS)


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
