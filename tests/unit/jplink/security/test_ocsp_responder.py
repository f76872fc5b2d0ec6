"""The responder's pure core (ca_tsa.ocsp): request parsing, signing, service.

Requests come from independent encoders (cryptography, asn1crypto, the
``openssl ocsp`` command); responses are checked with cryptography, with our
client and with ``openssl ocsp -respin``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
import subprocess
from pathlib import Path

import pytest
from asn1crypto import core
from asn1crypto import ocsp as a_ocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ca_tsa.ocsp import (
    GOOD,
    UNKNOWN,
    CertIdHash,
    CertStatusAnswer,
    OcspResponder,
    OcspService,
    PresignedCache,
    parse_ocsp_request,
)
from jplink.errors import AccessDenied, MalformedMessage, StorageError
from jplink.security.ocsp import (
    OcspCertStatus,
    OcspResponseStatus,
    build_ocsp_request,
    parse_ocsp_response,
    verify_ocsp_response,
)
from tests.conftest import require_tool
from tests.unit.jplink.security.test_ocsp import Pki, make_pki

HOUR = dt.timedelta(hours=1)
NOW = dt.datetime(2026, 11, 21, 9, 0, 0, tzinfo=dt.UTC)
REVOKED = CertStatusAnswer(
    OcspCertStatus.REVOKED,
    revoked_at=NOW - 2 * HOUR,
    reason=x509.ReasonFlags.key_compromise,
)


@pytest.fixture(scope="module", params=["ec", "rsa"])
def pki(request: pytest.FixtureRequest) -> Pki:
    return make_pki(NOW, key_type=request.param)


@pytest.fixture(scope="module")
def responder(pki: Pki) -> OcspResponder:
    return OcspResponder.create(
        issuer=pki.ca,
        responder_cert=pki.ocsp,
        responder_key=pki.ocsp_key,  # type: ignore[arg-type]
        next_update=HOUR,
    )


def asn1_request(
    *,
    alg: str = "sha1",
    name_hash: bytes = b"a" * 20,
    key_hash: bytes = b"b" * 20,
    count: int = 1,
    version: str | int = "v1",
    extensions: list[tuple[str, bool, bytes]] = (),
) -> bytes:
    """An OCSPRequest encoded by asn1crypto (independent of our reader)."""
    cert_id = a_ocsp.CertId(
        {
            "hash_algorithm": {"algorithm": alg},
            "issuer_name_hash": name_hash,
            "issuer_key_hash": key_hash,
            "serial_number": 5,
        }
    )
    tbs: dict = {"version": version, "request_list": [{"req_cert": cert_id}] * count}
    if extensions:
        tbs["request_extensions"] = [
            a_ocsp.TBSRequestExtension(
                {
                    "extn_id": oid,
                    "critical": crit,
                    "extn_value": core.ParsableOctetString(v),
                }
            )
            for oid, crit, v in extensions
        ]
    # asn1crypto insists on parsing a nonce value, so malformed nonces are
    # written under a same-length placeholder OID and renamed afterwards.
    return a_ocsp.OCSPRequest({"tbs_request": tbs}).dump().replace(_PLACEHOLDER, _NONCE)


_PLACEHOLDER = bytes.fromhex("06092b060105050730017f")
_NONCE = bytes.fromhex("06092b0601050507300102")


# --- parsing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [(hashes.SHA1(), CertIdHash.SHA1), (hashes.SHA256(), CertIdHash.SHA256)],
)
@pytest.mark.parametrize("nonce", [None, b"\x00" * 16, b"\xff" * 32])
def test_parse_cryptography_requests(pki: Pki, algorithm, expected, nonce) -> None:
    der = build_ocsp_request(pki.leaf, pki.ca, hash_algorithm=algorithm, nonce=nonce)
    parsed = parse_ocsp_request(der)
    (query,) = parsed.queries
    name = hashlib.new(algorithm.name, pki.ca.subject.public_bytes()).digest()
    assert query.hash_algorithm is expected
    assert query.issuer_name_hash == name
    assert query.serial_number == pki.leaf.serial_number
    assert query.cert_id_der in der
    assert parsed.nonce == nonce
    assert (parsed.nonce_extension is None) == (nonce is None)


def test_parse_openssl_request_with_two_certs_and_nonce(
    pki: Pki, tmp_path: Path
) -> None:
    openssl = require_tool("openssl")
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(pki.ca.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(pki.leaf.public_bytes(pem))
    (tmp_path / "ocsp.pem").write_bytes(pki.ocsp.public_bytes(pem))
    req = tmp_path / "req.der"
    subprocess.run(
        [openssl, "ocsp", "-sha256", "-issuer", str(tmp_path / "ca.pem"),
         "-cert", str(tmp_path / "leaf.pem"), "-cert", str(tmp_path / "ocsp.pem"),
         "-reqout", str(req)],
        check=True, capture_output=True,
    )  # fmt: skip
    parsed = parse_ocsp_request(req.read_bytes())
    assert [q.serial_number for q in parsed.queries] == [
        pki.leaf.serial_number,
        pki.ocsp.serial_number,
    ]
    assert {q.hash_algorithm for q in parsed.queries} == {CertIdHash.SHA256}
    assert parsed.nonce is not None and len(parsed.nonce) == 16


def _valid() -> bytes:
    return asn1_request()


MALFORMED = [
    ("empty", b""),
    ("garbage", b"this is not DER"),
    ("truncated", _valid()[:-1]),
    ("truncated header", _valid()[:5]),
    ("trailing byte", _valid() + b"\x00"),
    ("indefinite length", b"\x30\x80" + _valid()[2:] + b"\x00\x00"),
    ("non-minimal length", b"\x30\x81" + _valid()[1:]),
    ("not a SEQUENCE", b"\x31" + _valid()[1:]),
    ("unknown hash OID", asn1_request(alg="1.2.3.4")),
    ("md5 CertID", asn1_request(alg="md5", name_hash=b"a" * 16, key_hash=b"b" * 16)),
    ("hash length mismatch", asn1_request(alg="sha256")),
    ("version v2", asn1_request(version=1)),
    ("empty requestList", asn1_request(count=0)),
    (
        "unknown critical extension",
        asn1_request(extensions=[("1.2.3.4", True, b"\x05\x00")]),
    ),
    (
        "nonce not OCTET STRING",
        asn1_request(extensions=[("1.3.6.1.5.5.7.48.1.127", False, b"ab")]),
    ),
    (
        "empty nonce",
        asn1_request(extensions=[("1.3.6.1.5.5.7.48.1.127", False, b"\x04\x00")]),
    ),
    (
        "nonce over 128 octets",
        asn1_request(
            extensions=[("1.3.6.1.5.5.7.48.1.127", False, b"\x04\x81\x81" + b"n" * 129)]
        ),
    ),
]


@pytest.mark.parametrize(
    "der", [c[1] for c in MALFORMED], ids=[c[0] for c in MALFORMED]
)
def test_malformed_requests(der: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_ocsp_request(der)


def test_unknown_non_critical_extension_is_ignored() -> None:
    parsed = parse_ocsp_request(
        asn1_request(extensions=[("1.2.3.4", False, b"\x05\x00")])
    )
    assert parsed.nonce is None and len(parsed.queries) == 1


@given(st.binary(max_size=300))
@settings(max_examples=500, deadline=None)
def test_random_bytes_never_escape(data: bytes) -> None:
    # Either a request or MalformedMessage; any other exception fails the test.
    with contextlib.suppress(MalformedMessage):
        parse_ocsp_request(data)


@given(st.data())
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_requests_parse_or_are_malformed(data: st.DataObject) -> None:
    base = bytearray(
        asn1_request(extensions=[("1.3.6.1.5.5.7.48.1.127", False, b"\x04\x02hi")])
    )
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(base) - 1))
        base[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(base)))
    try:
        parsed = parse_ocsp_request(bytes(base[:cut]))
    except MalformedMessage:
        return
    assert parsed.queries  # anything accepted has at least one CertID


# --- signing ----------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [hashes.SHA1(), hashes.SHA256()])
def test_authorize_matches_issuer_under_each_hash(pki, responder, algorithm) -> None:
    responder.authorize(
        parse_ocsp_request(
            build_ocsp_request(pki.leaf, pki.ca, hash_algorithm=algorithm)
        )
    )
    foreign = build_ocsp_request(pki.other_ca, pki.other_ca, hash_algorithm=algorithm)
    with pytest.raises(AccessDenied):
        responder.authorize(parse_ocsp_request(foreign))


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (GOOD, ocsp.OCSPCertStatus.GOOD),
        (REVOKED, ocsp.OCSPCertStatus.REVOKED),
        (UNKNOWN, ocsp.OCSPCertStatus.UNKNOWN),
    ],
)
def test_signed_response_decodes(pki, responder, answer, expected) -> None:
    request = parse_ocsp_request(build_ocsp_request(pki.leaf, pki.ca, nonce=b"q" * 16))
    der = responder.sign_response(
        request, [answer], now=NOW + dt.timedelta(microseconds=7)
    )
    decoded = ocsp.load_der_ocsp_response(der)
    assert decoded.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert decoded.certificate_status is expected
    assert decoded.produced_at_utc == NOW == decoded.this_update_utc
    assert decoded.next_update_utc == NOW + HOUR
    assert decoded.serial_number == pki.leaf.serial_number
    assert decoded.certificates == [pki.ocsp]
    assert (
        decoded.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        == b"q" * 16
    )
    if answer is REVOKED:
        assert decoded.revocation_time_utc == NOW - 2 * HOUR
        assert decoded.revocation_reason is x509.ReasonFlags.key_compromise
    if answer is GOOD:  # and our client accepts it (signature, CertID, nonce)
        verified = verify_ocsp_response(
            der, cert=pki.leaf, issuer=pki.ca, now=NOW, max_age=HOUR, nonce=b"q" * 16
        )
        assert verified.responder == pki.ocsp


def test_many_cert_ids_in_one_response(pki, responder) -> None:
    body = ocsp.OCSPRequestBuilder().add_certificate(pki.leaf, pki.ca, hashes.SHA256())
    single = parse_ocsp_request(body.build().public_bytes(serialization.Encoding.DER))
    request = type(single)(queries=single.queries * 3)
    der = responder.sign_response(request, [GOOD, REVOKED, UNKNOWN], now=NOW)
    statuses = [r.status for r in parse_ocsp_response(der).responses]
    assert statuses == [
        OcspCertStatus.GOOD,
        OcspCertStatus.REVOKED,
        OcspCertStatus.UNKNOWN,
    ]


def test_openssl_verifies_signed_response(pki, responder, tmp_path: Path) -> None:
    openssl = require_tool("openssl")
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(pki.ca.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(pki.leaf.public_bytes(pem))
    now = dt.datetime.now(dt.UTC)
    for digest, algorithm in (("-sha1", hashes.SHA1()), ("-sha256", hashes.SHA256())):
        request = parse_ocsp_request(
            build_ocsp_request(pki.leaf, pki.ca, hash_algorithm=algorithm)
        )
        (tmp_path / "resp.der").write_bytes(
            responder.sign_response(request, [REVOKED], now=now)
        )
        out = subprocess.run(
            [openssl, "ocsp", "-respin", str(tmp_path / "resp.der"), "-CAfile",
             str(tmp_path / "ca.pem"), "-issuer", str(tmp_path / "ca.pem"), digest,
             "-cert", str(tmp_path / "leaf.pem"), "-no_nonce", "-resp_text"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert "Response verify OK" in out.stderr + out.stdout
        assert re.search(r"leaf.pem: revoked", out.stdout)
        assert "Reason: keyCompromise" in out.stdout


def test_key_must_match_certificate(pki) -> None:
    from jplink.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        OcspResponder.create(
            issuer=pki.ca,
            responder_cert=pki.ocsp,
            responder_key=pki.ca_key,
            next_update=None,
        )


# --- service: statuses, errors, pre-produced responses ----------------------


class FakeLookup:
    def __init__(self, statuses: dict[int, CertStatusAnswer]) -> None:
        self.statuses = statuses
        self.calls = 0
        self.fail = False

    async def __call__(self, serials):
        self.calls += 1
        if self.fail:
            raise StorageError("database is down")
        return [self.statuses.get(s, UNKNOWN) for s in serials]


def _status(der: bytes) -> OcspResponseStatus:
    return parse_ocsp_response(der).response_status


async def test_service_maps_failures(pki, responder) -> None:
    lookup = FakeLookup({pki.leaf.serial_number: GOOD})
    service = OcspService(responder, lookup)
    assert _status(await service.answer(b"\x00garbage", now=NOW)) is (
        OcspResponseStatus.MALFORMED_REQUEST
    )
    foreign = build_ocsp_request(pki.other_ca, pki.other_ca)
    assert (
        _status(await service.answer(foreign, now=NOW))
        is OcspResponseStatus.UNAUTHORIZED
    )
    assert lookup.calls == 0  # no database work for refused requests
    lookup.fail = True
    ok = build_ocsp_request(pki.leaf, pki.ca)
    assert _status(await service.answer(ok, now=NOW)) is OcspResponseStatus.TRY_LATER
    lookup.fail = False
    assert _status(await service.answer(ok, now=NOW)) is OcspResponseStatus.SUCCESSFUL


async def test_presigned_reuse_rechecks_status(pki, responder) -> None:
    lookup = FakeLookup({pki.leaf.serial_number: GOOD})
    service = OcspService(
        responder, lookup, cache=PresignedCache(reuse_for=dt.timedelta(seconds=60))
    )
    request = build_ocsp_request(pki.leaf, pki.ca)
    first = await service.answer(request, now=NOW)
    assert await service.answer(request, now=NOW + dt.timedelta(seconds=30)) == first
    assert lookup.calls == 2  # the database is asked every time
    # A revocation is visible on the very next request.
    lookup.statuses[pki.leaf.serial_number] = REVOKED
    revoked = await service.answer(request, now=NOW + dt.timedelta(seconds=31))
    assert parse_ocsp_response(revoked).responses[0].status is OcspCertStatus.REVOKED
    # Past the reuse window a new response (new thisUpdate) is signed.
    later = await service.answer(request, now=NOW + dt.timedelta(seconds=200))
    assert parse_ocsp_response(later).responses[0].this_update == NOW + dt.timedelta(
        seconds=200
    )


async def test_nonce_requests_are_never_reused(pki, responder) -> None:
    service = OcspService(
        responder,
        FakeLookup({}),
        cache=PresignedCache(reuse_for=dt.timedelta(seconds=60)),
    )
    one = await service.answer(
        build_ocsp_request(pki.leaf, pki.ca, nonce=b"1" * 16), now=NOW
    )
    two = await service.answer(
        build_ocsp_request(pki.leaf, pki.ca, nonce=b"2" * 16), now=NOW
    )
    assert parse_ocsp_response(one).nonce == b"1" * 16
    assert parse_ocsp_response(two).nonce == b"2" * 16
