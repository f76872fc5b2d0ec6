"""Faults: X-Road-style SOAP 1.1 faults, checked against the X-Road shape."""

from __future__ import annotations

import pytest

from jplink.errors import InvalidSignature, MalformedMessage, SoapFault
from jplink.ns import NS_SOAP_ENV
from jplink.protocol import build_fault, fault_from_error, parse_fault
from jplink.xml import parse_xml


def test_build_fault_shape():
    data = build_fault(
        "Server.ClientProxy.InvalidSignatureValue",
        "bad <sig> & more",
        actor="ss1",
        detail="0b9c-uuid",
    )
    root = parse_xml(data)
    fault = root.find(f"{{{NS_SOAP_ENV}}}Body/{{{NS_SOAP_ENV}}}Fault")
    assert fault is not None
    assert [c.tag for c in fault] == [
        "faultcode",
        "faultstring",
        "faultactor",
        "detail",
    ]
    assert fault.findtext("faultcode") == "Server.ClientProxy.InvalidSignatureValue"
    assert fault.findtext("faultstring") == "bad <sig> & more"
    detail = fault.find("detail/faultDetail")
    assert detail is not None and detail.text == "0b9c-uuid"
    assert detail.nsmap.get(None) is None  # <faultDetail xmlns=""> as X-Road


def test_parse_fault_round_trip():
    fault = parse_fault(build_fault("Client.InvalidXml", "broken", detail="id-1"))
    assert isinstance(fault, SoapFault)
    assert (
        fault.faultcode,
        fault.faultstring,
        fault.faultactor,
        fault.faultdetail,
    ) == (
        "Client.InvalidXml",
        "broken",
        None,
        "id-1",
    )
    assert fault.code == "Client.InvalidXml"


def test_fault_from_error_adds_prefix():
    err = InvalidSignature("Signature value does not verify")
    fault = parse_fault(fault_from_error(err, "Server.ClientProxy", detail="d"))
    assert fault.faultcode == "Server.ClientProxy.InvalidSignatureValue"
    assert fault.faultstring == "Signature value does not verify"


def test_fault_from_a_received_fault_keeps_its_code():
    received = SoapFault("Server.ServerProxy.AccessDenied", "no", faultdetail="x")
    fault = parse_fault(fault_from_error(received, "Server.ClientProxy"))
    assert fault.faultcode == "Server.ServerProxy.AccessDenied"
    assert fault.faultdetail == "x"


def test_parse_fault_accepts_x_road_7_8_lowercase_codes():
    data = build_fault("server.clientproxy.service_failed.missing_body", "x")
    assert (
        parse_fault(data).faultcode == "server.clientproxy.service_failed.missing_body"
    )


@pytest.mark.parametrize(
    "data",
    [
        f'<e:Envelope xmlns:e="{NS_SOAP_ENV}"><e:Body><x/></e:Body></e:Envelope>',
        f'<e:Envelope xmlns:e="{NS_SOAP_ENV}"><e:Body><e:Fault>'
        "<faultstring>s</faultstring></e:Fault></e:Body></e:Envelope>",
        "<not-soap/>",
    ],
)
def test_parse_fault_rejects(data):
    with pytest.raises(MalformedMessage):
        parse_fault(data.encode())


def test_build_fault_misuse():
    with pytest.raises(ValueError):
        build_fault("", "x")
