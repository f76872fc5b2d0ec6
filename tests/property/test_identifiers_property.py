"""Hypothesis: every valid identifier round-trips; forbidden characters never pass."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from jplink.errors import InvalidRequest
from jplink.identifiers import (
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    SecurityServerId,
    ServiceId,
    identifier_from_xml,
    identifier_to_xml,
    parse_identifier,
)
from jplink.ns import NS_XROAD
from jplink.xml import parse_xml, serialize_xml

FORBIDDEN = ":/\\;%\u200b\ufeff"


def _valid(text: str) -> bool:
    return (
        text == text.strip()
        and all(c not in FORBIDDEN and c.isprintable() for c in text)
        # XML 1.0 cannot carry every printable code point (e.g. U+FFFE is not
        # printable anyway); surrogates are excluded by the alphabet below.
    )


# Printable text from the whole Unicode range (no surrogates), filtered by the rule.
part = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20
).filter(_valid)
opt_part = st.none() | part

clients = st.builds(ClientId, part, part, part, opt_part)
services = st.builds(ServiceId, part, part, part, opt_part, part, opt_part)
servers = st.builds(SecurityServerId, part, part, part, part)
identifiers = (
    clients
    | services
    | servers
    | st.builds(GlobalGroupId, part, part)
    | st.builds(LocalGroupId, part)
)


@given(identifiers)
def test_text_round_trip(ident):
    assert parse_identifier(str(ident)) == ident


@given(identifiers)
def test_xml_round_trip(ident):
    data = serialize_xml(identifier_to_xml(ident, f"{{{NS_XROAD}}}client"))
    assert identifier_from_xml(parse_xml(data)) == ident


@given(part, st.sampled_from(FORBIDDEN + "\x00\x1f\x7f\x9f\n\t"), part)
def test_forbidden_character_anywhere_is_rejected(prefix, bad, suffix):
    for value in (prefix + bad + suffix, bad + suffix, prefix + bad):
        try:
            ClientId("JP", "COM", value)
        except InvalidRequest:
            continue
        raise AssertionError(f"accepted {value!r}")


@given(part, st.sampled_from([" ", "\u3000", "\u2003"]))
def test_surrounding_whitespace_is_rejected(value, space):
    for bad in (space + value, value + space):
        try:
            LocalGroupId(bad)
        except InvalidRequest:
            continue
        raise AssertionError(f"accepted {bad!r}")


@given(clients, clients)
def test_ordering_is_consistent(a, b):
    assert (a < b) + (a == b) + (a > b) == 1
