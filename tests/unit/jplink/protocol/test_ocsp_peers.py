"""OCSP responses for peers (port 5577): request targets and multipart answers.

Hashes are recomputed with hashlib, the answer is split with the standard
library's ``email`` parser and each part is read by ``openssl ocsp``; the
responses are real ones from ``ca_tsa``'s responder and verify afterwards.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
import hashlib
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca_tsa.ocsp.request import parse_ocsp_request
from ca_tsa.ocsp.responder import GOOD, OcspResponder
from jplink.errors import MalformedMessage, NotFound, OcspError
from jplink.protocol.mime import MimePart, build_multipart
from jplink.protocol.ocsp_peers import (
    CertHashes,
    OcspPeerRequest,
    answer_ocsp_peer_request,
    build_ocsp_peer_request,
    build_ocsp_peer_response,
    parse_ocsp_peer_request,
    parse_ocsp_peer_response,
)
from jplink.security.certs import CertProfile, MemberSubject
from jplink.security.ocsp import (
    OcspCertStatus,
    build_ocsp_request,
    verify_ocsp_response,
)
from tests.conftest import require_tool
from tests.support.pki import TestPki, build_test_pki

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(minutes=10)


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return build_test_pki(T0 - dt.timedelta(days=1))


@pytest.fixture(scope="module")
def certs(pki: TestPki) -> list[x509.Certificate]:
    return [
        pki.issue(CertProfile.AUTH, MemberSubject("JP", "COM", code, "M", "ss1"))[0]
        for code in ("1111", "2222")
    ]


@pytest.fixture(scope="module")
def responses(pki: TestPki, certs: list[x509.Certificate]) -> list[bytes]:
    responder = OcspResponder.create(
        issuer=pki.issuing.cert,
        responder_cert=pki.ocsp.cert,
        responder_key=pki.ocsp.key,
        next_update=None,
    )
    return [
        responder.sign_response(
            parse_ocsp_request(build_ocsp_request(cert, pki.issuing.cert)),
            [GOOD],
            now=T0,
        )
        for cert in certs
    ]


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


# --------------------------------------------------------------------------
# Requests


def test_request_names_sha1_then_sha256(certs: list[x509.Certificate]) -> None:
    target = build_ocsp_peer_request(certs)
    url = urlsplit(target)
    assert url.path == "/"
    assert parse_qsl(url.query) == [
        *(("cert", hashlib.sha1(_der(c)).hexdigest()) for c in certs),
        *(("cert_hash", hashlib.sha256(_der(c)).hexdigest()) for c in certs),
    ]
    request = parse_ocsp_peer_request(target)
    assert request == OcspPeerRequest(tuple(CertHashes.of(c) for c in certs))
    assert [h.matches(c) for h, c in zip(request.certificates, certs, strict=True)] == [
        True,
        True,
    ]
    assert not request.certificates[0].matches(certs[1])


def test_legacy_and_sha256_only_requests(certs: list[x509.Certificate]) -> None:
    sha1 = hashlib.sha1(_der(certs[0])).hexdigest().upper()
    legacy = parse_ocsp_peer_request(f"?cert={sha1}")
    assert legacy.certificates[0].sha256 is None
    assert legacy.certificates[0].matches(certs[0])
    sha256 = hashlib.sha256(_der(certs[1])).hexdigest()
    modern = parse_ocsp_peer_request(f"cert_hash={sha256}&unknown=1")
    assert modern.certificates[0].sha1 is None
    assert modern.certificates[0].matches(certs[1])


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("/", id="nothing"),
        pytest.param("/?other=1", id="no-cert"),
        pytest.param("/?cert=xyz", id="not-hex"),
        pytest.param("/?cert=" + "a" * 64, id="sha256-in-cert"),
        pytest.param("/?cert_hash=" + "a" * 40, id="sha1-in-cert-hash"),
        pytest.param(
            "/?cert=" + "a" * 40 + "&cert=" + "b" * 40 + "&cert_hash=" + "c" * 64,
            id="count-mismatch",
        ),
        pytest.param("/?" + "&".join(["cert=" + "a" * 40] * 17), id="too-many"),
        pytest.param("/?cert", id="malformed-query"),
    ],
)
def test_bad_requests(target: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_ocsp_peer_request(target)


def test_building_needs_a_certificate() -> None:
    with pytest.raises(ValueError):
        build_ocsp_peer_request([])


# --------------------------------------------------------------------------
# Responses


def test_answer_round_trip_and_verifies(
    pki: TestPki, certs: list[x509.Certificate], responses: list[bytes]
) -> None:
    cache = {
        hashlib.sha256(_der(c)).digest(): r
        for c, r in zip(certs, responses, strict=True)
    }
    request = parse_ocsp_peer_request(build_ocsp_peer_request(certs))
    answer = answer_ocsp_peer_request(request, lambda h: cache.get(h.sha256 or b""))
    assert answer.content_type.startswith(
        'multipart/related; type="application/ocsp-response"; charset=UTF-8; boundary='
    )
    received = parse_ocsp_peer_response(
        answer.body, answer.content_type, expected=len(certs)
    )
    assert received == tuple(responses)
    for cert, der in zip(certs, received, strict=True):
        verified = verify_ocsp_response(
            der,
            cert=cert,
            issuer=pki.issuing.cert,
            now=NOW,
            max_age=dt.timedelta(hours=1),
        )
        assert verified.status is OcspCertStatus.GOOD


def test_answer_is_standard_mime_and_openssl_reads_each_part(
    responses: list[bytes], tmp_path: Path
) -> None:
    openssl = require_tool("openssl")
    answer = build_ocsp_peer_response(responses)
    raw = f"Content-Type: {answer.content_type}\r\n\r\n".encode() + answer.body
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["application/ocsp-response"] * 2
    for index, part in enumerate(parts):
        path = tmp_path / f"resp{index}.der"
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        path.write_bytes(payload)
        assert path.read_bytes() == responses[index]
        out = subprocess.run(
            [openssl, "ocsp", "-respin", str(path), "-resp_text", "-noverify"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "Cert Status: good" in out


def test_missing_cached_response_is_not_found(certs: list[x509.Certificate]) -> None:
    request = parse_ocsp_peer_request(build_ocsp_peer_request(certs))
    with pytest.raises(NotFound):
        answer_ocsp_peer_request(request, lambda h: None)


def test_response_count_must_match(responses: list[bytes]) -> None:
    answer = build_ocsp_peer_response(responses)
    for expected in (1, 3):
        with pytest.raises(MalformedMessage):
            parse_ocsp_peer_response(
                answer.body, answer.content_type, expected=expected
            )


def _multipart(*parts: tuple[str, bytes]) -> tuple[bytes, str]:
    mime = [MimePart.create([("Content-Type", ct)], body) for ct, body in parts]
    return build_multipart(mime, "bnd"), "multipart/related; boundary=bnd"


def test_bad_responses(responses: list[bytes]) -> None:
    body, ctype = _multipart(("application/ocsp-response", responses[0]))
    with pytest.raises(MalformedMessage) as info:
        parse_ocsp_peer_response(body, "multipart/mixed; boundary=bnd", expected=1)
    assert info.value.code == "InvalidContentType"
    wrong, ctype = _multipart(("text/plain", responses[0]))
    with pytest.raises(MalformedMessage) as info:
        parse_ocsp_peer_response(wrong, ctype, expected=1)
    assert info.value.code == "InvalidContentType"
    garbage, ctype = _multipart(("application/ocsp-response", b"\x30\x00junk"))
    with pytest.raises(OcspError):
        parse_ocsp_peer_response(garbage, ctype, expected=1)
    with pytest.raises(MalformedMessage):
        parse_ocsp_peer_response(body, ctype, expected=1, max_bytes=len(body) - 1)
    with pytest.raises(ValueError):
        build_ocsp_peer_response([])
