"""RFC 3161 client (jplink.security.tsp) against the TSA core, in memory.

Both sides are exercised together, h11-style: requests built by the client are
answered by ``ca_tsa.tsa.TimestampAuthority`` and the answers checked by the
client. Independent checks with openssl are in ``test_tsp_openssl.py``.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from asn1crypto import cms, core, tsp
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from ca_tsa.tsa import TimestampAuthority, build_rejection
from jplink.errors import (
    TimestampRejected,
)
from jplink.security.tsp import (
    FailInfo,
    HashAlgorithm,
    PKIStatus,
    build_timestamp_request,
    verify_timestamp_response,
    verify_timestamp_token,
)
from tests.conftest import FIXED_NOW

from .test_tsp_pki import Pki, make_pki

POLICY = "1.3.6.1.4.1.57264.1.1"
DATA = b"message log hash chain result"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def authority(pki: Pki) -> TimestampAuthority:
    return TimestampAuthority.create(
        tsa_cert=pki.tsa,
        tsa_key=pki.tsa_key,
        chain=(pki.root,),
        policy_oid=POLICY,
        accuracy_ms=1500,
    )


class Resp(core.Sequence):
    """TimeStampResp with an OPTIONAL token (asn1crypto's requires one)."""

    _fields = [  # noqa: RUF012 - asn1crypto spec
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def _status(resp_der: bytes) -> tuple[int, set[str]]:
    status = Resp.load(resp_der, strict=True)["status"]
    return int(status["status"]), set(status["fail_info"].native or ())


# -- requests -----------------------------------------------------------------

REQUEST_CASES = [
    # (hash_algorithm, nonce, cert_req, policy)
    ("sha256", None, True, None),
    ("sha384", 1, False, None),
    ("sha512", 2**64 + 5, True, POLICY),
    (HashAlgorithm.SHA512, None, False, "1.2.3.4"),
]


@pytest.mark.parametrize(("alg", "nonce", "cert_req", "policy"), REQUEST_CASES)
def test_request_encodes_exactly_what_was_asked(alg, nonce, cert_req, policy):
    req = build_timestamp_request(
        DATA, hash_algorithm=alg, nonce=nonce, cert_req=cert_req, policy=policy
    )
    algorithm = HashAlgorithm.from_name(alg)
    parsed = tsp.TimeStampReq.load(req.der, strict=True)
    assert parsed["version"].native == "v1"
    imprint = parsed["message_imprint"]
    assert imprint["hash_algorithm"]["algorithm"].dotted == algorithm.value
    assert imprint["hashed_message"].native == hashlib.new(alg_name(alg), DATA).digest()
    assert parsed["nonce"].native == nonce
    assert parsed["cert_req"].native is cert_req
    assert parsed["req_policy"].native == policy
    assert req.imprint.digest == imprint["hashed_message"].native
    assert (req.nonce, req.cert_req, req.policy) == (nonce, cert_req, policy)


def alg_name(alg: str | HashAlgorithm) -> str:
    return HashAlgorithm.from_name(alg).hashlib_name


def test_request_from_digest_equals_request_from_data():
    digest = hashlib.sha384(DATA).digest()
    a = build_timestamp_request(DATA, hash_algorithm="SHA-384", nonce=7)
    b = build_timestamp_request(digest=digest, hash_algorithm="sha384", nonce=7)
    assert a.der == b.der


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"data": DATA, "digest": b"x" * 64}, TypeError),
        ({}, TypeError),
        ({"digest": b"x" * 63}, ValueError),
        ({"data": DATA, "hash_algorithm": "sha1"}, ValueError),
        ({"data": DATA, "hash_algorithm": "md5"}, ValueError),
    ],
)
def test_request_misuse_is_a_programming_error(kwargs, error):
    with pytest.raises(error):
        build_timestamp_request(**kwargs)


# -- granted round trips --------------------------------------------------------


@pytest.mark.parametrize("alg", ["sha256", "sha384", "sha512"])
@pytest.mark.parametrize("nonce", [None, 0x0123456789ABCDEF])
@pytest.mark.parametrize("cert_req", [True, False])
def test_round_trip_is_verified(pki, authority, alg, nonce, cert_req):
    req = build_timestamp_request(
        DATA, hash_algorithm=alg, nonce=nonce, cert_req=cert_req
    )
    gen_time = FIXED_NOW + dt.timedelta(microseconds=123456)
    resp = authority.respond(req.der, serial=4242, gen_time=gen_time)
    # With certReq the token carries the TSA certificate, so the root is
    # enough; without, the verifier needs the TSA certificate itself.
    trusted = [pki.root] if cert_req else [pki.tsa]
    result = verify_timestamp_response(
        resp, request=req, trusted_tsa_certs=trusted, now=FIXED_NOW
    )
    assert result.serial == 4242
    assert result.gen_time == FIXED_NOW + dt.timedelta(milliseconds=123)
    assert result.policy == POLICY
    assert result.accuracy == dt.timedelta(milliseconds=1500)
    assert result.nonce == nonce
    assert result.tsa_cert == pki.tsa
    assert result.imprint == req.imprint
    token = cms.ContentInfo.load(result.token_der)
    certs = token["content"]["certificates"]
    assert (certs.native is not None) is cert_req
    again = verify_timestamp_token(
        result.token_der, data=DATA, trusted_tsa_certs=trusted
    )
    assert again == result


