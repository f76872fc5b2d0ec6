"""Cutting a verified signature document into a shape (see
:mod:`jplink.security.signature_shapes`).

The four slots are found in the received bytes as whole element texts with
exactly one spelling occurring exactly once; then the document with marker
text in the slots is parsed again, and the shape is kept only if the four
elements hold the markers: the slots are those texts and nothing else. Its
canonical SignedInfo and SignedProperties are cut at the markers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from jplink.ns import NS_XADES
from jplink.xml import parse_xml

from ._signature_document import SignatureDocument
from ._signature_model import ReferenceKind, SignaturePolicy, VerifiedReference, ds
from .c14n import CanonicalizationMethod, DigestAlgorithm, canonicalize
from .signature_cache import CheckedDocument

__all__ = ["CR_REFS", "TEXT", "Shape", "cut", "fill"]

_SLOTS = ("digest", "time", "properties", "value")
_MARK = "jplinkslot{}end"
# What a slot may hold: base64, time and whitespace characters, and the
# character reference for CR that wrapped base64 uses.
TEXT = re.compile(rb"(?:[A-Za-z0-9+/=:.\- \t\n]|&#13;|&#xD;|&#xd;)*")
CR_REFS = (b"&#13;", b"&#xD;", b"&#xd;")
_SIGNING_TIME = f"{{{NS_XADES}}}SignedSignatureProperties/{{{NS_XADES}}}SigningTime"


@dataclass(frozen=True, slots=True)
class Shape:
    """A verified document cut at its four slots."""

    document: tuple[bytes, ...]  # literal, slot, literal, slot, ..., literal
    signed_info: tuple[bytes, ...]
    signed_properties: tuple[bytes, ...]
    uri: str
    digest_algorithm: DigestAlgorithm
    properties_algorithm: DigestAlgorithm
    policy: SignaturePolicy
    checked: CheckedDocument  # of the document the shape was cut from


def fill(pieces: tuple[bytes, ...], values: Mapping[bytes, bytes]) -> bytes:
    """``pieces`` with each slot name replaced by its value."""
    out = list(pieces)
    for i in range(1, len(out), 2):
        out[i] = values[out[i]]
    return b"".join(out)


def _slot_span(data: bytes, text: str | None) -> tuple[int, int] | None:
    """Where ``text`` is written in ``data``, if exactly one spelling of it
    occurs exactly once as a whole element text."""
    if not text or len(text) > 4096 or not text.isascii():
        return None
    raw = text.encode("ascii")
    spellings = [raw.replace(b"\r", ref) for ref in CR_REFS] if b"\r" in raw else [raw]
    found = [
        (data.find(b">" + s + b"<"), len(s))
        for s in spellings
        if data.count(b">" + s + b"<") == 1 and TEXT.fullmatch(s) is not None
    ]
    if len(found) != 1:
        return None
    start, size = found[0]
    return start + 1, start + 1 + size


def cut(
    data: bytes,
    doc: SignatureDocument,
    signed_properties: etree._Element,
    checked: CheckedDocument,
    policy: SignaturePolicy,
) -> Shape | None:
    """The shape of a verified document, or ``None`` for another form."""
    refs = checked.references
    if (
        len(refs) != 2
        or refs[0].kind is ReferenceKind.SIGNED_PROPERTIES
        or refs[1].kind is not ReferenceKind.SIGNED_PROPERTIES
        or doc.c14n is not CanonicalizationMethod.C14N_10
        or any(r.find(ds("Transforms")) is not None for r in doc.references)
    ):
        return None
    times = signed_properties.findall(_SIGNING_TIME)
    if len(times) != 1:
        return None
    elements = {
        b"digest": doc.references[0].find(ds("DigestValue")),
        b"time": times[0],
        b"properties": doc.references[1].find(ds("DigestValue")),
        b"value": doc.signature_value,
    }
    spans = []
    for slot, element in elements.items():
        span = _slot_span(data, element.text if element is not None else None)
        if span is None or element is None or len(element):
            return None
        spans.append((span, slot))
    spans.sort()
    pieces: list[bytes] = []
    pos = 0
    for (start, end), slot in spans:
        if start < pos:
            return None
        pieces += [data[pos:start], slot]
        pos = end
    pieces.append(data[pos:])
    marked = parse_xml(
        fill(tuple(pieces), {s.encode(): _MARK.format(s).encode() for s in _SLOTS})
    )
    return _marked_shape(marked, tuple(pieces), refs, checked, policy)


def _marked_shape(
    marked: etree._Element,
    pieces: tuple[bytes, ...],
    refs: tuple[VerifiedReference, ...],
    checked: CheckedDocument,
    policy: SignaturePolicy,
) -> Shape | None:
    """Check on the marked document that the slots are the four texts, then
    cut its canonical SignedInfo and SignedProperties at the markers."""
    signature = (
        marked if marked.tag == ds("Signature") else marked.find(ds("Signature"))
    )
    if signature is None:
        return None
    signed_info = signature.find(ds("SignedInfo"))
    value = signature.find(ds("SignatureValue"))
    if signed_info is None or value is None:
        return None
    references = signed_info.findall(ds("Reference"))
    target = refs[1].uri[1:]
    properties = [e for e in marked.iter() if e.get("Id") == target]
    if len(references) != 2 or len(properties) != 1:
        return None
    times = properties[0].findall(_SIGNING_TIME)
    found = {
        "digest": references[0].findtext(ds("DigestValue")),
        "time": times[0].text if len(times) == 1 else None,
        "properties": references[1].findtext(ds("DigestValue")),
        "value": value.text,
    }
    if any(found[s] != _MARK.format(s) for s in _SLOTS):
        return None
    marks = re.compile(rb"jplinkslot(digest|time|properties|value)end")
    info = tuple(marks.split(canonicalize(signed_info)))
    props = tuple(marks.split(canonicalize(properties[0])))
    if sorted(info[1::2]) != [b"digest", b"properties"] or props[1::2] != (b"time",):
        return None
    return Shape(
        document=pieces,
        signed_info=info,
        signed_properties=props,
        uri=refs[0].uri,
        digest_algorithm=refs[0].digest_algorithm,
        properties_algorithm=refs[1].digest_algorithm,
        policy=policy,
        checked=checked,
    )
