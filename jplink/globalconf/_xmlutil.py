"""Small helpers shared by the global-configuration XML readers and writers.

The configuration documents use unqualified child elements under a root in the
``http://x-road.eu/xsd/xroad.xsd`` namespace, in a fixed ``xs:sequence`` order.
:class:`Children` walks such a sequence strictly; every failure becomes a
:class:`~jplink.errors.GlobalConfError` naming the element path.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from ..errors import GlobalConfError

__all__ = [
    "Children",
    "add_text",
    "decode_base64",
    "decode_cert",
    "encode_cert",
    "format_datetime",
    "parse_bool",
    "parse_datetime",
    "parse_datetime_text",
    "parse_int",
    "text_of",
]


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


class Children:
    """A strict cursor over the element children of one XML element.

    Args:
        parent: the element whose children are read in order.
        path: a human-readable location used in error messages.
    """

    def __init__(self, parent: etree._Element, path: str) -> None:
        self._items = [c for c in parent if isinstance(c.tag, str)]
        self._pos = 0
        self.path = path

    def _matches(self, name: str) -> bool:
        if self._pos >= len(self._items):
            return False
        # Children are unqualified in every global-configuration schema.
        return self._items[self._pos].tag == name

    def optional(self, name: str) -> etree._Element | None:
        """The next child if it is ``name``, else ``None``."""
        if self._matches(name):
            self._pos += 1
            return self._items[self._pos - 1]
        return None

    def required(self, name: str) -> etree._Element:
        """The next child, which must be ``name``.

        Raises:
            GlobalConfError: the child is missing or another element comes first.
        """
        found = self.optional(name)
        if found is None:
            raise GlobalConfError(f"{self.path}: missing element <{name}>")
        return found

    def many(self, name: str) -> list[etree._Element]:
        """All consecutive children named ``name`` (possibly none)."""
        out: list[etree._Element] = []
        while (found := self.optional(name)) is not None:
            out.append(found)
        return out

    def end(self, *, allow_extension: bool = False) -> None:
        """Check that nothing unexpected is left.

        Args:
            allow_extension: the schema ends with ``xs:any`` (lax), so foreign
                trailing elements are allowed and ignored.

        Raises:
            GlobalConfError: an unexpected element remains.
        """
        rest = self._items[self._pos :]
        if not rest:
            return
        if allow_extension and all(etree.QName(el).namespace for el in rest):
            # Extension elements must be qualified; an unqualified name here is
            # a known element out of order, which the schema forbids.
            return
        raise GlobalConfError(
            f"{self.path}: unexpected element <{_local(rest[0])}>",
        )


def text_of(el: etree._Element) -> str:
    """The text content of a simple element (empty string when absent)."""
    if len([c for c in el if isinstance(c.tag, str)]):
        raise GlobalConfError(f"<{_local(el)}> must contain text, not elements")
    return el.text or ""


def parse_int(el: etree._Element) -> int:
    """An ``xs:integer`` element value."""
    raw = text_of(el).strip()
    try:
        return int(raw)
    except ValueError:
        raise GlobalConfError(
            f"<{_local(el)}> is not an integer: {raw[:40]!r}"
        ) from None


def parse_bool(el: etree._Element) -> bool:
    """An ``xs:boolean`` element value (``true``/``false``/``1``/``0``)."""
    raw = text_of(el).strip()
    if raw in ("true", "1"):
        return True
    if raw in ("false", "0"):
        return False
    raise GlobalConfError(f"<{_local(el)}> is not a boolean: {raw[:40]!r}")


def decode_base64(raw: str | bytes, what: str) -> bytes:
    """Strictly decode base64 text, ignoring whitespace and line breaks.

    Raises:
        GlobalConfError: the text is not valid base64.
    """
    data = raw.encode("ascii", "replace") if isinstance(raw, str) else raw
    compact = b"".join(data.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise GlobalConfError(f"{what} is not valid base64") from None


def decode_cert(el: etree._Element) -> x509.Certificate:
    """A certificate from an ``xs:base64Binary`` element.

    X-Road writes base64 of the DER certificate, but some configurations hold
    base64 of the PEM text (``LS0tLS1CRUdJTi...``); X-Road's reader accepts
    both, and so do we.

    Raises:
        GlobalConfError: bad base64 or not a certificate.
    """
    what = f"<{_local(el)}>"
    data = decode_base64(text_of(el), what)
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise GlobalConfError(f"{what} does not hold an X.509 certificate") from None


def encode_cert(cert: x509.Certificate) -> str:
    """Base64 of the DER certificate, as X-Road writes it."""
    return base64.b64encode(cert.public_bytes(Encoding.DER)).decode("ascii")


def parse_datetime(el: etree._Element) -> dt.datetime:
    """An ``xs:dateTime`` value as an aware datetime (no zone means UTC)."""
    return parse_datetime_text(text_of(el).strip(), f"<{_local(el)}>")


def parse_datetime_text(raw: str, what: str) -> dt.datetime:
    """Parse ISO 8601 / ``xs:dateTime`` text; a missing zone is read as UTC.

    Raises:
        GlobalConfError: the text is not a date-time.
    """
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise GlobalConfError(f"{what} is not a date-time: {raw[:40]!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def format_datetime(value: dt.datetime) -> str:
    """``xs:dateTime`` text in UTC with a ``Z`` suffix (milliseconds kept).

    Raises:
        ValueError: ``value`` is naive.
    """
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def add_text(parent: etree._Element, name: str, value: str) -> etree._Element:
    """Append an unqualified child ``<name>value</name>``."""
    child = etree.SubElement(parent, name)
    child.text = value
    return child
