"""MIME: Content-Type parameters, multipart split/build, limits."""

from __future__ import annotations

import email
import email.message
import email.policy

import pytest

from jplink.errors import MalformedMessage
from jplink.protocol.mime import (
    ContentType,
    MimePart,
    build_multipart,
    make_boundary,
    parse_content_type,
    parse_multipart,
)


@pytest.mark.parametrize(
    ("text", "media_type", "params"),
    [
        ("text/xml", "text/xml", ()),
        ("Text/XML; Charset=UTF-8", "text/xml", (("charset", "UTF-8"),)),
        (
            'multipart/related; type="text/xml"; boundary=abc',
            "multipart/related",
            (("type", "text/xml"), ("boundary", "abc")),
        ),
        ("a/b; x='single quoted'", "a/b", (("x", "single quoted"),)),
        ('a/b; x="esc\\"aped; semi"', "a/b", (("x", 'esc"aped; semi'),)),
        ("a/b ;  x = 1 ;", "a/b", (("x", "1"),)),
    ],
)
def test_parse_content_type(text, media_type, params):
    ctype = parse_content_type(text)
    assert (ctype.media_type, ctype.params) == (media_type, params)


@pytest.mark.parametrize(
    "text", ["", "text", "text/", "a/b; x", 'a/b; x="open', "a/b; x=1; X=2", "a/b x=1"]
)
def test_parse_content_type_rejects(text):
    with pytest.raises(MalformedMessage) as info:
        parse_content_type(text)
    assert info.value.code == "InvalidContentType"


@pytest.mark.parametrize(
    ("text", "params"),
    [
        ("signature/bdoc-1.0/ts", ()),
        ("Signature/BDOC-1.0/TS ; charset=UTF-8", (("charset", "UTF-8"),)),
    ],
)
def test_parse_content_type_accepts_xroad_signature_type(text, params):
    # X-Road's signature part type has a "/" in its subtype (not an RFC 2045
    # token); the SS-to-SS transport must read it like any other part type.
    ctype = parse_content_type(text)
    assert (ctype.media_type, ctype.params) == ("signature/bdoc-1.0/ts", params)
    assert MimePart.create([("Content-Type", text)], b"x").content_type == ctype
    assert parse_content_type(str(ctype)) == ctype


@pytest.mark.parametrize(
    "text", ["a//b", "a/b/", "/a/b", "a/b//c", "a/b/ c", "a/b/c d"]
)
def test_subtype_segments_must_be_tokens(text):
    with pytest.raises(MalformedMessage) as info:
        parse_content_type(text)
    assert info.value.code == "InvalidContentType"


def test_content_type_str_round_trips():
    ctype = ContentType("multipart/related", (("type", "text/xml"), ("boundary", "b1")))
    assert parse_content_type(str(ctype)) == ctype


def test_parse_crlf_and_lf_alike():
    crlf = (
        b"preamble\r\n--b\r\nContent-Type: text/plain\r\nX-Fold: a\r\n b\r\n\r\n"
        b"one\r\n\r\n--b\r\n\r\nno headers\r\n--b--\r\nepilogue"
    )
    for data in (crlf, crlf.replace(b"\r\n", b"\n")):
        first, second = parse_multipart(data, "b")
        assert first.header("x-fold") == "a b"
        assert first.body in (b"one\r\n", b"one\n")
        assert second.headers == () and second.body == b"no headers"


@pytest.mark.parametrize(
    ("data", "boundary"),
    [
        (b"no delimiter at all", "b"),
        (b"--b\r\nA: 1\r\n\r\nbody", "b"),  # no close delimiter
        (b"--b\r\nbad header\r\n\r\nx\r\n--b--", "b"),
        (b"--b\r\nA: 1\r\nbody-without-blank-line\r\n--b--", "b"),
        (b"--b\r\n\r\nx\r\n--b--", "bad boundary!\x00"),
    ],
)
def test_parse_multipart_rejects(data, boundary):
    with pytest.raises(MalformedMessage):
        parse_multipart(data, boundary)


def test_part_limit():
    data = b"".join(b"--b\r\n\r\nx\r\n" for _ in range(5)) + b"--b--\r\n"
    assert len(parse_multipart(data, "b")) == 5
    with pytest.raises(MalformedMessage, match="More than 4"):
        parse_multipart(data, "b", max_parts=4)


def test_build_then_parse_with_stdlib_email():
    boundary = make_boundary("xtop")
    parts = [
        MimePart.create(
            [("Content-Type", "text/xml; charset=UTF-8")], b"<a>\xc3\xa4</a>"
        ),
        MimePart.create(
            [("Content-Type", "application/octet-stream")], b"\x00\r\n\xff"
        ),
        MimePart.create([], b"bare"),
    ]
    data = build_multipart(parts, boundary)
    assert parse_multipart(data, boundary) == tuple(parts)
    # An independent parser reads the same parts and bodies.
    head = f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n".encode()
    msg = email.message_from_bytes(head + data, policy=email.policy.compat32)
    payload = msg.get_payload()
    assert isinstance(payload, list) and len(payload) == 3
    subparts = [p for p in payload if isinstance(p, email.message.Message)]
    payloads = [p.get_payload(decode=False) for p in subparts]
    assert [p.get_content_type() for p in subparts][:2] == [
        "text/xml",
        "application/octet-stream",
    ]
    assert payloads[2] == "bare"


def test_received_part_is_forwarded_byte_for_byte():
    data = b"--b\nContent-Type:  text/plain\nClient-Header: FooBar\n\nblaah\n--b--\n"
    (part,) = parse_multipart(data, "b")
    again = build_multipart([part], "c")
    assert b"Content-Type:  text/plain\nClient-Header: FooBar\r\n\r\nblaah\r\n" in again


def test_build_rejects_misuse():
    part = MimePart.create([], b"contains --b inside")
    with pytest.raises(ValueError):
        build_multipart([part], "b")
    with pytest.raises(ValueError):
        build_multipart([], "")
    with pytest.raises(ValueError):
        MimePart.create([("Bad Name", "x")], b"")
    with pytest.raises(ValueError):
        MimePart.create([("X", "a\r\nInjected: 1")], b"")


def test_content_types_are_memoised_but_errors_are_not():
    from jplink.errors import MalformedMessage as Malformed
    from jplink.protocol.mime import parse_content_type as parse

    value = "Text/XML; charset=UTF-8"
    first = parse(value)
    assert parse(value) is first  # the same frozen result, not parsed again
    assert first == parse.__wrapped__(value)
    assert (first.media_type, first.param("charset")) == ("text/xml", "UTF-8")
    for _ in range(2):  # a refusal is raised every time
        with pytest.raises(Malformed):
            parse("text/xml; charset=UTF-8; charset=latin1")
    assert parse.cache_info().maxsize is not None  # bounded
