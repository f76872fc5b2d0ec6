"""The management services' WSDL: what the management security server imports."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import zeep
from aiohttp import web
from aiohttp.test_utils import TestClient

from central_server.management_api import MANAGEMENT_PATH, add_management_service_routes
from central_server.management_wsdl import MANAGEMENT_WSDL_PATH, build_management_wsdl
from jplink.protocol.management import ManagementRequestType
from wsdl.parse import parse_wsdl

ADDRESS = "http://cs.example.jp:4001/managementservice/manage/"


def test_every_management_operation_but_auth_cert_reg_is_offered() -> None:
    parsed = parse_wsdl(build_management_wsdl(ADDRESS))
    names = {op.name for op in parsed.operations}
    wanted = {t.value for t in ManagementRequestType} - {"authCertReg"}
    assert names == wanted
    assert parsed.addresses == (ADDRESS,)
    assert parsed.target_namespace == "http://x-road.eu/xsd/xroad.xsd"


def test_zeep_reads_it_as_a_soap_service(tmp_path: Path) -> None:
    path = tmp_path / "management.wsdl"
    path.write_bytes(build_management_wsdl(ADDRESS))
    client = zeep.Client(str(path))  # type: ignore[no-untyped-call]
    binding = next(iter(client.wsdl.bindings.values()))
    assert "clientReg" in binding._operations
    operation = binding._operations["clientReg"]
    assert operation.soapaction == ""
    service = next(iter(client.wsdl.services.values()))
    port = next(iter(service.ports.values()))
    assert port.binding_options["address"] == ADDRESS


def test_a_relative_address_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        build_management_wsdl("/managementservice/manage/")


async def test_served_addressed_at_the_host_it_was_fetched_from(
    aiohttp_client: Any,
) -> None:
    app = web.Application()
    add_management_service_routes(app)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    resp = await client.get(MANAGEMENT_WSDL_PATH)
    assert resp.status == 200
    assert resp.content_type == "text/xml"
    parsed = parse_wsdl(await resp.read())
    assert parsed.addresses == (str(client.make_url(MANAGEMENT_PATH)),)