def test_token_signed_attributes_are_the_rfc_5816_set(authority):
    req = build_timestamp_request(DATA)
    resp = tsp.TimeStampResp.load(
        authority.respond(req.der, serial=1, gen_time=FIXED_NOW)
    )
    signer = resp["time_stamp_token"]["content"]["signer_infos"][0]
    names = [a["type"].native for a in signer["signed_attrs"]]
    assert sorted(names) == ["content_type", "message_digest", "signing_certificate_v2"]
    # DER SET OF order: the encodings ascend.
    encoded = [a.dump() for a in signer["signed_attrs"]]
    assert encoded == sorted(encoded)
    ess = next(
        a
        for a in signer["signed_attrs"]
        if a["type"].native == "signing_certificate_v2"
    )
    cert_id = ess["values"][0]["certs"][0]
    tsa_der = authority.tsa_cert.public_bytes(serialization.Encoding.DER)
    assert cert_id["cert_hash"].native == hashlib.sha256(tsa_der).digest()
    assert (
        cert_id["issuer_serial"]["serial_number"].native
        == authority.tsa_cert.serial_number
    )


def test_ec_tsa_round_trip():
    pki = make_pki("ec")
    authority = TimestampAuthority.create(
        tsa_cert=pki.tsa, tsa_key=pki.tsa_key, policy_oid=POLICY, accuracy_ms=0
    )
    req = build_timestamp_request(DATA, nonce=9)
    resp = authority.respond(req.der, serial=1, gen_time=FIXED_NOW)
    result = verify_timestamp_response(resp, request=req, trusted_tsa_certs=[pki.root])
    assert result.accuracy is None
    assert result.nonce == 9


def test_requested_policy_that_is_ours_is_granted(pki, authority):
    req = build_timestamp_request(DATA, policy=POLICY)
    resp = authority.respond(req.der, serial=5, gen_time=FIXED_NOW)
    assert (
        verify_timestamp_response(
            resp, request=req, trusted_tsa_certs=[pki.root]
        ).policy
        == POLICY
    )


# -- rejections from the TSA core --------------------------------------------------


def _req(alg_oid: str = HashAlgorithm.SHA256.value, digest_len: int = 32, **extra):
    fields = {
        "version": extra.pop("version", "v1"),
        "message_imprint": {
            "hash_algorithm": {"algorithm": alg_oid},
            "hashed_message": b"\x11" * digest_len,
        },
        **extra,
    }
    return tsp.TimeStampReq(fields).dump()


_VALID = build_timestamp_request(DATA, hash_algorithm="sha256", nonce=77).der

REJECTIONS = [
    # (name, request bytes, expected failInfo)
    ("empty", b"", FailInfo.BAD_DATA_FORMAT),
    ("garbage", b"not a time-stamp query at all", FailInfo.BAD_DATA_FORMAT),
    ("truncated DER", _VALID[:-3], FailInfo.BAD_DATA_FORMAT),
    ("trailing bytes", _VALID + b"\x00", FailInfo.BAD_DATA_FORMAT),
    ("a bare INTEGER", core.Integer(1).dump(), FailInfo.BAD_DATA_FORMAT),
    ("sha1", _req("1.3.14.3.2.26", 20), FailInfo.BAD_ALG),
    ("md5", _req("1.2.840.113549.2.5", 16), FailInfo.BAD_ALG),
    ("unknown hash OID", _req("1.2.3.4.5.6", 32), FailInfo.BAD_ALG),
    ("imprint length", _req(HashAlgorithm.SHA256.value, 31), FailInfo.BAD_DATA_FORMAT),
    ("version 2", _req(version=2), FailInfo.BAD_DATA_FORMAT),
    ("other policy", _req(req_policy="1.2.3.4"), FailInfo.UNACCEPTED_POLICY),
    (
        "extension",
        _req(
            extensions=[
                {"extn_id": "1.2.3.4.9", "critical": False, "extn_value": b"\x05\x00"}
            ]
        ),
        FailInfo.UNACCEPTED_EXTENSION,
    ),
]


@pytest.mark.parametrize(
    ("case", "der", "fail"), REJECTIONS, ids=[r[0] for r in REJECTIONS]
)
def test_bad_requests_get_a_rejection_with_fail_info(authority, case, der, fail):
    resp = authority.respond(der, serial=1, gen_time=FIXED_NOW)
    assert _status(resp) == (PKIStatus.REJECTION, {fail.asn1_name})
    assert Resp.load(resp)["time_stamp_token"].native is None


@pytest.mark.parametrize("fail", list(FailInfo))
def test_client_reports_rejections_with_wire_names(fail):
    req = build_timestamp_request(DATA)
    with pytest.raises(TimestampRejected) as info:
        verify_timestamp_response(
            build_rejection(fail, "no"), request=req, trusted_tsa_certs=[]
        )
    assert info.value.status == PKIStatus.REJECTION
    assert info.value.fail_info == (fail.value,)
    assert fail.value in str(info.value)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_always_give_a_rejection(authority, body):
    resp = authority.respond(body, serial=1, gen_time=FIXED_NOW)
    status, fail = _status(resp)
    assert status == PKIStatus.REJECTION
    assert len(fail) == 1


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_VALID) - 1), st.integers(1, 255))
def test_mutated_requests_never_raise(pki, authority, position, xor):
    body = bytearray(_VALID)
    body[position] ^= xor
    resp = authority.respond(bytes(body), serial=1, gen_time=FIXED_NOW)
    status, _ = _status(resp)
    assert status in (PKIStatus.GRANTED, PKIStatus.REJECTION)
