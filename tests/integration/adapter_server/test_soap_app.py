"""The adapter app end to end: zeep calls over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
import zeep
from lxml import etree

from jplink.xml import parse_xml

from .conftest import PEOPLE

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XRD = "http://x-road.eu/xsd/xroad.xsd"
TNS = "http://jplink.example/adapter/DATA"


def _zeep(client, wsdl: bytes, tmp_path: Path):
    path = tmp_path / "data.wsdl"
    path.write_bytes(wsdl)
    zc = zeep.Client(str(path))
    address = str(client.make_url("/soap"))
    return zc.create_service(f"{{{TNS}}}DATABinding", address)


HEADERS = {
    "client": {
        "objectType": "SUBSYSTEM",
        "xRoadInstance": "JP",
        "memberClass": "COM",
        "memberCode": "1111",
        "subsystemCode": "CLIENT",
    },
    "service": {
        "objectType": "SERVICE",
        "xRoadInstance": "JP",
        "memberClass": "COM",
        "memberCode": "2222",
        "subsystemCode": "DATA",
        "serviceCode": "peopleByName",
        "serviceVersion": "v1",
    },
    "id": "id-1",
    "userId": "JP:user",
    "issue": "case-7",
    "protocolVersion": "4.0",
}


async def test_zeep_calls_with_x_road_headers_and_gets_typed_rows(adapter, tmp_path):
    resp = await adapter.get("/wsdl/DATA")
    assert resp.status == 200
    service = await asyncio.to_thread(_zeep, adapter, await resp.read(), tmp_path)
    result = await asyncio.to_thread(
        service.peopleByName, name="Aiko", _soapheaders=HEADERS
    )
    body = result["body"]
    assert len(body["row"]) == 1
    row = body["row"][0]
    assert row["id"] == 1 and isinstance(row["id"], int)
    assert row["name"] == "Aiko"
    assert row["born"] == dt.date(1990, 4, 1)
    assert row["score"] == Decimal("12.50")
    assert row["active"] is True
    assert body["nextOffset"] is None
    echoed = result["header"]
    assert echoed["id"] == "id-1" and echoed["issue"] == "case-7"


async def test_all_parameter_types_through_zeep(adapter, tmp_path):
    wsdl = await (await adapter.get("/wsdl/DATA")).read()
    service = await asyncio.to_thread(_zeep, adapter, wsdl, tmp_path)
    service_header = {
        **HEADERS["service"], "serviceCode": "searchPeople", "serviceVersion": "v2"
    }  # fmt: skip
    headers = {**HEADERS, "service": service_header}
    call = service.searchPeople
    inactive = await asyncio.to_thread(
        call, minId=1, active=False, bornAfter=dt.date(1900, 1, 1), _soapheaders=headers
    )
    assert [r["name"] for r in inactive["body"]["row"]] == ["Botan", "O'Hara"]
    rich = await asyncio.to_thread(
        call, minId=1, minScore=Decimal("12.5"), active=True,
        bornAfter=dt.date(1990, 4, 1), notName="Chiyo", _soapheaders=headers,
    )  # fmt: skip
    assert [r["id"] for r in rich["body"]["row"]] == [1]


async def test_paging(adapter, tmp_path):
    wsdl = await (await adapter.get("/wsdl/DATA")).read()
    service = await asyncio.to_thread(_zeep, adapter, wsdl, tmp_path)
    headers = {**HEADERS, "service": {**HEADERS["service"], "serviceCode": "allPeople"}}
    first = await asyncio.to_thread(service.allPeople, _soapheaders=headers)
    assert [r["id"] for r in first["body"]["row"]] == [1, 2]
    assert first["body"]["nextOffset"] == 2
    second = await asyncio.to_thread(
        service.allPeople, pageOffset=2, _soapheaders=headers
    )
    assert [r["id"] for r in second["body"]["row"]] == [3, 4]
    assert second["body"]["nextOffset"] is None
    assert len(PEOPLE) == 4


async def test_database_unavailable_is_a_server_fault_without_details(adapter):
    body = "<t:gone><t:name>Aiko</t:name></t:gone>"
    status, root = await _post(adapter, _envelope(body, "gone"))
    code, text = _fault(root)
    assert (status, code) == (500, "Server.DatabaseUnavailable")
    assert "127.0.0.1" not in text and "nobody" not in text


async def test_query_timeout(adapter, db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite cannot interrupt a running statement from asyncio")
    body = "<t:slow><t:seconds>5</t:seconds></t:slow>"
    _status, root = await _post(adapter, _envelope(body, "slow"))
    assert _fault(root)[0] == "Server.QueryTimeout"


def _envelope(body: str, service_code: str = "peopleByName", version: str = "v1",
              extra_header: str = "") -> bytes:  # fmt: skip
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV}" xmlns:xroad="{XRD}"
    xmlns:id="http://x-road.eu/xsd/identifiers" xmlns:t="{TNS}">
  <SOAP-ENV:Header>
    <xroad:client id:objectType="MEMBER"><id:xRoadInstance>JP</id:xRoadInstance>
      <id:memberClass>COM</id:memberClass><id:memberCode>1111</id:memberCode></xroad:client>
    <xroad:service id:objectType="SERVICE"><id:xRoadInstance>JP</id:xRoadInstance>
      <id:memberClass>COM</id:memberClass><id:memberCode>2222</id:memberCode>
      <id:subsystemCode>DATA</id:subsystemCode><id:serviceCode>{service_code}</id:serviceCode>
      <id:serviceVersion>{version}</id:serviceVersion></xroad:service>
    <xroad:userId>JP:u</xroad:userId>
    <xroad:issue>i</xroad:issue>
    <xroad:id>abc</xroad:id>{extra_header}
    <xroad:protocolVersion>4.0</xroad:protocolVersion>
  </SOAP-ENV:Header>
  <SOAP-ENV:Body>{body}</SOAP-ENV:Body>
</SOAP-ENV:Envelope>""".encode()


