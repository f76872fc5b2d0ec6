"""jplink.web: problem documents, the error middleware, JSON bodies, API keys."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import subprocess
from typing import Any

import pytest
from aiohttp import web

from jplink import web as jweb
from jplink.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    StorageError,
    Unauthenticated,
)
from jplink.web import (
    PROBLEM_JSON,
    bearer_token,
    hash_secret,
    make_problem_middleware,
    new_secret,
    problem_response,
    read_json_object,
    verify_secret,
)
from tests.conftest import require_tool

# -- problem_response ----------------------------------------------------------


def test_problem_response_is_an_rfc9457_document():
    resp = problem_response(
        409, "Conflict", "Conflict", "既に存在します", extra={"errors": {"a": 1}}
    )
    assert resp.status == 409
    assert resp.content_type == PROBLEM_JSON == "application/problem+json"
    assert resp.text is not None
    assert json.loads(resp.text) == {
        "type": "urn:jplink:problem:Conflict",
        "title": "Conflict",
        "status": 409,
        "detail": "既に存在します",
        "code": "Conflict",
        "errors": {"a": 1},
    }
    assert "既に存在します" in resp.text  # UTF-8, not \\u escapes


@pytest.mark.parametrize("status", [200, 302, 399, 600])
def test_problem_response_refuses_non_error_status(status):
    with pytest.raises(ValueError):
        problem_response(status, "X", "X", "x")


# -- the middleware -------------------------------------------------------------


class Teapot(web.HTTPClientError):
    status_code = 418


async def _client(aiohttp_client: Any, raised: BaseException | None = None, **kw):
    async def fail(request: web.Request) -> web.Response:
        assert raised is not None
        raise raised

    async def echo(request: web.Request) -> web.Response:
        body = await read_json_object(request, allowed=frozenset({"a", "b"}))
        return web.json_response(body)

    async def strict(request: web.Request) -> web.Response:
        return web.json_response(await read_json_object(request, empty_is_object=False))

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    app = web.Application(
        middlewares=[make_problem_middleware(**kw)], client_max_size=1024
    )
    app.router.add_get("/fail", fail)
    app.router.add_post("/echo", echo)
    app.router.add_post("/strict", strict)
    app.router.add_get("/redirect", redirect)
    return await aiohttp_client(app)


async def _problem(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status == status
    assert resp.content_type == PROBLEM_JSON
    body: dict[str, Any] = await resp.json(content_type=PROBLEM_JSON)
    assert (body["status"], body["code"]) == (status, code)
    assert body["type"] == f"urn:jplink:problem:{code}"
    assert body["title"] and body["detail"]
    return body


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (NotFound("No member X"), 404, "NotFound"),
        (Conflict("Exists"), 409, "Conflict"),
        (InvalidRequest("Bad", code="InvalidField"), 400, "InvalidField"),
        (Unauthenticated("Who?"), 401, "Unauthorized"),
    ],
)
async def test_jplink_errors_keep_status_code_and_message(
    aiohttp_client, error, status, code
):
    client = await _client(aiohttp_client, error)
    body = await _problem(await client.get("/fail"), status, code)
    assert body["detail"] == error.message
    assert body["title"] == type(error).__name__
    assert "correlation_id" not in body  # only 5xx answers carry one


async def test_error_detail_becomes_the_errors_member(aiohttp_client):
    error = InvalidRequest("Bad parameter", detail={"parameter": "name"})
    client = await _client(aiohttp_client, error)
    body = await _problem(await client.get("/fail"), 400, "InvalidRequest")
    assert body["errors"] == {"parameter": "name"}


async def test_server_side_errors_get_a_logged_correlation_id(aiohttp_client, caplog):
    client = await _client(aiohttp_client, StorageError("The database failed"))
    with caplog.at_level(logging.WARNING, logger="jplink.web"):
        body = await _problem(await client.get("/fail"), 503, "DatabaseError")
    assert body["correlation_id"] in caplog.text


async def test_unexpected_errors_are_opaque_and_logged_with_traceback(
    aiohttp_client, caplog
):
    client = await _client(aiohttp_client, RuntimeError("password=hunter2 at 10.0.0.1"))
    with caplog.at_level(logging.ERROR, logger="jplink.web"):
        resp = await client.get("/fail")
        body = await _problem(resp, 500, "InternalError")
    raw = await resp.text()
    assert "hunter2" not in raw and "RuntimeError" not in raw and "10.0.0.1" not in raw
    correlation = body["correlation_id"]
    assert re.fullmatch(r"[0-9a-f-]{36}", correlation)
    assert correlation in body["detail"]
    (record,) = [r for r in caplog.records if correlation in r.getMessage()]
    assert record.exc_info is not None and "hunter2" in str(record.exc_info[1])


async def test_each_unexpected_error_gets_its_own_correlation_id(aiohttp_client):
    client = await _client(aiohttp_client, KeyError("x"))
    first = await (await client.get("/fail")).json(content_type=PROBLEM_JSON)
    second = await (await client.get("/fail")).json(content_type=PROBLEM_JSON)
    assert first["correlation_id"] != second["correlation_id"]


async def test_http_exceptions_become_problems(aiohttp_client):
    client = await _client(aiohttp_client, Teapot())
    await _problem(await client.get("/nothing"), 404, "NotFound")
    resp = await client.delete("/echo")
    await _problem(resp, 405, "MethodNotAllowed")
    assert resp.headers["Allow"] == "POST"
    await _problem(await client.post("/echo", data=b"x" * 2048), 413, "RequestTooLarge")
    await _problem(await client.get("/fail"), 418, "Http418")


async def test_redirects_pass_through(aiohttp_client):
    client = await _client(aiohttp_client)
    resp = await client.get("/redirect", allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"] == "/elsewhere"


@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        ({}, 'Bearer realm="unit"'),
        ({"Authorization": "Basic dTpw"}, 'Bearer realm="unit"'),
        ({"Authorization": "Bearer"}, 'Bearer realm="unit"'),
        (
            {"Authorization": "Bearer wrong"},
            'Bearer realm="unit", error="invalid_token"',
        ),
    ],
)
async def test_401_challenges_per_rfc6750(aiohttp_client, headers, challenge):
    client = await _client(
        aiohttp_client, Unauthenticated("The API key is not valid"), bearer_realm="unit"
    )
    resp = await client.get("/fail", headers=headers)
    await _problem(resp, 401, "Unauthorized")
    assert resp.headers["WWW-Authenticate"] == challenge


async def test_default_middleware_uses_realm_jplink(aiohttp_client):
    async def fail(request: web.Request) -> web.Response:
        raise Unauthenticated("no")

    app = web.Application(middlewares=[jweb.problem_middleware])
    app.router.add_get("/", fail)
    client = await aiohttp_client(app)
    resp = await client.get("/")
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="jplink"'


# -- read_json_object ------------------------------------------------------------


async def test_json_bodies(aiohttp_client):
    client = await _client(aiohttp_client)
    resp = await client.post("/echo", json={"a": 1, "b": [2]})
    assert await resp.json() == {"a": 1, "b": [2]}
    assert await (await client.post("/echo", data=b"  ")).json() == {}
    for bad in (b"{nope", b"[1, 2]", b'"text"', b"\xff\xfe{}"):
        await _problem(await client.post("/echo", data=bad), 400, "InvalidJson")
    resp = await client.post("/echo", json={"a": 1, "zz": 2, "c": 3})
    body = await _problem(resp, 400, "InvalidField")
    assert "c, zz" in body["detail"]
    await _problem(await client.post("/strict", data=b""), 400, "InvalidJson")
    assert await (await client.post("/strict", json={"x": 1})).json() == {"x": 1}


# -- bearer tokens and secrets -----------------------------------------------------


class _Req:
    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("BEARER x.y-z_~+/=", "x.y-z_~+/="),
    ],
)
def test_bearer_token(header, token):
    assert bearer_token(_Req({"Authorization": header})) == token  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer   ", "Basic abc", "abc"]
)
def test_bearer_token_missing(header):
    headers = {} if header is None else {"Authorization": header}
    with pytest.raises(Unauthenticated):
        bearer_token(_Req(headers))  # type: ignore[arg-type]


def test_hash_secret_is_sha256_hex_as_openssl_computes_it():
    openssl = require_tool("openssl")
    secret = "jpad_0123456789abcdef_" + "鍵" + new_secret()
    out = subprocess.run(
        [openssl, "dgst", "-sha256", "-r"],
        input=secret.encode("utf-8"),
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert hash_secret(secret) == out.split()[0]


def test_new_secrets_are_256_bit_and_distinct():
    secrets_ = {new_secret() for _ in range(200)}
    assert len(secrets_) == 200
    for s in secrets_:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", s)


def test_verify_secret_accepts_only_the_right_secret():
    secret = new_secret()
    stored = hash_secret(secret)
    verify_secret(secret, stored)
    verify_secret(secret, stored.upper())  # hex case does not matter
    for wrong in (secret[:-1], secret + "x", "", secret.upper()):
        with pytest.raises(Unauthenticated, match=r"^The API key is not valid$"):
            verify_secret(wrong, stored)


def test_unknown_key_fails_even_with_the_dummy_secret():
    # The dummy hash must never let anything in: not even its own preimage.
    with pytest.raises(Unauthenticated):
        verify_secret("jplink-no-such-secret", None)


def test_unknown_key_costs_the_same_comparison(monkeypatch):
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(jweb.hmac, "compare_digest", spy)
    with pytest.raises(Unauthenticated):
        verify_secret("guess", None)
    with pytest.raises(Unauthenticated):
        verify_secret("guess", hash_secret("other"))
    assert len(calls) == 2
    assert all(len(a) == len(b) == 64 for a, b in calls)
    assert calls[0][0] == hashlib.sha256(b"guess").hexdigest().encode()


def test_non_ascii_stored_hash_is_refused_not_a_crash():
    with pytest.raises(Unauthenticated):
        verify_secret("x", "é" * 64)
