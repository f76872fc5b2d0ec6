"""Signature documents for one signed part, filled into a template.

A security server signs one part per document almost always: a lone
message's SOAP part, or a batch's hash-chain result. Between two such
documents of one signer (same key type, certificate, chain and OCSP
responses) only three things change: the part's digest, the signing time and
the signature value (the SignedProperties digest follows from the time).
Building the tree, canonicalising SignedInfo and SignedProperties and
serialising the document cost several times the signature itself, so the
three byte strings are made once per signer with marker text where the
values go, and filled in for each message.

A template is used only after it reproduced, byte for byte, the canonical
SignedProperties, the canonical SignedInfo and the document that the tree
builder (:mod:`._signature_build`, the reference) makes for the same message;
a shape that does not reproduce is never templated, and every other document
(several parts) is built as a tree.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from lxml import etree

from ._signature_build import (
    XML_DECLARATION,
    SignatureTree,
    check_key,
    finish_document,
    serialize_document,
    signature_tree,
)
from ._signature_model import SignaturePolicy, SignedPart, SigningKey
from .c14n import (
    DigestAlgorithm,
    SignatureMethod,
    b64encode_wrapped,
    canonicalize,
    sign_octets,
)
from .xades import format_signing_time

__all__ = ["signature_document"]

# Marker text: letters only, so neither C14N nor serialisation escapes it;
# a template whose bytes do not hold each marker as expected is refused.
_MARKS = re.compile(rb"jplinkmark(digest|time|properties|value)end")
_DIGEST = "jplinkmarkdigestend"
_TIME = "jplinkmarktimeend"
_PROPERTIES = "jplinkmarkpropertiesend"
_VALUE = "jplinkmarkvalueend"
_CACHE_SIZE = 16

# ``\r`` in the wrapped base64 is the only character of the filled values
# that is escaped: C14N 1.0 writes ``&#xD;`` (§2.3, text nodes), lxml's
# serialiser ``&#13;``.
_CR = b"\r"
_CR_C14N = b"&#xD;"
_CR_DOCUMENT = b"&#13;"

_Pieces = tuple[bytes, ...]  # literal, mark name, literal, mark name, ..., literal
# (URI, MIME type, signature method, certificate, OCSP DERs, chain, policy)
_Shape = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class _Template:
    signed_properties: _Pieces
    signed_info: _Pieces
    document: _Pieces
    method: SignatureMethod
    digest_algorithm: DigestAlgorithm  # of the references


def _pieces(data: bytes, expected: list[bytes]) -> _Pieces | None:
    pieces = tuple(_MARKS.split(data))
    return pieces if sorted(pieces[1::2]) == sorted(expected) else None


def _fill(pieces: _Pieces, values: dict[bytes, bytes]) -> bytes:
    out = list(pieces)
    for i in range(1, len(out), 2):
        out[i] = values[out[i]]
    return b"".join(out)


def _template(tree: SignatureTree) -> _Template | None:
    """Put the markers into a freshly built tree and cut its three outputs."""
    tree.part_digests[0].text = _DIGEST
    tree.signing_time.text = _TIME
    tree.properties_digest.text = _PROPERTIES
    properties = _pieces(canonicalize(tree.signed_properties), [b"time"])
    info = _pieces(canonicalize(tree.signed_info), [b"digest", b"properties"])
    tree.value.text = "\n" + _VALUE + "\n"
    document = _pieces(
        XML_DECLARATION
        + etree.tostring(tree.root, encoding="UTF-8", xml_declaration=False),
        [b"digest", b"properties", b"time", b"value"],
    )
    if properties is None or info is None or document is None:
        return None
    return _Template(properties, info, document, tree.method, tree.digest_algorithm)


class _Templates:
    """Templates by signer and part shape, the least recently used dropped;
    ``None`` for a shape that did not reproduce the tree builder's output."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[_Shape, _Template | None] = OrderedDict()

    def get(self, shape: _Shape) -> tuple[bool, _Template | None]:
        with self._lock:
            if shape not in self._items:
                return False, None
            self._items.move_to_end(shape)
            return True, self._items[shape]

    def put(self, shape: _Shape, template: _Template | None) -> None:
        with self._lock:
            self._items[shape] = template
            while len(self._items) > _CACHE_SIZE:
                self._items.popitem(last=False)


