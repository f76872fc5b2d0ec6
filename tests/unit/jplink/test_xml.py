"""The one hardened XML parser: accepts plain XML, refuses everything risky."""

from __future__ import annotations

import pytest
from lxml import etree

from jplink.errors import XmlSecurityError
from jplink.xml import parse_xml, serialize_xml

ATTACKS = {
    "billion-laughs": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa">'
    b'<!ENTITY b "&a;&a;&a;&a;">]><l>&b;</l>',
    "external-entity": b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    "external-dtd": b'<!DOCTYPE x SYSTEM "http://127.0.0.1:1/evil.dtd"><x/>',
    "lowercase-doctype": b"<!doctype x><x/>",
    "parameter-entity": b'<!DOCTYPE x [<!ENTITY % p SYSTEM "http://127.0.0.1:1/p">%p;]><x/>',
    "utf16-doctype": (
        '<?xml version="1.0" encoding="UTF-16"?>'
        '<!DOCTYPE x [<!ENTITY e "y">]><x>&e;</x>'
    ).encode("utf-16"),
    "not-xml": b"hello",
    "truncated": b"<a><b>",
    "empty": b"",
    "whitespace": b"   \n",
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_refuses_risky_or_broken_input(name: str) -> None:
    with pytest.raises(XmlSecurityError) as info:
        parse_xml(ATTACKS[name])
    assert info.value.code == "InvalidXml"


def test_size_limit() -> None:
    doc = b"<a>" + b"x" * 2000 + b"</a>"
    assert parse_xml(doc, max_bytes=4096).text == "x" * 2000
    with pytest.raises(XmlSecurityError, match="exceeds the limit"):
        parse_xml(doc, max_bytes=1000)


def test_parses_namespaces_comments_and_non_ascii() -> None:
    doc = '<r xmlns="urn:x"><!-- kept --><v>aäõ 日本</v></r>'.encode()
    root = parse_xml(doc)
    assert root.tag == "{urn:x}r"
    assert root[0].tag is etree.Comment
    assert root[1].text == "aäõ 日本"


def test_serialize_round_trip() -> None:
    root = parse_xml(b"<a x='1'><b>t</b></a>")
    out = serialize_xml(root)
    assert out.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert parse_xml(out).find("b").text == "t"
    assert serialize_xml(root, xml_declaration=False) == b'<a x="1"><b>t</b></a>'


def test_rejects_non_bytes() -> None:
    with pytest.raises(TypeError):
        parse_xml("<a/>")  # type: ignore[arg-type]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_refuses_dtd_in_wide_encodings_before_parsing(
    codec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = f'<?xml version="1.0" encoding="{codec.upper()}"?>'.encode(codec)
    doc += '<!DOCTYPE l [<!ENTITY a "aaaa">]><l>&a;</l>'.encode(codec)[
        (2 if codec in ("utf-16",) else 4 if codec == "utf-32" else 0) :
    ]

    def _never(*_a: object, **_k: object) -> None:
        raise AssertionError("lxml must not see a document with a DTD")

    monkeypatch.setattr("jplink.xml.etree.fromstring", _never)
    with pytest.raises(XmlSecurityError, match="DTD"):
        parse_xml(doc)
