"""Identifiers: construction rules, text form, XML form (identifiers.xsd)."""

from __future__ import annotations

import pytest
from lxml import etree

from jplink.errors import InvalidRequest, MalformedMessage
from jplink.identifiers import (
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    SecurityServerId,
    ServiceId,
    XRoadObjectType,
    identifier_from_xml,
    identifier_to_xml,
    parse_client_id,
    parse_identifier,
    parse_security_server_id,
    parse_service_id,
    validate_part,
)
from jplink.ns import NS_IDENTIFIERS, NS_XROAD
from jplink.xml import parse_xml, serialize_xml

MEMBER = ClientId("JP", "COM", "1234")
SUBSYSTEM = ClientId("JP", "COM", "1234", "sub")

# (object, text form) checked in both directions, h11 style.
TEXT_CASES = [
    (MEMBER, "MEMBER:JP/COM/1234"),
    (SUBSYSTEM, "SUBSYSTEM:JP/COM/1234/sub"),
    (
        ServiceId("JP", "COM", "1234", "sub", "getData", "v1"),
        "SERVICE:JP/COM/1234/sub/getData/v1",
    ),
    (
        ServiceId("JP", "COM", "1234", "sub", "getData"),
        "SERVICE:JP/COM/1234/sub/getData",
    ),
    (ServiceId("JP", "COM", "1234", None, "getData"), "SERVICE:JP/COM/1234/getData"),
    (
        ServiceId("JP", "COM", "1234", None, "getData", "v1"),
        "SERVICE:JP/COM/1234//getData/v1",
    ),
    (SecurityServerId("JP", "COM", "1234", "ss1"), "SERVER:JP/COM/1234/ss1"),
    (GlobalGroupId("JP", "owners"), "GLOBALGROUP:JP/owners"),
    (LocalGroupId("admins"), "LOCALGROUP:admins"),
]


@pytest.mark.parametrize(("ident", "text"), TEXT_CASES)
def test_text_form_both_directions(ident, text):
    assert str(ident) == text
    assert parse_identifier(text) == ident


def test_client_helpers():
    assert SUBSYSTEM.object_type is XRoadObjectType.SUBSYSTEM
    assert MEMBER.object_type is XRoadObjectType.MEMBER
    assert SUBSYSTEM.member == MEMBER
    assert MEMBER.subsystem("sub") == SUBSYSTEM
    service = ServiceId("JP", "COM", "1234", "sub", "getData", "v1")
    assert service.client == SUBSYSTEM
    assert service.unversioned == ServiceId("JP", "COM", "1234", "sub", "getData")
    assert SecurityServerId("JP", "COM", "1234", "ss1").owner == MEMBER


def test_ordering_is_total_with_missing_subsystem():
    ids = [SUBSYSTEM, ClientId("JP", "COM", "1000"), MEMBER, ClientId("AA", "Z", "9")]
    assert [str(i) for i in sorted(ids)] == [
        "MEMBER:AA/Z/9",
        "MEMBER:JP/COM/1000",
        "MEMBER:JP/COM/1234",
        "SUBSYSTEM:JP/COM/1234/sub",
    ]
    with pytest.raises(TypeError):
        _ = LocalGroupId("x") > MEMBER  # type: ignore[operator]


def test_identifiers_are_frozen_and_hashable():
    with pytest.raises(AttributeError):
        MEMBER.member_code = "x"  # type: ignore[misc]
    assert len({MEMBER, ClientId("JP", "COM", "1234"), SUBSYSTEM}) == 2


@pytest.mark.parametrize(
    "bad",
    [
        "a:b",
        "a/b",
        "a\\b",
        "a;b",
        "a%b",
        "",
        " lead",
        "trail ",
        "tab\tin",
        "nl\n",
        "\x00",
        "del\x7f",
        "c1\x85",
        "zw\u200bsp",
        "bom\ufeff",
        "x" * 256,
        "ls\u2028",
        "nbsp\u00a0x",
    ],
)
def test_forbidden_parts_are_rejected(bad):
    with pytest.raises(InvalidRequest) as info:
        ClientId("JP", "COM", bad)
    assert "memberCode" in info.value.message
    with pytest.raises(InvalidRequest):
        LocalGroupId(bad)


