"""Minimal strict DER reading and writing for the responder's hot path.

An OCSP request is a handful of nested TLVs; walking them directly costs a few
microseconds, where a general ASN.1 library builds an object tree first. The
reader accepts DER only (X.690 §10): definite, minimal lengths and low tag
numbers. Anything else is refused as :class:`~jplink.errors.MalformedMessage`,
so the caller can answer ``malformedRequest``.
"""

from __future__ import annotations

import datetime as dt

from jplink.errors import MalformedMessage

__all__ = [
    "BIT_STRING",
    "BOOLEAN",
    "ENUMERATED",
    "GENERALIZED_TIME",
    "INTEGER",
    "NULL",
    "OCTET_STRING",
    "OID",
    "SEQUENCE",
    "Tlv",
    "encode_length",
    "generalized_time",
    "read_all",
    "read_tlv",
    "tlv",
]

BOOLEAN = 0x01
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
ENUMERATED = 0x0A
GENERALIZED_TIME = 0x18
SEQUENCE = 0x30

#: (tag, start of the whole TLV, start of the content, end of the content)
Tlv = tuple[int, int, int, int]

#: Longest length we accept: 4 length octets are far above any OCSP request.
_MAX_LENGTH_OCTETS = 4


def _malformed(why: str) -> MalformedMessage:
    return MalformedMessage(f"Malformed OCSP request: {why}")


def read_tlv(data: bytes, pos: int, end: int) -> Tlv:
    """Read one TLV that must lie inside ``data[pos:end]``.

    Args:
        data: the whole buffer.
        pos: where the TLV starts.
        end: the end of the enclosing content.

    Returns:
        ``(tag, pos, content_start, content_end)``.

    Raises:
        MalformedMessage: truncated data, high tag numbers, indefinite or
            non-minimal lengths.
    """
    if pos + 2 > end:
        raise _malformed("truncated element")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise _malformed("high tag numbers are not used in OCSP")
    first = data[pos + 1]
    cur = pos + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        # X.690 §10.1: "The definite form of length encoding shall be used";
        # §8.1.3.5 (c) "the value 11111111 shall not be used".
        if count == 0 or count > _MAX_LENGTH_OCTETS:
            raise _malformed("indefinite or oversized length")
        if cur + count > end:
            raise _malformed("truncated length")
        length = int.from_bytes(data[cur : cur + count], "big")
        # DER: lengths use the fewest octets (short form below 128).
        if length < 0x80 or data[cur] == 0:
            raise _malformed("non-minimal length encoding")
        cur += count
    if cur + length > end:
        raise _malformed("truncated content")
    return tag, pos, cur, cur + length


def read_all(data: bytes, start: int, end: int) -> list[Tlv]:
    """Read the consecutive TLVs that exactly fill ``data[start:end]``.

    Raises:
        MalformedMessage: as :func:`read_tlv`.
    """
    items: list[Tlv] = []
    pos = start
    while pos < end:
        item = read_tlv(data, pos, end)
        items.append(item)
        pos = item[3]
    return items


def encode_length(length: int) -> bytes:
    """The DER length octets for ``length``."""
    if length < 0x80:
        return bytes((length,))
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, content: bytes) -> bytes:
    """Encode one DER element."""
    return bytes((tag,)) + encode_length(len(content)) + content


def generalized_time(when: dt.datetime) -> bytes:
    """A DER GeneralizedTime ``YYYYMMDDHHMMSSZ`` (RFC 5280 §4.1.2.5.2 form).

    Raises:
        ValueError: a naive datetime (programmer misuse).
    """
    if when.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    text = when.astimezone(dt.UTC).strftime("%Y%m%d%H%M%SZ").encode("ascii")
    return tlv(GENERALIZED_TIME, text)
