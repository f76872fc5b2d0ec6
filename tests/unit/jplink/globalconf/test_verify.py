"""verify_directory / verify_file against X-Road's real signed directories."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest

from jplink.errors import GlobalConfError, GlobalConfExpired, GlobalConfSignatureError
from jplink.globalconf import (
    ContentIdentifier,
    DigestAlgorithm,
    SignatureAlgorithm,
    build_signed_directory,
    parse_shared_parameters,
    verify_directory,
    verify_file,
)

from .helpers import dev_anchor, resign, rsa_pair, signature_line, split_http

BEFORE_EXPIRY = dt.datetime(2035, 11, 11, 3, 7, 39, tzinfo=dt.UTC)
AFTER_EXPIRY = dt.datetime(2035, 11, 11, 3, 7, 41, tzinfo=dt.UTC)


@pytest.fixture
def internalconf(xroad_vectors):
    return split_http((xroad_vectors / "gconf-V6-internalconf.mime").read_bytes())


@pytest.fixture
def externalconf(xroad_vectors):
    raw = (xroad_vectors / "gconf-V6-externalconf-NEG-hashmismatch.mime").read_bytes()
    return split_http(raw)


@pytest.fixture
def anchor_certs(xroad_vectors):
    return dev_anchor(xroad_vectors).verification_certs


def test_internalconf_verifies_with_anchor_cert(internalconf, anchor_certs, now):
    content_type, body = internalconf
    result = verify_directory(
        body, content_type, verification_certs=anchor_certs, now=now
    )
    assert result.version == 6
    assert result.expire_date == dt.datetime(2035, 11, 11, 3, 7, 40, tzinfo=dt.UTC)
    assert result.signature_algorithm is SignatureAlgorithm.RSA_SHA512
    assert result.signing_cert.subject.rfc4514_string() == "CN=internalSigningKey"
    # The signed bytes are the inner multipart, delimiters included.
    inner = b"--CNo5S3hBEIHbDGmANPgi"
    assert result.signed_data.startswith(inner + b"\r\n")
    assert result.signed_data.endswith(inner + b"--\r\n")
    assert [e.content_identifier for e in result.entries] == [
        ContentIdentifier.SHARED_PARAMETERS,
        ContentIdentifier.PRIVATE_PARAMETERS,
    ]
    assert {e.instance for e in result.entries} == {"DEV"}  # instance='DEV'
    (private,) = result.entries_for(ContentIdentifier.PRIVATE_PARAMETERS, "DEV")
    assert private.content_location.endswith("/private-params.xml")
    assert result.entries_for("SHARED-PARAMETERS", "EE") == ()


def test_internalconf_file_hashes_match(internalconf, anchor_certs, now, xroad_vectors):
    content_type, body = internalconf
    result = verify_directory(
        body, content_type, verification_certs=anchor_certs, now=now
    )
    files = {
        "shared-params.xml": "gconf-V6-shared-params.xml",
        "private-params.xml": "gconf-V6-private-params.xml",
    }
    for entry in result.entries:
        assert entry.hash_algorithm is DigestAlgorithm.SHA512
        data = (
            xroad_vectors / files[entry.content_location.rsplit("/", 1)[1]]
        ).read_bytes()
        # Independent check of what the directory lists.
        assert entry.hash == hashlib.sha512(data).digest()
        verified = verify_file(entry, data)
        assert verified.data == data and verified.entry == entry


def test_internalconf_valid_until_expiry_then_expired(internalconf, anchor_certs):
    content_type, body = internalconf
    verify_directory(
        body, content_type, verification_certs=anchor_certs, now=BEFORE_EXPIRY
    )
    with pytest.raises(GlobalConfExpired) as info:
        verify_directory(
            body, content_type, verification_certs=anchor_certs, now=AFTER_EXPIRY
        )
    assert info.value.code == "OutdatedGlobalConf"


def test_externalconf_signature_ok_but_hash_mismatch(externalconf, xroad_vectors, now):
    shared_bytes = (xroad_vectors / "gconf-V6-shared-params.xml").read_bytes()
    shared = parse_shared_parameters(shared_bytes)
    content_type, body = externalconf
    result = verify_directory(
        body,
        content_type,
        verification_certs=shared.verification_certs(external=True),
        now=now,
    )
    assert result.signing_cert.subject.rfc4514_string() == "CN=externalSigningKey"
    (entry,) = result.entries
    assert entry.content_identifier == "SHARED-PARAMETERS"
    with pytest.raises(GlobalConfSignatureError, match="does not match"):
        verify_file(entry, shared_bytes)


def test_externalconf_not_signed_by_internal_key(externalconf, anchor_certs, now):
    content_type, body = externalconf
    with pytest.raises(GlobalConfSignatureError, match="No trusted verification"):
        verify_directory(body, content_type, verification_certs=anchor_certs, now=now)


def test_wrong_cert_is_rejected(internalconf, now):
    content_type, body = internalconf
    _, stranger = rsa_pair("stranger")
    with pytest.raises(GlobalConfSignatureError):
        verify_directory(body, content_type, verification_certs=[stranger], now=now)
    with pytest.raises(GlobalConfSignatureError):
        verify_directory(body, content_type, verification_certs=[], now=now)


def test_flipped_signature_bit_is_rejected(internalconf, anchor_certs, now):
    content_type, body = internalconf
    old = signature_line(body)
    sig = bytearray(base64.b64decode(old))
    sig[len(sig) // 2] ^= 0x01
    tampered = body.replace(old, base64.b64encode(bytes(sig)))
    assert tampered != body
    with pytest.raises(GlobalConfSignatureError, match="does not verify"):
        verify_directory(
            tampered, content_type, verification_certs=anchor_certs, now=now
        )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Expire-date: 2035-11-11T03:07:40Z", b"Expire-date: 2045-11-11T03:07:40Z"),
        (b"Version: 6", b"Version: 7"),
        (b"3EFho9gVV0weUFe76Nga", b"3EFho9gVV0weUFe76Ngb"),
        (b"instance='DEV'", b"instance='XYZ'"),
    ],
)
def test_tampered_signed_bytes_are_rejected(internalconf, anchor_certs, now, old, new):
    content_type, body = internalconf
    assert body.count(old) >= 1
    tampered = body.replace(old, new, 1)
    with pytest.raises(GlobalConfSignatureError):
        verify_directory(
            tampered, content_type, verification_certs=anchor_certs, now=now
        )


def test_changed_signature_algorithm_is_rejected(internalconf, anchor_certs, now):
    content_type, body = internalconf
    tampered = body.replace(b"#rsa-sha512", b"#rsa-sha256")
    with pytest.raises(GlobalConfSignatureError):
        verify_directory(
            tampered, content_type, verification_certs=anchor_certs, now=now
        )
    ecdsa = body.replace(b"#rsa-sha512", b"#ecdsa-sha512")
    with pytest.raises(GlobalConfSignatureError, match="does not fit the key"):
        verify_directory(ecdsa, content_type, verification_certs=anchor_certs, now=now)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"#rsa-sha512", b"#rsa-sha1", "Unsupported signature algorithm"),
        (b"Signature-Algorithm-Id", b"X-Signature-Algorithm", "Signature-Algorithm-Id"),
        (
            b"Verification-certificate-hash:",
            b"X-Hash:",
            "Verification-certificate-hash",
        ),
        (
            b'; hash-algorithm-id="http://www.w3.org/2001/04/xmlenc#sha512"',
            b"",
            "lacks",
        ),
        (b'xmlenc#sha512"', b'xmldsig#sha1"', "Unsupported hash algorithm"),
        (b"Version: 6", b"Version: six", "Version"),
        (b"Content-location: /V6", b"X-location: /V6", "Content-location"),
        (b"Content-identifier: PRIVATE", b"Content-idx: PRIVATE", "Content-identifier"),
        (b"Expire-date: 2035-11-11T03:07:40Z", b"Expire-date: tomorrow", "Expire-date"),
        (b"boundary=CNo5S3hBEIHbDGmANPgi", b"charset=x", "boundary"),
        (b"multipart/mixed", b"text/plain", "multipart/mixed"),
    ],
)
def test_malformed_directory_gives_clear_error(
    internalconf, anchor_certs, now, old, new, message
):
    content_type, body = internalconf
    assert old in body
    with pytest.raises(GlobalConfError, match=message):
        verify_directory(
            body.replace(old, new, 1),
            content_type,
            verification_certs=anchor_certs,
            now=now,
        )


def test_missing_expire_date_is_outdated_not_trusted(now):
    key, cert = rsa_pair()
    content_type, body = build_signed_directory(
        [],
        instance="DEV",
        signing_key=key,
        signing_cert=cert,
        expire=now + dt.timedelta(minutes=10),
        now=now,
    )
    line = next(x for x in body.split(b"\r\n") if x.startswith(b"Expire-date"))
    stripped = resign(body.replace(line + b"\r\n", b""), key)
    # Correctly signed, so only the missing date stops it.
    with pytest.raises(GlobalConfExpired, match="no Expire-date"):
        verify_directory(stripped, content_type, verification_certs=[cert], now=now)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b"", id="empty"),
        pytest.param(lambda b: b.replace(b"\r\n", b"\n"), id="lf-only"),
        pytest.param(
            lambda b: (
                b[: b.rindex(b"\r\n--lmyAPTb9i7P4fQ7MmpnZ\r\n")]
                + b"\r\n--lmyAPTb9i7P4fQ7MmpnZ--\r\n"
            ),
            id="no-signature-part",
        ),
        pytest.param(
            lambda b: b.replace(signature_line(b), b"!!not base64!!"),
            id="bad-base64-signature",
        ),
        pytest.param(
            lambda b: b.replace(b"3EFho9gVV0weUFe76Ng", b"3EFho9gVV0we*Fe76Ng"),
            id="bad-base64-hash",
        ),
    ],
)
def test_broken_mime_gives_global_conf_error(internalconf, anchor_certs, now, mutate):
    content_type, body = internalconf
    with pytest.raises(GlobalConfError):
        verify_directory(
            mutate(body), content_type, verification_certs=anchor_certs, now=now
        )


def test_wrong_outer_content_type(internalconf, anchor_certs, now):
    _, body = internalconf
    with pytest.raises(GlobalConfError, match="multipart/related"):
        verify_directory(body, "text/xml", verification_certs=anchor_certs, now=now)


def test_naive_now_is_misuse(internalconf, anchor_certs):
    content_type, body = internalconf
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_directory(
            body,
            content_type,
            verification_certs=anchor_certs,
            now=dt.datetime(2030, 1, 1),
        )
