"""Hash-chain digests computed independently of jplink (asn1crypto's DER)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from asn1crypto import core

from jplink.security.c14n import DigestAlgorithm

__all__ = ["independent_step", "independent_top"]

SHA512 = DigestAlgorithm.SHA512


class _Transforms(core.SequenceOf):  # type: ignore[misc]
    _child_spec = core.Any


class _SingleDigest(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("digest", core.OctetString),
        ("algorithm", core.UTF8String),
        ("transforms", _Transforms),
    ]


class _DigestList(core.SequenceOf):  # type: ignore[misc]
    _child_spec = _SingleDigest


def independent_step(digests: Sequence[bytes], uri: str = SHA512.value) -> bytes:
    """SHA-512 of the DER DigestList of ``digests`` (algorithm ``uri``)."""
    # asn1crypto, not our hand-written DER, encodes the DigestList here.
    der = _DigestList(
        [
            {"digest": d, "algorithm": uri, "transforms": _Transforms([])}
            for d in digests
        ]
    ).dump()
    return hashlib.sha512(der).digest()


def independent_top(leaves: Sequence[bytes]) -> bytes:
    """The tree top over ``leaves``."""
    # PROTOCOLS.md §6.3: pairs combined left to right, an orphan promoted.
    level = list(leaves)
    while len(level) > 1:
        nxt = [independent_step(level[i : i + 2]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]
