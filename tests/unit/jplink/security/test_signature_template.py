"""Template-filled signature documents are the tree builder's, byte for byte."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jplink.security._signature_build import finish_document, signature_tree
from jplink.security._signature_model import DEFAULT_POLICY, SignedPart
from jplink.security._signature_template import _TEMPLATES, _shape, signature_document
from jplink.security.signature import verify_signature
from tests.unit.jplink.security.test_signature_roundtrip import _make_signer

NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
OCSP = (b"\x30\x03\x0a\x01\x00",)


def _both(parts, key, cert, when, ocsp=OCSP, extra=()):
    args = {
        "key": key,
        "cert": cert,
        "ocsp_responses": ocsp,
        "extra_certificates": extra,
        "signing_time": when,
        "policy": DEFAULT_POLICY,
    }
    reference = finish_document(signature_tree(parts, **args), key)
    return signature_document(parts, **args), reference


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    data=st.binary(max_size=300),
    micros=st.integers(min_value=0, max_value=86_400 * 10**6 - 1),
    uri=st.sampled_from(["/message.xml", "/sig-hashchainresult.xml"]),
    mime=st.sampled_from(["text/xml", "application/hash-chain-result"]),
)
def test_template_reproduces_tree_builder(rsa_signer, data, micros, uri, mime):
    key, cert = rsa_signer
    when = NOW + dt.timedelta(microseconds=micros)
    filled, built = _both([SignedPart(uri, data, mime)], key, cert, when)
    assert filled == built
    if uri == "/message.xml":  # a hash-chain result needs its chain to verify
        verify_signature(filled, parts={uri: data}, now=when + dt.timedelta(seconds=1))


def test_every_call_after_the_first_matches(rsa_signer):
    key, cert = rsa_signer
    extra = (_make_signer(ec.generate_private_key(ec.SECP256R1()))[1],)
    for i in range(5):
        part = SignedPart("/message.xml", b"<m>%d</m>" % i)
        filled, built = _both([part], key, cert, NOW, extra=extra)
        assert filled == built


def test_ec_template_verifies_and_differs_only_in_the_value(ec_signer):
    key, cert = ec_signer
    for i in range(3):
        part = SignedPart("/message.xml", b"<m>%d</m>" % i)
        filled, built = _both([part], key, cert, NOW)
        verify_signature(filled, parts={part.uri: part.data}, now=NOW)
        # ECDSA values are randomised; everything else is the same bytes.
        value = re.compile(rb"<ds:SignatureValue Id=\"signature-value\">[^<]*<")
        assert value.sub(b"V", filled) == value.sub(b"V", built)
        assert filled != built


def test_new_ocsp_responses_make_a_new_document(rsa_signer):
    key, cert = rsa_signer
    part = SignedPart("/message.xml", b"<m/>")
    first, _ = _both([part], key, cert, NOW)
    second, built = _both([part], key, cert, NOW, ocsp=(b"\x30\x03\x0a\x01\x01",))
    assert second == built
    assert second != first
    result = verify_signature(second, parts={part.uri: part.data}, now=NOW)
    assert result.ocsp_responses == (b"\x30\x03\x0a\x01\x01",)


def test_marker_text_in_a_uri_falls_back_to_the_tree(rsa_signer):
    key, cert = rsa_signer
    for data in (b"a", b"b"):
        part = SignedPart("/jplinkmarkdigestend", data)
        filled, built = _both([part], key, cert, NOW)
        assert filled == built
        verify_signature(filled, parts={part.uri: data}, now=NOW)


def test_several_parts_are_built_as_a_tree(rsa_signer):
    key, cert = rsa_signer
    parts = [SignedPart("/message.xml", b"<m/>"), SignedPart("/attachment1", b"x")]
    filled, built = _both(parts, key, cert, NOW)
    assert filled == built


def test_template_path_still_checks_key_and_time(rsa_signer, ec_signer):
    key, cert = rsa_signer
    part = SignedPart("/message.xml", b"<m/>")
    _both([part], key, cert, NOW)  # the template exists now
    with pytest.raises(ValueError, match="does not belong"):
        signature_document(
            [part],
            key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
            cert=cert,
            ocsp_responses=OCSP,
            extra_certificates=(),
            signing_time=NOW,
            policy=DEFAULT_POLICY,
        )
    with pytest.raises(ValueError, match="timezone-aware"):
        signature_document(
            [part],
            key=key,
            cert=cert,
            ocsp_responses=OCSP,
            extra_certificates=(),
            signing_time=NOW.replace(tzinfo=None),
            policy=DEFAULT_POLICY,
        )


@pytest.mark.parametrize("which", ["rsa", "ec"])
def test_a_lone_part_is_filled_from_a_template(which, rsa_signer, ec_signer):
    # The point of the template is speed: a signer's single-part documents
    # must really come from it (a template that failed its check is None).
    key, cert = rsa_signer if which == "rsa" else ec_signer
    part = SignedPart("/message.xml", b"<m/>")
    _both([part], key, cert, NOW)
    known, template = _TEMPLATES.get(_shape(part, key, cert, OCSP, (), DEFAULT_POLICY))
    assert known
    assert template is not None
