"""requestHash insertion: the header scan stops at the header and skips markup
that only looks like tags (comments, CDATA, PIs, ``>`` in attribute values)."""

from __future__ import annotations

import pytest

from jplink.ns import NS_SOAP_ENV, NS_XROAD
from jplink.protocol import REQUEST_HASH_SHA512, add_request_hash, compute_request_hash

VALUE = compute_request_hash(b"the request")
ELEMENT = (
    f'<xroad:requestHash algorithmId="{REQUEST_HASH_SHA512}">{VALUE}'
    "</xroad:requestHash>"
).encode()


def envelope(header_fields: str, body: str = "<d:x xmlns:d='urn:d'/>") -> bytes:
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{NS_SOAP_ENV}" '
        f'xmlns:xroad="{NS_XROAD}"><!-- <SOAP-ENV:Header> -->'
        f"<SOAP-ENV:Header a='>' b=\"'>'\">{header_fields}</SOAP-ENV:Header>"
        f"<SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>"
    ).encode()


ID = "<xroad:id>q1</xroad:id>"


@pytest.mark.parametrize(
    "before",
    [
        "",
        "<xroad:protocolVersion>4.0</xroad:protocolVersion>",
        "<xroad:userId note='a>b'/>",
        "<!-- <xroad:id>fake</xroad:id> --><?pi <x>?>",
        "<xroad:issue><![CDATA[</xroad:issue><xroad:id>]]></xroad:issue>",
        "<x:nested xmlns:x='urn:x'><x:id>inner</x:id><x:e/></x:nested>",
    ],
)
def test_inserted_right_after_id_and_nothing_else_changes(before: str) -> None:
    data = envelope(before + ID + "<xroad:userId>u</xroad:userId>")
    out = add_request_hash(data, VALUE, REQUEST_HASH_SHA512)
    id_end = data.index(ID.encode()) + len(ID)
    assert out == data[:id_end] + ELEMENT + data[id_end:]


def test_an_old_hash_is_removed_wherever_it_is() -> None:
    old = (
        f'<xroad:requestHash algorithmId="{REQUEST_HASH_SHA512}">AAAA'
        "</xroad:requestHash>"
    )
    data = envelope(old + ID + "<xroad:userId>u</xroad:userId>")
    out = add_request_hash(data, VALUE, REQUEST_HASH_SHA512)
    assert out == envelope(ID + ELEMENT.decode() + "<xroad:userId>u</xroad:userId>")


def test_a_large_body_is_kept_byte_for_byte() -> None:
    # The scan ends at the header; whatever follows is copied unchanged.
    body = "<d:x xmlns:d='urn:d'><![CDATA[<<<>>>]]>" + "<d:y/>" * 2000 + "</d:x>"
    data = envelope(ID, body)
    out = add_request_hash(data, VALUE, REQUEST_HASH_SHA512)
    assert out.endswith(data[data.index(b"</SOAP-ENV:Header>") :])
