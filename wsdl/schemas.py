"""The X-Road XSDs shipped with JP-LINK, and validation of header elements.

``xroad.xsd`` (header fields and WSDL annotations) and ``identifiers.xsd``
are package data written for JP-LINK from the protocol description. They are
loaded with :mod:`importlib.resources` and compiled once.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from lxml import etree

from jplink.errors import MalformedMessage

__all__ = [
    "HEADER_FIELDS",
    "NS_IDENTIFIERS",
    "NS_XROAD",
    "schema_text",
    "validate_header_element",
]

NS_XROAD = "http://x-road.eu/xsd/xroad.xsd"
NS_IDENTIFIERS = "http://x-road.eu/xsd/identifiers"

#: The header fields every generated operation declares, in message order.
HEADER_FIELDS = ("client", "service", "id", "userId", "issue", "protocolVersion")


def schema_text(name: str) -> bytes:
    """The bytes of a shipped schema (``xroad.xsd`` or ``identifiers.xsd``)."""
    if name not in ("xroad.xsd", "identifiers.xsd"):
        raise ValueError(f"no shipped schema {name!r}")
    return resources.files(__package__).joinpath(name).read_bytes()


class _Resolver(etree.Resolver):
    """Resolves the schemas' imports to package data, never the network."""

    def resolve(
        self, system_url: str | None, public_id: str | None, context: Any
    ) -> Any:
        name = (system_url or "").rsplit("/", 1)[-1]
        if name in ("xroad.xsd", "identifiers.xsd"):
            return self.resolve_string(schema_text(name), context)
        return None


@functools.cache
def _header_schema() -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_Resolver())
    doc = etree.fromstring(schema_text("xroad.xsd"), parser, base_url="xroad.xsd")
    return etree.XMLSchema(doc.getroottree())


def validate_header_element(element: etree._Element) -> None:
    """Validate one X-Road header element against ``xroad.xsd``.

    Args:
        element: e.g. the ``xroad:client`` element of a request.

    Raises:
        MalformedMessage: code ``InvalidXml``, quoting the schema's complaint.
    """
    qname = etree.QName(element)
    if qname.namespace != NS_XROAD:
        raise MalformedMessage(
            f"Header element {qname.localname} is not in {NS_XROAD}", code="InvalidXml"
        )
    data = etree.tostring(element)
    # The same client/service headers arrive on every call: remember the
    # verdict for small elements (the serialised bytes, with their namespace
    # declarations, fully determine it).
    error = _cached_check(data) if len(data) <= _CACHE_MAX_BYTES else _check(data)
    if error is not None:
        raise MalformedMessage(
            f"Header element {qname.localname} does not match xroad.xsd: {error}",
            code="InvalidXml",
        )


#: Larger header elements are validated every time, never cached.
_CACHE_MAX_BYTES = 2048


def _check(data: bytes) -> str | None:
    schema = _header_schema()
    if schema.validate(etree.fromstring(data)):
        return None
    last = schema.error_log.last_error
    return last.message if last is not None else "invalid"


_cached_check = functools.lru_cache(maxsize=1024)(_check)