def test_non_ascii_and_symbols_are_allowed():
    # X-Road's proxy accepts any printable character except the forbidden ones.
    ident = ClientId("JP", "COM", "株式会社-1", "sub (test)'+,.=?")
    assert parse_client_id(str(ident)) == ident


def test_non_string_part_is_rejected():
    with pytest.raises(InvalidRequest):
        ClientId("JP", "COM", 1234)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        "JP/COM/1234",  # no type prefix
        "PERSON:JP/COM/1234",  # unknown type
        "MEMBER:JP/COM/1234/sub",  # too many parts for MEMBER
        "SUBSYSTEM:JP/COM/1234",  # too few parts
        "SERVICE:JP/COM",
        "SERVICE:JP/COM/1234/sub/code/v1/extra",
        "SERVER:JP/COM/1234",
        "GLOBALGROUP:JP",
        "LOCALGROUP:a/b",
        "MEMBER:JP//1234",  # empty part
        "MEMBER:JP/COM/12:34",
        "SERVICE:JP/COM/1234///v1",  # empty service code
    ],
)
def test_parse_identifier_rejects_bad_text(text):
    with pytest.raises(InvalidRequest):
        parse_identifier(text)


def test_typed_parse_helpers_check_the_type():
    assert parse_service_id("SERVICE:JP/COM/1234/getData").service_code == "getData"
    assert parse_security_server_id("SERVER:JP/COM/1/ss").server_code == "ss"
    with pytest.raises(InvalidRequest, match="not a ClientId"):
        parse_client_id("SERVER:JP/COM/1/ss")
    with pytest.raises(InvalidRequest):
        parse_service_id("MEMBER:JP/COM/1")
    with pytest.raises(InvalidRequest):
        parse_security_server_id("SUBSYSTEM:JP/COM/1/x")


# --- XML form ---------------------------------------------------------------

CLIENT_TAG = f"{{{NS_XROAD}}}client"


@pytest.mark.parametrize(("ident", "_text"), TEXT_CASES)
def test_xml_round_trip_through_bytes(ident, _text):
    data = serialize_xml(identifier_to_xml(ident, CLIENT_TAG))
    element = parse_xml(data)
    assert element.get(f"{{{NS_IDENTIFIERS}}}objectType") == ident.object_type.value
    assert identifier_from_xml(element) == ident


def test_xml_child_order_follows_the_schema():
    ident = ServiceId("JP", "COM", "1234", "sub", "getData", "v1")
    element = identifier_to_xml(ident, "service")
    assert [etree.QName(c).localname for c in element] == [
        "xRoadInstance",
        "memberClass",
        "memberCode",
        "subsystemCode",
        "serviceCode",
        "serviceVersion",
    ]


def test_xml_with_parent_repeats_no_namespace_declarations():
    root = etree.Element(
        f"{{{NS_XROAD}}}header", nsmap={"xroad": NS_XROAD, "id": NS_IDENTIFIERS}
    )
    identifier_to_xml(SUBSYSTEM, CLIENT_TAG, parent=root)
    assert serialize_xml(root, xml_declaration=False).count(b"xmlns:id") == 1


def _client_xml(body: str, object_type: str | None = "MEMBER") -> bytes:
    attr = "" if object_type is None else f' id:objectType="{object_type}"'
    return (
        f'<xroad:client xmlns:xroad="{NS_XROAD}" xmlns:id="{NS_IDENTIFIERS}"{attr}>'
        f"{body}</xroad:client>"
    ).encode()


