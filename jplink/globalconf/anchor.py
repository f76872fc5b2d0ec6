"""Configuration anchors (PR-GCONF): where to download configuration, whom to trust.

An anchor names an X-Road instance, one or more download URLs and, for each,
the certificates whose keys may sign the configuration directory. It reaches a
security server out of band (the operator checks its hash), so it is the root
of trust for everything the global configuration says. The same structure is
embedded in private parameters as ``configurationAnchor`` (federation).

XML (ns ``http://x-road.eu/xsd/xroad.xsd``, unqualified children)::

    <configurationAnchor>
      <generatedAt>?  <instanceIdentifier>
      <source>+ (<downloadURL> <verificationCert>+)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from lxml import etree

from ..errors import GlobalConfError
from ..ns import NS_IDENTIFIERS, NS_XROAD
from ..xml import parse_xml, serialize_xml
from ._xmlutil import (
    Children,
    add_text,
    decode_cert,
    encode_cert,
    format_datetime,
    parse_datetime,
    text_of,
)

__all__ = [
    "AnchorSource",
    "ConfigurationAnchor",
    "anchor_from_element",
    "anchor_to_element",
    "parse_configuration_anchor",
    "serialize_configuration_anchor",
]

#: Prefixes X-Road's JAXB writer uses; kept so our files look like theirs.
NSMAP = {"ns2": NS_IDENTIFIERS, "ns3": NS_XROAD}


@dataclass(frozen=True, slots=True)
class AnchorSource:
    """One download location and the certificates that may sign what it serves.

    Attributes:
        download_url: ``GET <download_url>?version=N`` returns a signed directory.
        verification_certs: only their public keys matter; a directory is trusted
            when its ``Verification-certificate-hash`` names one of these.
    """

    download_url: str
    verification_certs: tuple[x509.Certificate, ...]

    def __post_init__(self) -> None:
        if not self.verification_certs:
            raise ValueError("a configuration source needs a verification certificate")


@dataclass(frozen=True, slots=True)
class ConfigurationAnchor:
    """A parsed configuration anchor.

    Attributes:
        instance_identifier: the X-Road instance the sources serve (``DEV``).
        sources: download locations, in document order.
        generated_at: when the central server wrote the anchor, if stated.
    """

    instance_identifier: str
    sources: tuple[AnchorSource, ...]
    generated_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if not self.sources:
            raise ValueError("a configuration anchor needs at least one source")
        if self.generated_at is not None and self.generated_at.tzinfo is None:
            raise ValueError("generated_at must be timezone-aware")

    @property
    def verification_certs(self) -> tuple[x509.Certificate, ...]:
        """Every distinct verification certificate of every source, in order."""
        seen: list[x509.Certificate] = []
        for source in self.sources:
            seen.extend(c for c in source.verification_certs if c not in seen)
        return tuple(seen)


def anchor_from_element(el: etree._Element, path: str) -> ConfigurationAnchor:
    """Read a ``ConfigurationAnchorType`` element.

    Args:
        el: the ``configurationAnchor`` element (root or embedded).
        path: location for error messages.

    Returns:
        The anchor.

    Raises:
        GlobalConfError: missing or malformed children.
    """
    kids = Children(el, path)
    generated = kids.optional("generatedAt")
    instance = text_of(kids.required("instanceIdentifier"))
    sources = []
    for src in kids.many("source"):
        skids = Children(src, f"{path}/source")
        url = text_of(skids.required("downloadURL"))
        certs = tuple(decode_cert(c) for c in skids.many("verificationCert"))
        if not certs:
            raise GlobalConfError(f"{path}/source: missing element <verificationCert>")
        skids.end()
        sources.append(AnchorSource(url, certs))
    if not sources:
        raise GlobalConfError(f"{path}: missing element <source>")
    kids.end()
    return ConfigurationAnchor(
        instance_identifier=instance,
        sources=tuple(sources),
        generated_at=parse_datetime(generated) if generated is not None else None,
    )


def anchor_to_element(
    anchor: ConfigurationAnchor, tag: str, parent: etree._Element | None = None
) -> etree._Element:
    """Build a ``ConfigurationAnchorType`` element.

    Args:
        anchor: what to write.
        tag: the element's (Clark-notation) tag.
        parent: append to this element; a new root when ``None``.

    Returns:
        The new element.
    """
    if parent is None:
        el = etree.Element(tag, nsmap=NSMAP)
    else:
        el = etree.SubElement(parent, tag)
    if anchor.generated_at is not None:
        add_text(el, "generatedAt", format_datetime(anchor.generated_at))
    add_text(el, "instanceIdentifier", anchor.instance_identifier)
    for source in anchor.sources:
        src = etree.SubElement(el, "source")
        add_text(src, "downloadURL", source.download_url)
        for cert in source.verification_certs:
            add_text(src, "verificationCert", encode_cert(cert))
    return el


def parse_configuration_anchor(data: bytes) -> ConfigurationAnchor:
    """Parse an anchor file (untrusted bytes: the operator still checks its hash).

    Args:
        data: the XML document.

    Returns:
        The anchor.

    Raises:
        XmlSecurityError: malformed XML, a DTD or an entity.
        GlobalConfError: not an anchor, or missing/malformed elements.
    """
    root = parse_xml(data)
    if root.tag != f"{{{NS_XROAD}}}configurationAnchor":
        raise GlobalConfError(
            f"Not a configuration anchor: root element is {root.tag!r}"
        )
    return anchor_from_element(root, "configurationAnchor")


def serialize_configuration_anchor(anchor: ConfigurationAnchor) -> bytes:
    """Write an anchor as X-Road does (UTF-8, declaration, indented).

    Args:
        anchor: what to write.

    Returns:
        The XML bytes; deterministic for a given anchor.
    """
    root = anchor_to_element(anchor, f"{{{NS_XROAD}}}configurationAnchor")
    etree.indent(root, space="    ")
    return serialize_xml(root)
