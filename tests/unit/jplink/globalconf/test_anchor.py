"""Configuration anchors: parse X-Road's anchor, write our own, reject bad ones."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from jplink.errors import GlobalConfError, XmlSecurityError
from jplink.globalconf import (
    AnchorSource,
    ConfigurationAnchor,
    parse_configuration_anchor,
    serialize_configuration_anchor,
)

from .helpers import rsa_pair

# Verification-certificate-hash of gconf-V6-internalconf.mime.
INTERNAL_CERT_SHA512_B64 = (
    "pc2fwlS1MpbN2rxno4qAi27zvPTNIWxvC5xeHRLIQsPj5RR2J7TuY+6VAH0rm"
    "bDecjtia9AjYDzGIj3i6K9T1w=="
)


@pytest.fixture
def anchor_bytes(xroad_vectors):
    return (xroad_vectors / "gconf-anchor-DEV-internal.xml").read_bytes()


def test_parse_dev_anchor(anchor_bytes):
    import base64

    anchor = parse_configuration_anchor(anchor_bytes)
    assert anchor.instance_identifier == "DEV"
    assert anchor.generated_at == dt.datetime(
        2025, 11, 5, 22, 10, 45, 770000, tzinfo=dt.UTC
    )
    assert [s.download_url for s in anchor.sources] == [
        "http://cs/internalconf",
        "https://cs/internalconf",
    ]
    # Both sources list the same cert: deduplicated for verification.
    (cert,) = anchor.verification_certs
    assert cert.subject.rfc4514_string() == "CN=internalSigningKey"
    digest = hashlib.sha512(cert.public_bytes(Encoding.DER)).digest()
    assert base64.b64encode(digest).decode() == INTERNAL_CERT_SHA512_B64


def test_round_trip_dev_anchor(anchor_bytes):
    anchor = parse_configuration_anchor(anchor_bytes)
    out = serialize_configuration_anchor(anchor)
    assert parse_configuration_anchor(out) == anchor
    assert b"<generatedAt>2025-11-05T22:10:45.770000Z</generatedAt>" in out
    assert serialize_configuration_anchor(anchor) == out


def test_build_anchor_for_central_server():
    _, cert_a = rsa_pair("conf-a")
    _, cert_b = rsa_pair("conf-b")
    anchor = ConfigurationAnchor(
        "JP",
        (
            AnchorSource("http://cs.example/internalconf", (cert_a, cert_b)),
            AnchorSource("https://cs.example/internalconf", (cert_a,)),
        ),
        generated_at=dt.datetime(
            2026, 11, 21, 18, 0, tzinfo=dt.timezone(dt.timedelta(hours=9))
        ),
    )
    out = serialize_configuration_anchor(anchor)
    assert out.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert b"<generatedAt>2026-11-21T09:00:00Z</generatedAt>" in out
    again = parse_configuration_anchor(out)
    assert again == anchor
    assert again.verification_certs == (cert_a, cert_b)


def test_model_misuse():
    _, cert = rsa_pair()
    with pytest.raises(ValueError):
        ConfigurationAnchor("JP", ())
    with pytest.raises(ValueError):
        AnchorSource("http://x", ())
    with pytest.raises(ValueError):
        ConfigurationAnchor(
            "JP",
            (AnchorSource("http://x", (cert,)),),
            generated_at=dt.datetime(2026, 1, 1),
        )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"<instanceIdentifier>DEV</instanceIdentifier>", b"", "instanceIdentifier"),
        (b"<verificationCert>MIIC2D", b"<verificationCert>*IIC2D", "base64"),
        (b"<verificationCert>MIIC2D", b"<verificationCert>AAAAMIIC2D", "certificate"),
        (b"<downloadURL>http://cs/internalconf</downloadURL>", b"", "downloadURL"),
        (
            b"<generatedAt>2025-11-05T22:10:45.770Z",
            b"<generatedAt>yesterday",
            "date-time",
        ),
    ],
)
def test_malformed_anchor(anchor_bytes, old, new, message):
    assert old in anchor_bytes
    with pytest.raises(GlobalConfError, match=message):
        parse_configuration_anchor(anchor_bytes.replace(old, new, 1))


def test_anchor_without_sources_or_certs(anchor_bytes):
    start = anchor_bytes.index(b"<source>")
    end = anchor_bytes.rindex(b"</source>") + len(b"</source>")
    with pytest.raises(GlobalConfError, match="source"):
        parse_configuration_anchor(anchor_bytes[:start] + anchor_bytes[end:])
    first = anchor_bytes.index(b"<verificationCert>")
    first_end = anchor_bytes.index(b"</verificationCert>") + len(b"</verificationCert>")
    with pytest.raises(GlobalConfError, match="verificationCert"):
        parse_configuration_anchor(anchor_bytes[:first] + anchor_bytes[first_end:])


def test_not_an_anchor(xroad_vectors):
    with pytest.raises(GlobalConfError, match="Not a configuration anchor"):
        parse_configuration_anchor(
            (xroad_vectors / "gconf-V6-private-params.xml").read_bytes()
        )
    with pytest.raises(XmlSecurityError):
        parse_configuration_anchor(b"<configurationAnchor")
