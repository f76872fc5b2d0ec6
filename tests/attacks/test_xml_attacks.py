"""XML attack corpus: every document must fail with XmlSecurityError, both in
jplink.xml.parse_xml and through the SOAP envelope parser (plain and as the
SOAP part of a multipart message)."""

from __future__ import annotations

import pytest

from jplink.errors import XmlSecurityError
from jplink.ns import NS_SOAP_ENV
from jplink.protocol import parse_soap_message
from jplink.xml import DEFAULT_MAX_XML_BYTES, parse_xml

ENV_OPEN = f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{NS_SOAP_ENV}"><SOAP-ENV:Body><x>'
ENV_CLOSE = "</x></SOAP-ENV:Body></SOAP-ENV:Envelope>"


def _wrap(dtd: str, content: str) -> str:
    return f'<?xml version="1.0"?>\n{dtd}\n{ENV_OPEN}{content}{ENV_CLOSE}'


LAUGHS = "\n".join(
    [
        '<!DOCTYPE SOAP-ENV:Envelope [<!ENTITY lol "lol">',
        *(
            f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">'.replace(
                "&lol0;", "&lol;"
            )
            for i in range(1, 10)
        ),
        "]>",
    ]
)
QUADRATIC = f'<!DOCTYPE SOAP-ENV:Envelope [<!ENTITY a "{"x" * 50_000}">]>'

CORPUS: dict[str, bytes] = {
    "billion-laughs": _wrap(LAUGHS, "&lol9;").encode(),
    "quadratic-blowup": _wrap(QUADRATIC, "&a;" * 2000).encode(),
    "external-entity-file": _wrap(
        '<!DOCTYPE SOAP-ENV:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        "&xxe;",
    ).encode(),
    "external-entity-http": _wrap(
        '<!DOCTYPE SOAP-ENV:Envelope [<!ENTITY xxe SYSTEM "http://127.0.0.1:1/x">]>',
        "&xxe;",
    ).encode(),
    "parameter-entity": _wrap(
        '<!DOCTYPE SOAP-ENV:Envelope [<!ENTITY % p SYSTEM "http://127.0.0.1:1/p.dtd">'
        " %p;]>",
        "",
    ).encode(),
    "external-dtd": _wrap(
        '<!DOCTYPE SOAP-ENV:Envelope SYSTEM "http://127.0.0.1:1/evil.dtd">', ""
    ).encode(),
    "plain-dtd": _wrap("<!DOCTYPE SOAP-ENV:Envelope>", "").encode(),
    "lowercase-doctype": _wrap("<!doctype SOAP-ENV:Envelope>", "").encode(),
    "entity-without-doctype": (ENV_OPEN + "&undeclared;" + ENV_CLOSE).encode(),
    "utf16-doctype-with-bom": _wrap(LAUGHS, "&lol9;")
    .replace('version="1.0"', 'version="1.0" encoding="UTF-16"')
    .encode("utf-16"),
    "utf16le-doctype-no-bom": _wrap(LAUGHS, "&lol9;")
    .replace('version="1.0"', 'version="1.0" encoding="UTF-16LE"')
    .encode("utf-16-le"),
    "utf16be-external-entity": _wrap(
        '<!DOCTYPE SOAP-ENV:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        "&xxe;",
    )
    .replace('version="1.0"', 'version="1.0" encoding="UTF-16BE"')
    .encode("utf-16-be"),
    "utf32-doctype": _wrap("<!DOCTYPE SOAP-ENV:Envelope>", "")
    .replace('version="1.0"', 'version="1.0" encoding="UTF-32"')
    .encode("utf-32"),
    "oversized": (ENV_OPEN + "a" * DEFAULT_MAX_XML_BYTES + ENV_CLOSE).encode(),
    "deeply-nested": (
        ENV_OPEN + "<a>" * 300_000 + "</a>" * 300_000 + ENV_CLOSE
    ).encode(),
    "empty": b"",
    "whitespace-only": b"  \n ",
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_parse_xml_refuses(name):
    with pytest.raises(XmlSecurityError):
        parse_xml(CORPUS[name])


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_envelope_parser_refuses(name):
    with pytest.raises(XmlSecurityError) as info:
        parse_soap_message(CORPUS[name], content_type="text/xml")
    assert info.value.code == "InvalidXml"


@pytest.mark.parametrize(
    "name", ["billion-laughs", "external-entity-file", "utf16-doctype-with-bom"]
)
def test_envelope_parser_refuses_in_multipart(name):
    data = b"--b\r\nContent-Type: text/xml\r\n\r\n" + CORPUS[name] + b"\r\n--b--\r\n"
    with pytest.raises(XmlSecurityError):
        parse_soap_message(data, content_type="multipart/related; boundary=b")
