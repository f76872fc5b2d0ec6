"""requestHash insertion: the header scan stops at the header and skips markup
that only looks like tags (comments, CDATA, PIs, ``>`` in attribute values)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jplink.ns import NS_SOAP_ENV, NS_XROAD
from jplink.protocol import (
    REQUEST_HASH_SHA512,
    add_request_hash,
    compute_request_hash,
    request_hash,
)
from jplink.xml import parse_xml

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


def plain_envelope(header_fields: str) -> bytes:
    """As a service writes it: no comment before the header."""
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{NS_SOAP_ENV}" '
        f'xmlns:xroad="{NS_XROAD}">'
        f"<SOAP-ENV:Header>{header_fields}</SOAP-ENV:Header>"
        "<SOAP-ENV:Body><d:x xmlns:d='urn:d'/></SOAP-ENV:Body></SOAP-ENV:Envelope>"
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


# -- the direct path and the general scan agree --------------------------------

FIELD = st.sampled_from(
    [
        "<xroad:protocolVersion>4.0</xroad:protocolVersion>",
        "<xroad:userId note='a>b'/>",
        "<xroad:userId>a&gt;b</xroad:userId>",
        "<!-- <xroad:id>fake</xroad:id> -->",
        "<?pi <x>?>",
        "<xroad:issue><![CDATA[</xroad:issue><xroad:id>]]></xroad:issue>",
        "<x:nested xmlns:x='urn:x'><x:id>inner</x:id><x:e/></x:nested>",
        "<x:nested xmlns:x='urn:x'><xroad:id>inner</xroad:id></x:nested>",
        "<xroad:idle>not id</xroad:idle>",
        "<xroad:id2/>",
        "text>",
        "\n  ",
        "\t",
    ]
)
ID_FORM = st.sampled_from(
    [
        "<xroad:id>q1</xroad:id>",
        "<xroad:id >q1</xroad:id >",
        "<xroad:id\n a='>'>q1</xroad:id\n>",
        "<xroad:id/>",
        f"<r:id xmlns:r='{NS_XROAD}'>q1</r:id>",
        f"<id xmlns='{NS_XROAD}'>q1</id>",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    before=st.lists(FIELD, max_size=5),
    id_form=ID_FORM,
    after=st.lists(FIELD, max_size=3),
    wrap=st.sampled_from([envelope, plain_envelope]),
)
def test_direct_insertion_is_the_scan_result(before, id_form, after, wrap) -> None:
    data = wrap("".join(before) + id_form + "".join(after))
    root = parse_xml(data)
    header = root[0] if isinstance(root[0].tag, str) else root[1]
    id_el = next(c for c in header if c.tag == f"{{{NS_XROAD}}}id")
    element = request_hash._hash_element(header, id_el, VALUE, REQUEST_HASH_SHA512)
    direct = request_hash._insert_directly(data, root, id_el, element)
    out = add_request_hash(data, VALUE, REQUEST_HASH_SHA512)
    scanned = request_hash._insert_by_scan(
        data,
        [c for c in root if isinstance(c.tag, str)].index(header),
        [c for c in header if isinstance(c.tag, str)].index(id_el),
        [],
        element,
        (VALUE, REQUEST_HASH_SHA512),
    )
    assert out == scanned
    if direct is not None:
        assert direct == scanned
    # Either way the result parses with the hash right after the right id.
    fields = [c for c in parse_xml(out).iterfind(f"{{{NS_SOAP_ENV}}}Header/*")]
    tags = [f.tag for f in fields]
    index = tags.index(f"{{{NS_XROAD}}}id")
    assert tags[index + 1] == f"{{{NS_XROAD}}}requestHash"
    assert fields[index + 1].text == VALUE


def test_the_direct_path_serves_the_usual_response() -> None:
    data = plain_envelope(
        "\n  <xroad:protocolVersion>4.0</xroad:protocolVersion>\n  " + ID + "\n"
    )
    root = parse_xml(data)
    id_el = root.find(f"{{{NS_SOAP_ENV}}}Header/{{{NS_XROAD}}}id")
    direct = request_hash._insert_directly(data, root, id_el, ELEMENT)
    assert direct is not None
    id_end = data.index(ID.encode()) + len(ID)
    assert direct == data[:id_end] + b"\n  " + ELEMENT + data[id_end:]
