"""The live TSA app (``make_tsa_app``) checked with openssl as the client.

``openssl ts -query`` makes the requests, aiohttp POSTs them, and
``openssl ts -verify`` / ``openssl ts -reply -text`` judge the answers. Bad
input must give a rejection with the right failInfo and leave the server
serving; serial numbers must stay unique across a restart.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import subprocess
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from asn1crypto import core, tsp
from cryptography.hazmat.primitives import serialization

from ca_tsa.app import make_tsa_app
from ca_tsa.config import CaTsaConfig
from ca_tsa.home import init_ca_home, load_ca_material
from ca_tsa.tsa.http import CLOCK
from jplink.errors import TimestampRejected
from jplink.security.tsp import (
    build_timestamp_request,
    new_nonce,
    verify_timestamp_response,
)
from tests.conftest import require_tool

pytestmark = pytest.mark.openssl

QUERY = "application/timestamp-query"
REPLY = "application/timestamp-reply"


class Paths:
    def __init__(self, root: Path, config: CaTsaConfig) -> None:
        self.root = root
        self.config = config
        material = load_ca_material(config)
        pem = serialization.Encoding.PEM
        self.material = material
        self.chain = root / "chain.pem"
        self.chain.write_bytes(b"".join(c.public_bytes(pem) for c in material.chain))
        self.tsa = root / "tsa.pem"
        self.tsa.write_bytes(material.tsa_cert.public_bytes(pem))
        self.data = root / "data.bin"
        self.data.write_bytes(b"message log batch \x00\xff" * 50)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Paths:
    # One CA for the module: key generation dominates the run time. The
    # serial test below relies only on uniqueness, so sharing is harmless.
    tmp_path = tmp_path_factory.mktemp("tsa")
    # openssl ts -verify checks certificates at the wall-clock time.
    config = init_ca_home(
        tmp_path / "ca",
        intermediate=True,
        now=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
    )
    return Paths(tmp_path, config)


def openssl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [require_tool("openssl"), *args], capture_output=True, text=True, check=False
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


async def post(client: TestClient, body: bytes, *, path: str = "/", ctype: str = QUERY):
    resp = await client.post(path, data=body, headers={"Content-Type": ctype})
    assert resp.status == 200
    assert resp.content_type == REPLY
    return await resp.read()


def status_of(resp_der: bytes) -> tuple[str, set[str]]:
    info = tsp.PKIStatusInfo.load(core.Sequence.load(resp_der)[0].dump())
    return info["status"].native, set(info["fail_info"].native or ())


@pytest.mark.parametrize("alg", ["sha256", "sha384", "sha512"])
@pytest.mark.parametrize("cert", [True, False])
@pytest.mark.parametrize("nonce", [True, False])
async def test_openssl_verifies_our_tokens(aiohttp_client, home, alg, cert, nonce):
    client = await aiohttp_client(make_tsa_app(home.config))
    req = home.root / "req.tsq"
    openssl(
        "ts", "-query", "-data", str(home.data), f"-{alg}", "-out", str(req),
        *(["-cert"] if cert else []), *([] if nonce else ["-no_nonce"]),
    )  # fmt: skip
    resp = home.root / "resp.tsr"
    resp.write_bytes(await post(client, req.read_bytes()))
    done = openssl(
        "ts", "-verify", "-data", str(home.data), "-in", str(resp),
        "-CAfile", str(home.chain), "-untrusted", str(home.tsa),
    )  # fmt: skip
    assert "Verification: OK" in done.stdout
    # The token carries certificates if and only if certReq was set.
    printed = openssl("ts", "-reply", "-in", str(resp), "-token_out", "-out",
                      str(home.root / "tok.p7"))  # fmt: skip
    assert printed.returncode == 0
    certs = openssl("pkcs7", "-inform", "DER", "-in", str(home.root / "tok.p7"),
                    "-print_certs")  # fmt: skip
    assert ("TSA" in certs.stdout) is cert


async def test_reply_text_shows_policy_serial_accuracy(aiohttp_client, home):
    client = await aiohttp_client(make_tsa_app(home.config))
    request = build_timestamp_request(home.data.read_bytes(), nonce=new_nonce())
    body = await post(client, request.der, path="/tsa")
    result = verify_timestamp_response(
        body,
        request=request,
        trusted_tsa_certs=[home.material.root_cert],
        now=dt.datetime.now(dt.UTC),
    )
    (home.root / "r.tsr").write_bytes(body)
    text = openssl("ts", "-reply", "-in", str(home.root / "r.tsr"), "-text").stdout
    assert f"Policy OID: {home.config.tsa.policy_oid}" in text
    assert int(re.search(r"Serial number: 0x([0-9A-F]+)", text)[1], 16) == result.serial
    assert "Accuracy: 0x01 seconds, unspecified millis, unspecified micros" in text
    # openssl pads an odd number of hex digits with a leading 0: compare values.
    assert int(re.search(r"Nonce: 0x([0-9A-F]+)", text)[1], 16) == request.nonce
    assert "Status: Granted." in text


def _sha1_query(home: Paths) -> bytes:
    out = home.root / "sha1.tsq"
    openssl("ts", "-query", "-data", str(home.data), "-sha1", "-out", str(out))
    return out.read_bytes()


def _unknown_oid_query() -> bytes:
    return tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": "1.2.3.4.5.6.7"},
                "hashed_message": b"\x01" * 32,
            },
        }
    ).dump()


GOOD = build_timestamp_request(b"good", nonce=1).der
BAD_INPUTS = {
    # name: (body maker, content type, failInfo)
    "garbage": (lambda h: b"\x13\x37garbage", QUERY, "bad_data_format"),
    "truncated DER": (lambda h: GOOD[:-5], QUERY, "bad_data_format"),
    "empty": (lambda h: b"", QUERY, "bad_data_format"),
    "wrong content type": (lambda h: GOOD, "application/octet-stream", "bad_request"),
    "no content type": (lambda h: GOOD, "", "bad_request"),
    "oversized": (lambda h: b"\x30" * 16385, QUERY, "bad_request"),
    "sha1": (_sha1_query, QUERY, "bad_alg"),
    "unknown hash OID": (lambda h: _unknown_oid_query(), QUERY, "bad_alg"),
    "other policy": (
        lambda h: build_timestamp_request(b"x", policy="1.2.3.4").der,
        QUERY,
        "unaccepted_policy",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_bad_input_is_rejected_and_server_keeps_serving(
    aiohttp_client, home, case
):
    make, ctype, fail = BAD_INPUTS[case]
    client = await aiohttp_client(make_tsa_app(home.config))
    body = await post(client, make(home), ctype=ctype)
    assert status_of(body) == ("rejection", {fail})
    (home.root / "rej.tsr").write_bytes(body)
    text = openssl("ts", "-reply", "-in", str(home.root / "rej.tsr"), "-text").stdout
    assert "Status: Rejected." in text
    request = build_timestamp_request(b"after the bad one")
    again = await post(client, request.der)
    assert status_of(again) == ("granted", set())


async def test_client_sees_rejection_as_error(aiohttp_client, home):
    client = await aiohttp_client(make_tsa_app(home.config))
    request = build_timestamp_request(b"x", policy="1.2.3.4")
    body = await post(client, request.der)
    with pytest.raises(TimestampRejected) as info:
        verify_timestamp_response(
            body, request=request, trusted_tsa_certs=[home.material.root_cert]
        )
    assert info.value.fail_info == ("unacceptedPolicy",)


async def test_get_is_not_a_query(aiohttp_client, home):
    client = await aiohttp_client(make_tsa_app(home.config))
    assert (await client.get("/")).status == 405


async def _serials(config: CaTsaConfig, count: int, *, parallel: bool) -> list[int]:
    root = load_ca_material(config).root_cert
    async with TestClient(TestServer(make_tsa_app(config))) as client:

        async def one(i: int) -> int:
            request = build_timestamp_request(str(i).encode(), nonce=i + 1)
            body = await post(client, request.der)
            return verify_timestamp_response(
                body, request=request, trusted_tsa_certs=[root]
            ).serial

        if parallel:
            return list(await asyncio.gather(*(one(i) for i in range(count))))
        return [await one(i) for i in range(count)]


async def test_serials_are_unique_across_restarts(home):
    first = await _serials(home.config, 5, parallel=False)
    second = await _serials(home.config, 5, parallel=False)
    third = await _serials(home.config, 40, parallel=True)
    everything = first + second + third
    assert len(set(everything)) == len(everything)
    assert min(second) > max(first)
    assert min(third) > max(second)


async def test_gen_time_comes_from_the_injected_clock(home):
    fixed = dt.datetime.now(dt.UTC).replace(microsecond=250000) - dt.timedelta(hours=1)
    app = make_tsa_app(home.config)
    app[CLOCK] = lambda: fixed
    async with TestClient(TestServer(app)) as client:
        request = build_timestamp_request(b"clock")
        body = await post(client, request.der)
    result = verify_timestamp_response(
        body, request=request, trusted_tsa_certs=[home.material.root_cert]
    )
    assert result.gen_time == fixed


async def test_no_tokens_outside_the_tsa_certificate_validity(home):
    app = make_tsa_app(home.config)
    app[CLOCK] = lambda: (
        home.material.tsa_cert.not_valid_after_utc + dt.timedelta(seconds=1)
    )
    async with TestClient(TestServer(app)) as client:
        body = await post(client, build_timestamp_request(b"late").der)
    assert status_of(body) == ("rejection", {"time_not_available"})
