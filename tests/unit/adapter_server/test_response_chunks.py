"""Responses are rendered in chunks: a large result is never held twice."""

from __future__ import annotations

import json
import tracemalloc

from lxml import etree

from adapter_server.definitions import ColumnSpec, ParamType, ServiceDefinition
from adapter_server.handlers import _json_chunks
from adapter_server.runtime import CallResult
from adapter_server.soap import (
    ROWS_PER_CHUNK,
    build_soap_response,
    read_soap_call,
    soap_response_chunks,
)

NS = "http://jplink.example/adapter/DATA"
SERVICE = ServiceDefinition(
    code="items",
    subsystem="DATA",
    datasource="main",
    sql="SELECT id, name FROM item",
    columns=(ColumnSpec("id", ParamType.INTEGER), ColumnSpec("name", ParamType.STRING)),
    max_rows=100_000,
)
REQUEST = f"""<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"
 xmlns:x="http://x-road.eu/xsd/xroad.xsd" xmlns:i="http://x-road.eu/xsd/identifiers"
 xmlns:d="{NS}"><e:Header><!--jplink-rows-->
<x:client i:objectType="SUBSYSTEM"><i:xRoadInstance>JP</i:xRoadInstance>
<i:memberClass>COM</i:memberClass><i:memberCode>1</i:memberCode>
<i:subsystemCode>C</i:subsystemCode></x:client>
<x:service i:objectType="SERVICE"><i:xRoadInstance>JP</i:xRoadInstance>
<i:memberClass>COM</i:memberClass><i:memberCode>2</i:memberCode>
<i:subsystemCode>DATA</i:subsystemCode><i:serviceCode>items</i:serviceCode>
</x:service><x:id>q-1</x:id><x:protocolVersion>4.0</x:protocolVersion>
</e:Header><e:Body><d:items/></e:Body></e:Envelope>""".encode()


def _call():
    return read_soap_call(REQUEST, "text/xml", lambda code: SERVICE, lambda s: NS)


def test_rows_are_escaped_and_parse_back():
    rows = [(1, "a<b & c>d\r"), (2, None), (3, "ミ")]
    body = build_soap_response(_call(), CallResult(SERVICE, rows, 3), NS)
    doc = etree.fromstring(body)
    found = doc.findall(f".//{{{NS}}}itemsResponse/{{{NS}}}row")
    assert [r.findtext(f"{{{NS}}}name") for r in found] == ["a<b & c>d\r", None, "ミ"]
    assert doc.findtext(f".//{{{NS}}}nextOffset") == "3"
    # The header (with a comment that looks like our marker) is echoed as is.
    assert b"<e:Header><!--jplink-rows-->" in body


def test_large_result_is_rendered_chunk_by_chunk_without_a_second_copy():
    count = 20_000
    rows = [(i, f"name number {i:08d} with some text") for i in range(count)]
    result = CallResult(SERVICE, rows, None)
    call = _call()
    total = sum(len(c) for c in soap_response_chunks(call, result, NS))
    for chunks in (soap_response_chunks(call, result, NS), _json_chunks(result)):
        tracemalloc.start()
        sizes = [len(chunk) for chunk in chunks]
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(sizes) >= count // ROWS_PER_CHUNK
        # Only about one chunk is alive at a time: far below the whole body.
        assert peak < total / 10, (peak, total)


def test_json_chunks_are_one_document():
    rows = [(i, f"n{i}") for i in range(450)]
    text = b"".join(_json_chunks(CallResult(SERVICE, rows, 450)))
    answer = json.loads(text)
    assert [r["id"] for r in answer["rows"]] == list(range(450))
    assert answer["next"] == 450
    empty = json.loads(b"".join(_json_chunks(CallResult(SERVICE, [], None))))
    assert empty == {"rows": [], "next": None}