async def _post(adapter, data: bytes):
    resp = await adapter.post("/soap", data=data, headers={"Content-Type": "text/xml"})
    return resp.status, parse_xml(await resp.read())


async def test_headers_are_echoed_in_the_same_order(adapter):
    request = _envelope("<t:peopleByName><t:name>Aiko</t:name></t:peopleByName>")
    status, response = await _post(adapter, request)
    assert status == 200
    req_header = parse_xml(request).find(f"{{{SOAP_ENV}}}Header")
    resp_header = response.find(f"{{{SOAP_ENV}}}Header")
    assert [etree.tostring(e, method="c14n") for e in resp_header] == [
        etree.tostring(e, method="c14n") for e in req_header
    ]


def _fault(root) -> tuple[str, str]:
    fault = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert fault is not None, etree.tostring(root)
    return fault.findtext("faultcode"), fault.findtext("faultstring")


@pytest.mark.parametrize(
    ("body", "code", "version", "expected"),
    [
        ("<t:nothing/>", "nothing", "v1", "Client.UnknownService"),
        ("<t:peopleByName/>", "peopleByName", "v1", "Client.MissingParameter"),
        (
            "<t:peopleByName><t:name>a</t:name><t:x>1</t:x></t:peopleByName>",
            "peopleByName", "v1", "Client.UnknownParameter",
        ),
        ("<t:bornBefore><t:t>yesterday</t:t></t:bornBefore>", "bornBefore", "v1",
         "Client.InvalidParameter"),
        ("<t:peopleByName><t:name>a</t:name></t:peopleByName>", "peopleByName", "v9",
         "Client.UnknownService"),
        ("<other:peopleByName xmlns:other='urn:x'><other:name>a</other:name>"
         "</other:peopleByName>", "peopleByName", "v1", "Client.InvalidBody"),
        ("<t:searchPeople/>", "peopleByName", "v1", "Client.InconsistentHeaders"),
        (
            "<t:peopleByName><t:name>a</t:name><t:pageOffset>-1</t:pageOffset>"
            "</t:peopleByName>",
            "peopleByName", "v1", "Client.InvalidParameter",
        ),
    ],
)  # fmt: skip
async def test_faults_for_bad_input(adapter, body, code, version, expected):
    status, root = await _post(adapter, _envelope(body, code, version))
    assert status == 500
    faultcode, faultstring = _fault(root)
    assert faultcode == expected
    assert "Traceback" not in faultstring and "SELECT" not in faultstring


async def test_header_failing_the_xsd_is_a_fault(adapter):
    data = _envelope(
        "<t:peopleByName><t:name>a</t:name></t:peopleByName>",
        extra_header="<xroad:securityServer id:objectType='SERVER'>"
        "<id:xRoadInstance>JP</id:xRoadInstance></xroad:securityServer>",
    )
    _status, root = await _post(adapter, data)
    assert _fault(root)[0].startswith("Client.")


INJECTIONS = [
    ("name", "' OR '1'='1"),
    ("name", "Aiko'; DROP TABLE people; --"),
    ("name", 'Aiko" OR 1=1 --'),
]


@pytest.mark.parametrize(("param", "value"), INJECTIONS)
async def test_string_injection_is_just_a_value(adapter, param, value):
    body = f"<t:peopleByName><t:{param}>{value.replace('<', '&lt;')}</t:{param}></t:peopleByName>"  # noqa: E501
    status, root = await _post(adapter, _envelope(body))
    assert status == 200
    wrapper = root.find(f"{{{SOAP_ENV}}}Body/{{{TNS}}}peopleByNameResponse")
    assert wrapper is not None and len(wrapper) == 0
    # The table is still there and complete.
    _status, root = await _post(
        adapter, _envelope("<t:peopleByName><t:name>O'Hara</t:name></t:peopleByName>")
    )
    rows = root.findall(f".//{{{TNS}}}row")
    assert [r.findtext(f"{{{TNS}}}id") for r in rows] == ["4"]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("minId", "1 OR 1=1"),
        ("minId", "1; DELETE FROM people"),
        ("minScore", "0 OR 1=1"),
        ("active", "true OR 1=1"),
        ("bornAfter", "1900-01-01' OR '1'='1"),
    ],
)
async def test_typed_injection_is_a_fault(adapter, param, value):
    params = {"minId": "1", "active": "true", "bornAfter": "1900-01-01", param: value}
    inner = "".join(f"<t:{k}>{v}</t:{k}>" for k, v in params.items())
    _status, root = await _post(
        adapter,
        _envelope(f"<t:searchPeople>{inner}</t:searchPeople>", "searchPeople", "v2"),
    )
    assert _fault(root)[0] == "Client.InvalidParameter"


async def test_datetime_injection_is_a_fault(adapter):
    body = "<t:bornBefore><t:t>2000-01-01T00:00:00' OR 1=1--</t:t></t:bornBefore>"
    _status, root = await _post(adapter, _envelope(body, "bornBefore"))
    assert _fault(root)[0] == "Client.InvalidParameter"


async def test_unknown_wsdl_subsystem_is_404(adapter):
    resp = await adapter.get("/wsdl/NOPE")
    assert resp.status == 404
    problem = await resp.json(content_type="application/problem+json")
    assert problem["code"] == "NotFound"
