"""Containers we build: build -> parse -> verify with a test PKI, and negatives.

The PKI (root CA, OCSP responder, TSA, signing certificate) is made per test
module; the TSA is ``ca_tsa``'s; the OCSP responses come from cryptography's
builder. The time-stamp token is also checked with ``openssl ts -verify``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import subprocess
import warnings
import zipfile

import pytest
from cryptography import x509

from ca_tsa.ocsp.request import parse_ocsp_request
from ca_tsa.ocsp.responder import GOOD, UNKNOWN, CertStatusAnswer, OcspResponder
from ca_tsa.tsa.authority import TimestampAuthority
from jplink.asic import (
    AsicTrust,
    ZipLimits,
    build_asic_container,
    parse_asic_container,
    verify_asic_container,
)
from jplink.errors import (
    CertificateValidationError,
    InvalidDigest,
    MalformedMessage,
    OcspError,
    OcspStale,
    OcspUnknownStatus,
    RevokedCertificate,
    TimestampError,
)
from jplink.security.certs import CertProfile, MemberSubject
from jplink.security.hashchain import build_hash_chains
from jplink.security.ocsp import OcspCertStatus, build_ocsp_request
from jplink.security.signature import SignedPart, sign_batch, sign_message
from jplink.security.signature import verify_signature as _verify_sig
from jplink.security.tsp import build_timestamp_request, verify_timestamp_response
from tests.conftest import require_tool
from tests.support.pki import TestPki, build_test_pki, pem

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
OCSP_AT = T0 + dt.timedelta(minutes=1)
SIGNED_AT = T0 + dt.timedelta(minutes=2)
STAMPED_AT = T0 + dt.timedelta(minutes=3)
NOW = T0 + dt.timedelta(minutes=10)
REVOKED = CertStatusAnswer(
    OcspCertStatus.REVOKED, revoked_at=T0, reason=x509.ReasonFlags.key_compromise
)
MESSAGE = b'<?xml version="1.0"?>\n<Envelope>a\xc3\xa4\xc3\xb5</Envelope>\n'


@dataclasses.dataclass
class Setup:
    pki: TestPki
    cert: x509.Certificate
    key: object
    tsa: TimestampAuthority
    trust: AsicTrust
    serial: int = 1

    def ocsp(self, answer: CertStatusAnswer = GOOD, *, at=OCSP_AT, responder=None):
        responder_issuer = responder or self.pki.ocsp
        ocsp_responder = OcspResponder.create(
            issuer=self.pki.issuing.cert,
            responder_cert=responder_issuer.cert,
            responder_key=responder_issuer.key,
            next_update=None,
        )
        request = parse_ocsp_request(
            build_ocsp_request(self.cert, self.pki.issuing.cert)
        )
        return ocsp_responder.sign_response(request, [answer], now=at)

    def sign(self, message: bytes = MESSAGE, ocsp_der: bytes | None = None) -> bytes:
        return sign_message(
            [SignedPart("/message.xml", message)],
            key=self.key,
            cert=self.cert,
            ocsp_responses=[ocsp_der or self.ocsp()],
            signing_time=SIGNED_AT,
        )

    def stamp(self, data: bytes, *, at: dt.datetime = STAMPED_AT) -> bytes:
        request = build_timestamp_request(data, cert_req=True)
        self.serial += 1
        response = self.tsa.respond(request.der, serial=self.serial, gen_time=at)
        return verify_timestamp_response(
            response, request=request, trusted_tsa_certs=[self.pki.tsa.cert]
        ).token_der


def _make_setup() -> Setup:
    pki = build_test_pki(T0 - dt.timedelta(days=1))
    cert, key = pki.issue(CertProfile.SIGN, MemberSubject("JP", "COM", "1234", "Acme"))
    tsa = TimestampAuthority.create(
        tsa_cert=pki.tsa.cert,
        tsa_key=pki.tsa.key,
        chain=pki.chain,
        policy_oid="1.3.6.1.4.1.99999.1",
        accuracy_ms=0,
    )
    trust = AsicTrust(ca_certs=(pki.root.cert,), tsa_certs=(pki.tsa.cert,))
    return Setup(pki, cert, key, tsa, trust)


@pytest.fixture(scope="module")
def setup() -> Setup:
    return _make_setup()


def _signature_value(signature_xml: bytes, parts: dict[str, bytes]) -> bytes:
    return _verify_sig(signature_xml, parts=parts).signature_value


def _single(setup: Setup, *, ocsp_der: bytes | None = None) -> bytes:
    signature = setup.sign(ocsp_der=ocsp_der)
    token = setup.stamp(_signature_value(signature, {"/message.xml": MESSAGE}))
    return build_asic_container(message=MESSAGE, signature=signature, timestamp=token)


def _rezip(data: bytes, *, drop=(), replace=None, add=()) -> bytes:
    replace = replace or {}
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename in drop:
                continue
            dst.writestr(info, replace.get(info.filename, src.read(info)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns on duplicate names
            for name, blob in add:
                dst.writestr(name, blob)
    return out.getvalue()


# --------------------------------------------------------------------------
# Round trips


def test_single_timestamp_container_round_trips(setup):
    data = _single(setup)
    container = parse_asic_container(data, strict=True)
    assert container.message == MESSAGE
    assert container.timestamp is None  # embedded in the signature
    result = verify_asic_container(data, trust=setup.trust, now=NOW)
    assert result.signer_certificate == setup.cert
    assert result.message == MESSAGE
    assert result.timestamp_time == STAMPED_AT
    assert result.signing_time == SIGNED_AT.replace(microsecond=0)
    assert result.ocsp_time == OCSP_AT
    assert result.batch_timestamp is False
    assert result.certificate_path == (setup.cert, setup.pki.root.cert)


def test_build_is_deterministic_and_lays_out_like_x_road(setup):
    signature = setup.sign()
    token = setup.stamp(_signature_value(signature, {"/message.xml": MESSAGE}))
    one = build_asic_container(message=MESSAGE, signature=signature, timestamp=token)
    two = build_asic_container(message=MESSAGE, signature=signature, timestamp=token)
    assert one == two
    with zipfile.ZipFile(io.BytesIO(one)) as z:
        infos = z.infolist()
        assert z.comment == b"mimetype=application/vnd.etsi.asic-e+zip"
    assert [i.filename for i in infos] == [
        "mimetype",
        "message.xml",
        "META-INF/signatures.xml",
        "META-INF/manifest.xml",
    ]
    assert infos[0].compress_type == zipfile.ZIP_STORED


def test_batch_timestamp_and_batch_signature_round_trip(setup):
    # Two REST messages signed together (message part + body), then
    # time-stamped together: the first one's container carries both chains.
    body = b'{"todo": true}'
    rest = b"POST\r\n/r1/JP/COM/1234/svc\r\nx-road-client:JP/COM/5678\r\n"
    batch = sign_batch(
        [
            [SignedPart("/message.xml", rest), SignedPart("/attachment1", body)],
            [SignedPart("/message.xml", MESSAGE)],
        ],
        key=setup.key,
        cert=setup.cert,
        ocsp_responses=[setup.ocsp()],
        signing_time=SIGNED_AT,
    )
    # The batch time-stamp covers this signature and another record's.
    neighbour = setup.sign(b"<other/>")
    ts = build_hash_chains(
        [
            [("/META-INF/signatures.xml", hashlib.sha512(sig).digest())]
            for sig in (batch[0].signature_xml, neighbour)
        ],
        hash_chain_uri="/ts-hashchain.xml",
    )
    token = setup.stamp(ts.result)
    data = build_asic_container(
        message=rest,
        signature=batch[0].signature_xml,
        attachments=[body],
        hash_chain=batch[0].hash_chain,
        hash_chain_result=batch[0].hash_chain_result,
        timestamp=token,
        ts_hash_chain=ts.chains[0],
        ts_hash_chain_result=ts.result,
    )
    container = parse_asic_container(data, strict=True)
    assert container.timestamp == token and container.attachments == (body,)
    result = verify_asic_container(data, trust=setup.trust, now=NOW)
    assert result.batch_timestamp is True
    assert result.attachments == (body,)
    assert result.signature.hash_chain is not None
    assert result.signature.hash_chain.verified_refs == ("/attachment1", "/message.xml")

    # Tampering with the REST body breaks the signature's hash chain.
    bad = _rezip(data, replace={"attachment1": b'{"todo": false}'})
    with pytest.raises(InvalidDigest) as info:
        verify_asic_container(bad, trust=setup.trust, now=NOW)
    assert info.value.code == "MalformedSignature.InvalidHashChainRef"
    # The neighbour's ts hash chain does not prove this signature.
    other = _rezip(data, replace={"ts-hashchain.xml": ts.chains[1]})
    with pytest.raises(InvalidDigest) as info:
        verify_asic_container(other, trust=setup.trust, now=NOW)
    assert info.value.detail["check"] == "timestamp"


def test_token_verifies_with_openssl(setup, tmp_path):
    openssl = require_tool("openssl")
    data = _single(setup)
    result = verify_asic_container(data, trust=setup.trust, now=NOW)
    token = tmp_path / "token.der"
    token.write_bytes(result.timestamp.token_der)
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pem(setup.pki.root.cert))
    digest = hashlib.sha512(result.signature.signature_value).hexdigest()

    def verify(hex_digest: str) -> subprocess.CompletedProcess[str]:
        args = ["ts", "-verify", "-digest", hex_digest, "-token_in", "-in", str(token)]
        return subprocess.run(
            [openssl, *args, "-CAfile", str(ca)],
            capture_output=True,
            text=True,
            check=False,
        )

    ok = verify(digest)
    assert ok.returncode == 0, ok.stderr
    assert "Verification: OK" in ok.stdout
    assert verify(hashlib.sha512(b"other").hexdigest()).returncode != 0


# --------------------------------------------------------------------------
# Negatives derived here


def test_tampered_message_is_an_invalid_signature_value(setup):
    bad = _rezip(_single(setup), replace={"message.xml": MESSAGE + b" "})
    with pytest.raises(InvalidDigest) as info:
        verify_asic_container(bad, trust=setup.trust, now=NOW)
    assert info.value.code == "InvalidSignatureValue"
    assert info.value.detail["check"] == "signature"


def test_missing_signature_is_a_malformed_container(setup):
    bad = _rezip(_single(setup), drop={"META-INF/signatures.xml"})
    with pytest.raises(MalformedMessage) as info:
        verify_asic_container(bad, trust=setup.trust, now=NOW)
    assert info.value.code == "MalformedAsicContainer"
    assert info.value.detail["check"] == "container"


def test_a_signature_takes_only_one_embedded_timestamp(setup):
    container = parse_asic_container(_single(setup))
    with pytest.raises(MalformedMessage, match="already holds"):
        build_asic_container(
            message=MESSAGE, signature=container.signature, timestamp=b"token"
        )


def test_unstamped_container_is_refused(setup):
    data = build_asic_container(message=MESSAGE, signature=setup.sign())
    with pytest.raises(TimestampError) as info:
        verify_asic_container(data, trust=setup.trust, now=NOW)
    assert info.value.detail["check"] == "timestamp"


def test_wrong_tsa_is_refused(setup):
    other = _make_setup()
    trust = dataclasses.replace(setup.trust, tsa_certs=(other.pki.tsa.cert,))
    with pytest.raises(CertificateValidationError) as info:
        verify_asic_container(_single(setup), trust=trust, now=NOW)
    assert info.value.detail["check"] == "timestamp"


def test_untrusted_signer_is_refused(setup):
    other = _make_setup()
    trust = dataclasses.replace(setup.trust, ca_certs=(other.pki.root.cert,))
    with pytest.raises(CertificateValidationError) as info:
        verify_asic_container(_single(setup), trust=trust, now=NOW)
    assert info.value.detail["check"] == "certificate-chain"


@pytest.mark.parametrize(
    ("status", "at", "error"),
    [
        (REVOKED, OCSP_AT, RevokedCertificate),
        (UNKNOWN, OCSP_AT, OcspUnknownStatus),
        (GOOD, STAMPED_AT - dt.timedelta(hours=2), OcspStale),
        (GOOD, STAMPED_AT + dt.timedelta(hours=1), OcspError),
    ],
    ids=["revoked", "unknown", "stale", "after-timestamp"],
)
def test_bad_ocsp_evidence_is_refused(setup, status, at, error):
    data = _single(setup, ocsp_der=setup.ocsp(status, at=at))
    with pytest.raises(error) as info:
        verify_asic_container(data, trust=setup.trust, now=NOW)
    assert info.value.detail["check"] == "ocsp"


def test_ocsp_signed_by_a_stranger_is_refused(setup):
    other = _make_setup()
    forged = dataclasses.replace(
        setup, pki=dataclasses.replace(setup.pki, ocsp=other.pki.ocsp)
    )
    data = _single(setup, ocsp_der=forged.ocsp())
    with pytest.raises(OcspError, match="authorised responder"):
        verify_asic_container(data, trust=setup.trust, now=NOW)


@pytest.mark.parametrize(
    "name", ["../evil", "/etc/passwd", "META-INF/../../x", "a\\b", "C:evil"]
)
def test_unsafe_entry_names_are_refused(setup, name):
    bad = _rezip(_single(setup), add=[(name, b"x")])
    with pytest.raises(MalformedMessage, match="Unsafe ZIP entry name"):
        parse_asic_container(bad)


def test_duplicate_entries_are_refused(setup):
    bad = _rezip(_single(setup), add=[("message.xml", b"<other/>")])
    with pytest.raises(MalformedMessage, match="Duplicate ZIP entry"):
        parse_asic_container(bad)


def test_unknown_entries_and_bad_mimetype_are_refused(setup):
    data = _single(setup)
    with pytest.raises(MalformedMessage, match="Unexpected entry"):
        parse_asic_container(_rezip(data, add=[("extra.txt", b"x")]))
    with pytest.raises(MalformedMessage, match="mimetype"):
        parse_asic_container(_rezip(data, replace={"mimetype": b"application/zip"}))
    with pytest.raises(MalformedMessage, match="Not a valid ZIP"):
        parse_asic_container(b"PK\x03\x04 not really")


def test_size_limits_hold_even_for_lying_headers(setup):
    data = _single(setup)
    with pytest.raises(MalformedMessage, match="too large"):
        parse_asic_container(data, limits=ZipLimits(max_entry_bytes=100))
    with pytest.raises(MalformedMessage, match="too large"):
        parse_asic_container(data, limits=ZipLimits(max_archive_bytes=100))
    bomb = _rezip(data, add=[("attachment1", b"\0" * 5_000_000)])
    with pytest.raises(MalformedMessage, match="too large"):
        parse_asic_container(bomb, limits=ZipLimits(max_total_bytes=1_000_000))