_TEMPLATES = _Templates()


@dataclass(frozen=True, slots=True)
class _Rendered:
    signed_properties: bytes  # canonical
    signed_info: bytes  # canonical
    raw: bytes
    document: bytes


def _render(
    template: _Template, key: SigningKey, digest: str, signing_time: dt.datetime
) -> _Rendered:
    digest_b = digest.encode("ascii")
    time_b = format_signing_time(signing_time).encode("ascii")
    properties = _fill(template.signed_properties, {b"time": time_b})
    properties_digest = b64encode_wrapped(
        template.digest_algorithm.digest(properties)
    ).encode("ascii")
    info = _fill(
        template.signed_info,
        {
            b"digest": digest_b.replace(_CR, _CR_C14N),
            b"properties": properties_digest.replace(_CR, _CR_C14N),
        },
    )
    raw = sign_octets(key, template.method, info)
    document = _fill(
        template.document,
        {
            b"digest": digest_b.replace(_CR, _CR_DOCUMENT),
            b"properties": properties_digest.replace(_CR, _CR_DOCUMENT),
            b"time": time_b,
            b"value": b64encode_wrapped(raw).encode("ascii").replace(_CR, _CR_DOCUMENT),
        },
    )
    return _Rendered(properties, info, raw, document)


def _shape(
    part: SignedPart,
    key: SigningKey,
    cert: x509.Certificate,
    ocsp_responses: Sequence[bytes],
    extra_certificates: Sequence[x509.Certificate],
    policy: SignaturePolicy,
) -> _Shape:
    return (
        part.uri,
        part.mime_type,
        SignatureMethod.for_key(key, policy.digest_algorithm),
        cert,
        tuple(ocsp_responses),
        tuple(extra_certificates),
        policy,
    )


def signature_document(
    parts: Sequence[SignedPart],
    *,
    key: SigningKey,
    cert: x509.Certificate,
    ocsp_responses: Sequence[bytes],
    extra_certificates: Sequence[x509.Certificate],
    signing_time: dt.datetime,
    policy: SignaturePolicy,
) -> bytes:
    """The signature document for ``parts``, byte for byte what
    :func:`~._signature_build.signature_tree` and ``finish_document`` make.

    Raises:
        ValueError, TypeError: as ``signature_tree``.
    """

    def tree(part_list: Sequence[SignedPart]) -> SignatureTree:
        return signature_tree(
            part_list,
            key=key,
            cert=cert,
            ocsp_responses=ocsp_responses,
            extra_certificates=extra_certificates,
            signing_time=signing_time,
            policy=policy,
        )

    if len(parts) != 1:
        return finish_document(tree(parts), key)
    part = parts[0]
    shape = _shape(part, key, cert, ocsp_responses, extra_certificates, policy)
    known, template = _TEMPLATES.get(shape)
    if not known:
        return _first(shape, tree(parts), _template(tree(parts)), key, signing_time)
    if template is None:
        return finish_document(tree(parts), key)
    # The checks the tree builder makes (key matches the certificate, aware
    # time): the template is per certificate, not per key object.
    check_key(key, cert, signing_time)
    digest = b64encode_wrapped(policy.digest_algorithm.digest(part.data))
    return _render(template, key, digest, signing_time).document


def _first(
    shape: _Shape,
    reference: SignatureTree,
    template: _Template | None,
    key: SigningKey,
    signing_time: dt.datetime,
) -> bytes:
    """Keep ``template`` for ``shape`` only if it reproduces ``reference``."""
    if template is None:
        _TEMPLATES.put(shape, None)
        return finish_document(reference, key)
    rendered = _render(
        template, key, reference.part_digests[0].text or "", signing_time
    )
    properties = canonicalize(reference.signed_properties)
    reference.properties_digest.text = b64encode_wrapped(
        reference.digest_algorithm.digest(properties)
    )
    same = (
        rendered.signed_properties == properties
        and rendered.signed_info == canonicalize(reference.signed_info)
        and rendered.document == serialize_document(reference, rendered.raw)
    )
    _TEMPLATES.put(shape, template if same else None)
    return rendered.document if same else finish_document(reference, key)
