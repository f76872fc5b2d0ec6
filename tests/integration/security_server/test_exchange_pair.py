"""A SOAP request through A's client proxy, B's server proxy and back.

Two security servers run in this process (:mod:`.pair`): every listener is a
real loopback socket (HTTP client proxy, mutual-TLS server proxy, OCSP for
peers), the certificates come from a real CA/OCSP app, and the provider is a
stub aiohttp service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from jplink.protocol.request_hash import compute_request_hash, verify_request_hash
from jplink.protocol.soap import MessageRole, parse_soap_message
from security_server.models import MessageLogRecord

from .pair import Pair, open_pair, trades_request

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def pair(tmp_path: Path, aiohttp_server: Any) -> AsyncIterator[Pair]:
    async with open_pair(tmp_path, aiohttp_server) as opened:
        yield opened


async def _log_rows(node: Any) -> list[MessageLogRecord]:
    async with node.res.db.transaction() as session:
        rows = await session.execute(select(MessageLogRecord))
        return list(rows.scalars())


async def test_request_reaches_the_service_and_comes_back_signed(pair: Pair) -> None:
    request = trades_request(pair.a.subsystem, pair.b.subsystem, day="2024-05-02")
    status, ctype, body = await pair.post(request)
    assert status == 200, body.decode()
    response = parse_soap_message(body, content_type=ctype, role=MessageRole.RESPONSE)
    assert b"42.00 on 2024-05-02" in body
    # The requestHash is over the request exactly as the IS sent it.
    assert verify_request_hash(response, request) == compute_request_hash(request)
    assert response.header.client == pair.a.subsystem
    # The service got the SOAP bytes untouched.
    assert [b for _, b in pair.stub.received] == [request]

    query_id = response.id
    for node, side in ((pair.a, "client"), (pair.b, "server")):
        rows = [r for r in await _log_rows(node) if r.query_id == query_id]
        assert sorted(r.direction for r in rows) == ["request", "response"], node.name
        for row in rows:
            assert side in row.side
            assert row.signature_xml.startswith("<")
            assert row.client == str(pair.a.subsystem)
        request_row = next(r for r in rows if r.direction == "request")
        assert request_row.message == request