GOOD_MEMBER_BODY = (
    "<id:xRoadInstance>EE</id:xRoadInstance><id:memberClass>GOV</id:memberClass>"
    "<id:memberCode>123</id:memberCode>"
)


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("missing-objecttype", _client_xml(GOOD_MEMBER_BODY, None), "InvalidXml"),
        ("unknown-objecttype", _client_xml(GOOD_MEMBER_BODY, "PERSON"), "InvalidXml"),
        (
            "missing-membercode",
            _client_xml(GOOD_MEMBER_BODY.rsplit("<id:memberCode>", 1)[0]),
            "InvalidXml",
        ),
        (
            "unknown-child",
            _client_xml(GOOD_MEMBER_BODY + "<id:serverCode>x</id:serverCode>"),
            "InvalidXml",
        ),
        (
            "foreign-namespace-child",
            _client_xml(GOOD_MEMBER_BODY + "<foo/>"),
            "InvalidXml",
        ),
        (
            "duplicate-child",
            _client_xml(GOOD_MEMBER_BODY + "<id:memberCode>9</id:memberCode>"),
            "InvalidXml",
        ),
        (
            "wrong-order",
            _client_xml(
                "<id:memberClass>GOV</id:memberClass><id:xRoadInstance>EE</id:xRoadInstance>"
                "<id:memberCode>123</id:memberCode>"
            ),
            "InvalidXml",
        ),
        (
            "subsystem-without-code",
            _client_xml(GOOD_MEMBER_BODY, "SUBSYSTEM"),
            "InvalidXml",
        ),
        (
            # As many children as a service needs, but its serviceCode missing.
            "service-without-service-code",
            _client_xml(
                GOOD_MEMBER_BODY + "<id:subsystemCode>s</id:subsystemCode>", "SERVICE"
            ),
            "InvalidXml",
        ),
        (
            "nested-element",
            _client_xml(GOOD_MEMBER_BODY.replace("123", "<b>1</b>")),
            "InvalidXml",
        ),
        (
            "forbidden-char",
            _client_xml(GOOD_MEMBER_BODY.replace("123", "1/23")),
            "InvalidClientIdentifier",
        ),
        (
            "empty-code",
            _client_xml(GOOD_MEMBER_BODY.replace("123", "")),
            "InvalidClientIdentifier",
        ),
    ],
)
def test_xml_defects_raise_malformed_message(name, data, code):
    with pytest.raises(MalformedMessage) as info:
        identifier_from_xml(parse_xml(data))
    assert info.value.code == code, name


def test_xml_expected_type_is_enforced():
    element = identifier_to_xml(SecurityServerId("JP", "COM", "1", "ss"), CLIENT_TAG)
    with pytest.raises(MalformedMessage) as info:
        identifier_from_xml(element, ClientId)
    assert info.value.code == "InvalidXml"
    allowed = identifier_from_xml(element, (ClientId, SecurityServerId))
    assert isinstance(allowed, SecurityServerId)
    assert allowed.server_code == "ss"


def test_xml_bad_service_value_has_service_code():
    element = identifier_to_xml(ServiceId("JP", "COM", "1", None, "x"), "service")
    element[-1].text = "a;b"
    with pytest.raises(MalformedMessage) as info:
        identifier_from_xml(element)
    assert info.value.code == "InvalidServiceIdentifier"


def test_xml_comments_inside_identifier_are_ignored():
    data = _client_xml(GOOD_MEMBER_BODY + "<!-- note -->")
    assert identifier_from_xml(parse_xml(data)) == ClientId("EE", "GOV", "123")


# -- the memo of valid parts ------------------------------------------------


def test_valid_parts_are_remembered_and_bad_ones_never():
    from jplink.identifiers import _model

    assert validate_part("memo-part", "memberCode") == "memo-part"
    assert "memo-part" in _model._VALID
    for bad in ("a/b", " lead", "", "x\u200by"):
        with pytest.raises(InvalidRequest) as info:
            validate_part(bad, "subsystemCode")
        # The field name still reaches the message (it is not part of the memo).
        assert "subsystemCode" in info.value.message
        assert bad not in _model._VALID


def test_only_plain_str_takes_the_fast_path():
    from jplink.identifiers import _model

    validate_part("abc", "memberCode")

    class Lookalike(str):
        """Equal to and hashed like a remembered part, but holding a '/'."""

        __slots__ = ()

        def __eq__(self, other: object) -> bool:
            return True

        def __hash__(self) -> int:
            return hash("abc")

    assert Lookalike("a/b") in _model._VALID  # a set lookup alone would pass it
    with pytest.raises(InvalidRequest):
        validate_part(Lookalike("a/b"), "memberCode")


def test_the_memo_is_bounded():
    from jplink.identifiers import _model

    for i in range(_model._MAX_VALID + 10):
        validate_part(f"bounded-{i}", "memberCode")
    assert len(_model._VALID) <= _model._MAX_VALID
    # Still correct after it started again from empty.
    assert validate_part("bounded-1", "memberCode") == "bounded-1"
    with pytest.raises(InvalidRequest):
        validate_part("bounded/1", "memberCode")
