"""ASiC-E containers and a message-log archive made by X-Road itself.

Vectors: /work/shared/xroad/vectors (INDEX.md sections C and D). They are read
in place, never copied. The DEV samples verify at their own time-stamp's
genTime (2024-07..12); ``NOW`` lies after all of them, inside the certificates'
validity (the CAs run to 2044).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile
from pathlib import Path

import pytest
from cryptography.x509.oid import NameOID

from jplink.asic import (
    AsicTrust,
    load_asic_trust,
    parse_asic_container,
    verify_archive_linking,
    verify_asic_container,
)
from jplink.errors import (
    CertificateValidationError,
    InvalidDigest,
    MalformedMessage,
    TimestampError,
)
from jplink.security.ocsp import OcspCertStatus

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

# (file, signer memberCode (CN, FiVRK profile), batch time-stamp, unverified refs)
VALID = [
    ("asic-valid-signed-message.asice", "4321", False, ()),
    ("asic-valid-batch-ts.asice", "4321", True, ()),
    ("asic-valid-non-batch-rest.asice", "1234", True, ()),
    ("asic-valid-signed-hashchain.asice", "4321", False, ("/attachment1",)),
]


@pytest.fixture(scope="module")
def dev_trust(xroad_vectors: Path) -> AsicTrust:
    return load_asic_trust(
        (xroad_vectors / "asic-trust-DEV-shared-params.xml").read_bytes()
    )


def _cn(cert) -> str:
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def test_trust_comes_from_the_shared_parameters(dev_trust):
    assert [_cn(c) for c in dev_trust.ca_certs] == ["Test CA"]
    assert [_cn(c) for c in dev_trust.tsa_certs] == ["Test TSA"]
    assert [_cn(c) for c in dev_trust.ocsp_responder_certs] == ["Test OCSP"]
    assert dev_trust.ocsp_freshness == dt.timedelta(seconds=3600)


@pytest.mark.parametrize(("name", "member_code", "batch_ts", "unverified"), VALID)
def test_x_road_containers_verify(
    xroad_vectors, dev_trust, name, member_code, batch_ts, unverified
):
    data = (xroad_vectors / name).read_bytes()
    result = verify_asic_container(data, trust=dev_trust, now=NOW)

    assert _cn(result.signer_certificate) == member_code
    assert result.batch_timestamp is batch_ts
    assert result.unverified_refs == unverified
    assert result.ocsp_status is OcspCertStatus.GOOD
    # The OCSP response is fresh at genTime: within 3600 s before it.
    assert dt.timedelta(0) <= result.timestamp_time - result.ocsp_time
    assert result.timestamp_time - result.ocsp_time <= dt.timedelta(seconds=3600)
    assert result.signing_time <= result.timestamp_time
    assert _cn(result.certificate_path[-1]) == "Test CA"
    # The result hands back the signed bytes exactly as in the container.
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert result.message == z.read("message.xml")


def test_single_timestamp_covers_the_signature_value(xroad_vectors, dev_trust):
    data = (xroad_vectors / "asic-valid-signed-message.asice").read_bytes()
    result = verify_asic_container(data, trust=dev_trust, now=NOW)
    assert (
        result.timestamp.imprint.digest
        == hashlib.sha512(result.signature.signature_value).digest()
    )


def test_batch_timestamp_covers_the_ts_hash_chain_result(xroad_vectors, dev_trust):
    data = (xroad_vectors / "asic-valid-batch-ts.asice").read_bytes()
    container = parse_asic_container(data)
    assert container.ts_hash_chain_result is not None
    result = verify_asic_container(data, trust=dev_trust, now=NOW)
    assert (
        result.timestamp.imprint.digest
        == hashlib.sha512(container.ts_hash_chain_result).digest()
    )


def test_rest_container_exposes_its_attachment(xroad_vectors, dev_trust):
    data = (xroad_vectors / "asic-valid-non-batch-rest.asice").read_bytes()
    result = verify_asic_container(data, trust=dev_trust, now=NOW)
    assert result.message.startswith(b"200\r\nOK\r\n")
    assert len(result.attachments) == 1
    assert result.attachments[0].startswith(b'{"message": "Hello')


def test_wrong_message_is_rejected_as_invalid_signature_value(xroad_vectors, dev_trust):
    data = (xroad_vectors / "asic-NEG-wrong-message.asice").read_bytes()
    with pytest.raises(InvalidDigest) as info:
        verify_asic_container(data, trust=dev_trust, now=NOW)
    assert info.value.code == "InvalidSignatureValue"
    assert info.value.detail["check"] == "signature"
    assert info.value.detail["uri"] == "/message.xml"
    assert "signature check failed" in str(info.value)


def test_a_time_stamp_from_the_future_is_refused(xroad_vectors, dev_trust):
    data = (xroad_vectors / "asic-valid-batch-ts.asice").read_bytes()
    before = dt.datetime(2024, 12, 5, 7, 0, tzinfo=dt.UTC)
    with pytest.raises(TimestampError) as info:
        verify_asic_container(data, trust=dev_trust, now=before)
    assert info.value.detail["check"] == "timestamp"


def test_container_verifies_only_with_its_own_trust(xroad_vectors):
    cs_trust = load_asic_trust(
        (xroad_vectors / "mlog-trust-CS-shared-params.xml").read_bytes()
    )
    data = (xroad_vectors / "asic-valid-signed-message.asice").read_bytes()
    with pytest.raises(CertificateValidationError) as info:
        verify_asic_container(data, trust=cs_trust, now=NOW)
    assert info.value.detail["check"] == "timestamp"


def test_x_road_containers_do_not_meet_the_strict_mimetype_rule(xroad_vectors):
    # X-Road's writer deflates "mimetype"; ETSI wants it first and stored.
    data = (xroad_vectors / "asic-valid-batch-ts.asice").read_bytes()
    assert parse_asic_container(data).mimetype_first_and_stored is False
    with pytest.raises(MalformedMessage, match="first entry"):
        parse_asic_container(data, strict=True)


# --------------------------------------------------------------------------
# Message-log archive (INDEX.md section D)


def test_archive_linking_and_inner_container_verify(xroad_vectors):
    data = (xroad_vectors / "mlog-message-archive-0.zip").read_bytes()
    link = verify_archive_linking(data, previous_digest=None)

    assert link.previous_digest is None and link.previous_name is None
    assert link.algorithm == "SHA-512"
    [entry] = link.entries
    assert entry.name == "3a2a743f-56da-4085-b643-79e335341eb3-request-1.asice"
    # d1 = hex(SHA-512("" + hex(SHA-512(asice bytes)))), computed here directly.
    expected = hashlib.sha512(
        hashlib.sha512(entry.data).hexdigest().encode()
    ).hexdigest()
    assert entry.digest == expected == link.last_digest
    # archive-1's name in INDEX.md carries the first 16 hex of this digest.
    assert link.last_digest.startswith("9011ab557706b505")

    cs_trust = load_asic_trust(
        (xroad_vectors / "mlog-trust-CS-shared-params.xml").read_bytes()
    )
    result = verify_asic_container(entry.data, trust=cs_trust, now=NOW)
    assert _cn(result.signer_certificate) == "0245437-2"
    assert result.signature.hash_chain is not None
    assert result.unverified_refs == ("/attachment1", "/attachment2", "/attachment3")


def test_archive_with_another_predecessor_is_refused(xroad_vectors):
    data = (xroad_vectors / "mlog-message-archive-0.zip").read_bytes()
    with pytest.raises(InvalidDigest) as info:
        verify_archive_linking(data, previous_digest="00" * 64)
    assert info.value.code == "InvalidArchiveLink"
