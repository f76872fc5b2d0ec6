"""Documents recognised by their shape verify exactly as a full verification.

The differential tests compare every outcome with shapes against the same
verification without them: the same result, or the same error.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jplink.errors import InvalidDigest, InvalidSignature, JPLinkError
from jplink.security.signature import (
    SignatureShapes,
    SignedPart,
    sign_batch,
    sign_message,
    verify_signature,
)

NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
OCSP = (b"\x30\x03\x0a\x01\x00",)


def _sign(signer, data: bytes, when: dt.datetime = NOW, ocsp=OCSP) -> bytes:
    key, cert = signer
    return sign_message(
        [SignedPart("/message.xml", data)],
        key=key,
        cert=cert,
        ocsp_responses=ocsp,
        signing_time=when,
    )


def _outcome(doc: bytes, parts, shapes=None, **kwargs):
    try:
        return verify_signature(doc, parts=parts, now=NOW, shapes=shapes, **kwargs)
    except JPLinkError as exc:
        return (type(exc), exc.code)


def _learnt(signer) -> SignatureShapes:
    shapes = SignatureShapes(learn_interval=0)
    first = _sign(signer, b"<m>first</m>")
    verify_signature(first, parts={"/message.xml": b"<m>first</m>"}, shapes=shapes)
    assert len(shapes) == 1
    return shapes


def test_later_documents_are_recognised_with_the_full_result(signer):
    shapes = _learnt(signer)
    calls = []
    real = shapes.learn
    shapes.learn = lambda *a: calls.append(a) or real(*a)  # type: ignore[method-assign]
    for i in range(4):
        data = b"<m>%d</m>" % i
        when = NOW - dt.timedelta(seconds=i, microseconds=1000 * i)
        doc = _sign(signer, data, when)
        parts = {"/message.xml": data}
        recognised = verify_signature(doc, parts=parts, now=NOW, shapes=shapes)
        assert recognised == verify_signature(doc, parts=parts, now=NOW)
        assert recognised.signing_time == when
    assert calls == []  # every one matched the shape: no full verification


def test_batch_documents_are_recognised(rsa_signer):
    key, cert = rsa_signer
    shapes = SignatureShapes(learn_interval=0)
    for round_ in range(3):
        messages = [
            [SignedPart("/message.xml", b"<m>%d.%d</m>" % (round_, i))]
            for i in range(3)
        ]
        shares = sign_batch(
            messages, key=key, cert=cert, ocsp_responses=OCSP, signing_time=NOW
        )
        for message, share in zip(messages, shares, strict=True):
            args = {
                "parts": {"/message.xml": message[0].data},
                "hash_chain_result": share.hash_chain_result,
                "hash_chain": share.hash_chain,
                "now": NOW,
            }
            full = verify_signature(share.signature_xml, **args)
            assert verify_signature(share.signature_xml, shapes=shapes, **args) == full
    assert len(shapes) == 1


def test_tampering_fails_as_without_shapes(signer):
    shapes = _learnt(signer)
    data = b"<m>pay 100</m>"
    doc = _sign(signer, data)
    # Another message under a valid document.
    tampered = {"/message.xml": b"<m>pay 900</m>"}
    assert _outcome(doc, tampered, shapes) == _outcome(doc, tampered)
    assert _outcome(doc, tampered)[0] is InvalidDigest
    # A signing time changed after signing.
    later = doc.replace(b"T09:00:00.000Z", b"T08:00:00.000Z")
    assert later != doc
    parts = {"/message.xml": data}
    assert _outcome(later, parts, shapes) == _outcome(later, parts)
    assert _outcome(later, parts)[0] in (InvalidDigest, InvalidSignature)
    # The signature of another document.
    other = _sign(signer, b"<m>other</m>")
    start = other.index(b"signature-value") + len(b'signature-value">')
    end = other.index(b"</ds:SignatureValue>")
    s0 = doc.index(b"signature-value") + len(b'signature-value">')
    s1 = doc.index(b"</ds:SignatureValue>")
    swapped = doc[:s0] + other[start:end] + doc[s1:]
    assert _outcome(swapped, parts, shapes) == _outcome(swapped, parts)
    assert _outcome(swapped, parts)[0] is InvalidSignature


def test_markup_in_a_slot_is_not_recognised(rsa_signer):
    shapes = _learnt(rsa_signer)
    data = b"<m/>"
    doc = _sign(rsa_signer, data)
    s0 = doc.index(b"signature-value") + len(b'signature-value">') + 10
    commented = doc[:s0] + b"<!-- x -->" + doc[s0:]
    parts = {"/message.xml": data}
    # A comment inside the value is not part of the text: the full verifier
    # accepts it, and so must the shapes (by not recognising it).
    assert _outcome(commented, parts, shapes) == _outcome(commented, parts)


def test_a_new_ocsp_response_is_a_new_shape(rsa_signer):
    shapes = _learnt(rsa_signer)
    doc = _sign(rsa_signer, b"<m/>", ocsp=(b"\x30\x03\x0a\x01\x01",))
    parts = {"/message.xml": b"<m/>"}
    result = verify_signature(doc, parts=parts, now=NOW, shapes=shapes)
    assert result.ocsp_responses == (b"\x30\x03\x0a\x01\x01",)
    assert len(shapes) == 2


def test_learning_is_rate_limited_per_signer_and_form(rsa_signer):
    shapes = SignatureShapes(learn_interval=3600)
    for ocsp in ((b"\x30\x03\x0a\x01\x00",), (b"\x30\x03\x0a\x01\x01",)):
        doc = _sign(rsa_signer, b"<m/>", ocsp=ocsp)
        verify_signature(doc, parts={"/message.xml": b"<m/>"}, shapes=shapes)
    assert len(shapes) == 1


_BYTES = st.sampled_from([*b"<>&;#\r\n\t A=/x0Z:.-\"'", 0xE6])


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    edits=st.lists(
        st.tuples(st.integers(min_value=0), _BYTES, st.booleans()),
        min_size=1,
        max_size=3,
    )
)
def test_mutated_documents_verify_as_without_shapes(rsa_signer, edits):
    shapes = _learnt(rsa_signer)
    data = b"<m>fuzz</m>"
    doc = bytearray(_sign(rsa_signer, data, NOW - dt.timedelta(seconds=5)))
    for position, byte, insert in edits:
        at = position % len(doc)
        if insert:
            doc.insert(at, byte)
        else:
            doc[at] = byte
    parts = {"/message.xml": data}
    assert _outcome(bytes(doc), parts, shapes) == _outcome(bytes(doc), parts)


def _slot_spans(doc: bytes) -> list[tuple[int, int]]:
    import re

    texts = re.finditer(
        rb"<(?:ds:DigestValue|xades:SigningTime|ds:SignatureValue[^>]*)>([^<]*)<", doc
    )
    return [m.span(1) for m in texts]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    slot=st.integers(min_value=0),
    offset=st.integers(min_value=0),
    byte=_BYTES | st.sampled_from(list(b"AQgw+/0189")),
    insert=st.booleans(),
)
def test_mutated_slot_texts_verify_as_without_shapes(
    signer, slot, offset, byte, insert
):
    shapes = _learnt(signer)
    data = b"<m>slots</m>"
    doc = bytearray(_sign(signer, data, NOW - dt.timedelta(seconds=5)))
    spans = _slot_spans(bytes(doc))
    assert len(spans) >= 5  # two references, two certificate digests, time, value
    start, end = spans[slot % len(spans)]
    at = start + offset % (end - start + 1)
    if insert or at == end:
        doc.insert(at, byte)
    else:
        doc[at] = byte
    parts = {"/message.xml": data}
    assert _outcome(bytes(doc), parts, shapes) == _outcome(bytes(doc), parts)
