"""Minimal DER writers for the per-token hot path of the TSA.

The constant parts of every response (certificates, ESS attribute, algorithm
identifiers, policy, accuracy, TSA name) are encoded once with asn1crypto when
the authority starts; only the few values that change per token (serial,
genTime, nonce, imprint, digests, signature) are written here and spliced in.
asn1crypto would produce the same bytes but costs several times more per
token (see bench/bench_tsa.py). Tests parse every output back with asn1crypto
and verify it with ``openssl ts -verify``.
"""

from __future__ import annotations

import datetime as dt

__all__ = ["generalized_time", "integer", "octet_string", "tlv"]


def tlv(tag: int, content: bytes) -> bytes:
    """One DER element: a single-byte tag, definite length, content."""
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + content


def integer(value: int) -> bytes:
    """DER INTEGER: minimal two's complement."""
    size = (value + (value < 0)).bit_length() // 8 + 1
    return tlv(0x02, value.to_bytes(size, "big", signed=True))


def octet_string(value: bytes) -> bytes:
    """DER OCTET STRING."""
    return tlv(0x04, value)


def generalized_time(value: dt.datetime) -> bytes:
    """DER GeneralizedTime in UTC, fractional seconds without trailing zeros.

    X.690 §11.7: the encoding ends in "Z", and "the fractional-seconds
    elements, if present, shall omit all trailing zeros".
    """
    utc = value.astimezone(dt.UTC)
    text = utc.strftime("%Y%m%d%H%M%S")
    if utc.microsecond:
        text += "." + f"{utc.microsecond:06d}".rstrip("0")
    return tlv(0x18, (text + "Z").encode("ascii"))
