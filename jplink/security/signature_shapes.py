"""Signature documents recognised by their bytes, verified without a parse.

A peer's security server signs every message with the same key, certificate,
chain and OCSP responses, so its signature documents differ only in four
texts: the digest of the one signed part (a lone message's SOAP part, or a
batch's hash-chain result), the SigningTime, the SignedProperties digest and
the SignatureValue. After a document verified in full,
:meth:`SignatureShapes.learn` cuts its bytes at those four texts into a
*shape*: the literal bytes around them, and the canonical SignedInfo and
SignedProperties with the same four slots.

A later document that is the same literal bytes with other texts in the four
slots (each text made only of base64, time and whitespace characters, or the
character reference for CR: nothing that can open markup or change the tree)
parses to the same tree but for those texts. So its canonical SignedInfo and
SignedProperties are the shape's with the new texts filled in, and
:meth:`SignatureShapes.recognise` checks it as a full verification would:
the part's digest, the SignedProperties digest over the filled canonical
bytes, the SignatureValue over the filled canonical SignedInfo with the
shape's certificate, and the SigningTime read again; the rest of the
document (references, algorithms, the XAdES signing-certificate binding,
the embedded OCSP responses) is byte for byte the one that verified.

A shape is made only after a check that its four slots are exactly those
element texts: the document with marker text in the slots is parsed and the
four elements must hold the markers. Any check that fails on the fast path
gives ``None``, and the caller verifies the document in full (which then
raises its own error).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping

from cryptography import x509
from lxml import etree

from jplink.errors import JPLinkError

from ._signature_document import SignatureDocument
from ._signature_model import ReferenceKind, SignaturePolicy, VerifiedReference
from ._signature_shape_cut import CR_REFS, TEXT, Shape, cut, fill
from .c14n import b64decode_text, verify_octets
from .hashchain import HASH_CHAIN_RESULT_URI
from .signature_cache import CheckedDocument
from .xades import parse_signing_time

__all__ = ["DEFAULT_LEARN_INTERVAL", "DEFAULT_MAX_SHAPES", "SignatureShapes"]

#: Shapes kept.
DEFAULT_MAX_SHAPES = 32
#: Seconds between two shapes learnt for one signer and form.
DEFAULT_LEARN_INTERVAL = 1.0


def _unescape(raw: bytes) -> bytes:
    for ref in CR_REFS:
        raw = raw.replace(ref, b"\r")
    return raw


def _c14n_text(text: bytes) -> bytes:
    # C14N 1.0 (§2.3, text nodes): of the allowed characters only CR is
    # written as a character reference.
    return text.replace(b"\r", b"&#xD;")


def _match(pieces: tuple[bytes, ...], data: bytes) -> dict[bytes, bytes] | None:
    """The slot texts of ``data`` if it is ``pieces`` with other slot texts."""
    if not data.startswith(pieces[0]):
        return None
    pos = len(pieces[0])
    values: dict[bytes, bytes] = {}
    for i in range(1, len(pieces), 2):
        end = data.find(b"<", pos)  # a slot is a whole text: "<" follows it
        if end < 0 or not data.startswith(pieces[i + 1], end):
            return None
        text = data[pos:end]
        if TEXT.fullmatch(text) is None:
            return None
        values[pieces[i]] = text
        pos = end + len(pieces[i + 1])
    return values if pos == len(data) else None


class SignatureShapes:
    """Shapes of verified signature documents (bounded, thread-safe)."""

    def __init__(
        self,
        max_shapes: int = DEFAULT_MAX_SHAPES,
        *,
        learn_interval: float = DEFAULT_LEARN_INTERVAL,
    ) -> None:
        self._max = max_shapes
        self._interval = learn_interval
        self._lock = threading.Lock()
        self._shapes: list[Shape] = []  # most recently used first
        self._learnt: dict[tuple[x509.Certificate, frozenset[str]], float] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._shapes)

    def recognise(
        self,
        signature_xml: bytes,
        *,
        parts: Mapping[str, bytes],
        hash_chain_result: bytes | None,
        policy: SignaturePolicy,
    ) -> CheckedDocument | None:
        """The verified document, if ``signature_xml`` has a known shape and
        every check passes; ``None`` otherwise (verify it in full)."""
        with self._lock:
            shapes = list(self._shapes)
        for shape in shapes:
            if shape.policy != policy:
                continue
            values = _match(shape.document, signature_xml)
            if values is None:
                continue
            checked = _check(shape, values, parts, hash_chain_result)
            if checked is not None:
                with self._lock:
                    if shape in self._shapes:
                        self._shapes.remove(shape)
                        self._shapes.insert(0, shape)
            return checked
        return None

    def learn(
        self,
        signature_xml: bytes,
        doc: SignatureDocument,
        signed_properties: etree._Element,
        checked: CheckedDocument,
        policy: SignaturePolicy,
    ) -> None:
        """Remember the shape of a document that has just verified in full
        (a document of another form is ignored)."""
        # A document that matches no shape costs a cut: at most one per
        # signer and form per interval, whatever a peer sends.
        form = (checked.signer_certificate, checked.data_uris)
        now = time.monotonic()
        with self._lock:
            last = self._learnt.get(form)
            if last is not None and now - last < self._interval:
                return
            self._learnt[form] = now
            if len(self._learnt) > 4 * self._max:
                self._learnt.clear()
        shape = cut(signature_xml, doc, signed_properties, checked, policy)
        if shape is not None:
            with self._lock:
                self._shapes.insert(0, shape)
                del self._shapes[self._max :]


def _check(
    shape: Shape,
    values: dict[bytes, bytes],
    parts: Mapping[str, bytes],
    hash_chain_result: bytes | None,
) -> CheckedDocument | None:
    texts = {slot: _unescape(raw) for slot, raw in values.items()}
    try:
        if shape.uri == HASH_CHAIN_RESULT_URI:
            octets, kind = hash_chain_result, ReferenceKind.HASH_CHAIN_RESULT
        else:
            octets, kind = parts.get(shape.uri), ReferenceKind.DATA
        if octets is None:
            return None
        digest = shape.digest_algorithm.digest(octets)
        if digest != b64decode_text(texts[b"digest"].decode(), "DigestValue"):
            return None
        properties = fill(
            shape.signed_properties, {b"time": _c14n_text(texts[b"time"])}
        )
        properties_digest = shape.properties_algorithm.digest(properties)
        expected = b64decode_text(texts[b"properties"].decode(), "DigestValue")
        if properties_digest != expected:
            return None
        signed_info = fill(
            shape.signed_info,
            {
                b"digest": _c14n_text(texts[b"digest"]),
                b"properties": _c14n_text(texts[b"properties"]),
            },
        )
        value = b64decode_text(texts[b"value"].decode(), "SignatureValue")
        checked = shape.checked
        verify_octets(
            checked.signer_certificate.public_key(),
            checked.signature_method,
            value,
            signed_info,
        )
        signing_time = parse_signing_time(texts[b"time"].decode())
    except JPLinkError:
        return None  # the full verification names the failure
    references = (
        VerifiedReference(shape.uri, kind, shape.digest_algorithm, digest),
        dataclasses.replace(checked.references[1], digest=properties_digest),
    )
    return dataclasses.replace(
        checked,
        references=references,
        signature_value=value,
        properties=dataclasses.replace(checked.properties, signing_time=signing_time),
    )
