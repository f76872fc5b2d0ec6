"""X-Road's DigestList framing, shared by hash-chain building and checking.

A hash step's digest is ``H(DER(SEQUENCE OF SingleDigest))`` with
``SingleDigest ::= SEQUENCE { digest OCTET STRING, algorithm UTF8String,
transforms SEQUENCE {} }`` (PROTOCOLS.md §6.3).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from .c14n import DigestAlgorithm

__all__ = [
    "HASH_CHAIN_RESULT_MIME",
    "HASH_CHAIN_RESULT_URI",
    "HASH_CHAIN_URI",
    "digest_list",
    "fault_code",
    "step_digest",
]

#: File names of the two documents inside signed messages and ASiC containers.
HASH_CHAIN_RESULT_URI = "/sig-hashchainresult.xml"
HASH_CHAIN_URI = "/sig-hashchain.xml"
#: MIME type of the hash-chain result part and its DataObjectFormat.
HASH_CHAIN_RESULT_MIME = "application/hash-chain-result"


def fault_code(leaf: str) -> str:
    """The fault code of a hash-chain failure ``leaf``."""
    return f"MalformedSignature.{leaf}"


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes([tag, n]) + content
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


@functools.lru_cache(maxsize=32)
def _single_digest_frame(alg: DigestAlgorithm, size: int) -> tuple[bytes, bytes]:
    """(before, after): ``before + digest + after`` is a DER SingleDigest.

    SingleDigest ::= SEQUENCE { digest OCTET STRING, algorithm UTF8String,
    parameters SEQUENCE {} } (X-Road DigestList). Every length in it depends
    only on the digest's size, so the frame is built once per algorithm and
    size; this runs for every value of every chain.
    """
    after = _der(0x0C, alg.value.encode()) + _der(0x30, b"")
    whole = _der(0x30, _der(0x04, bytes(size)) + after)
    return whole[: len(whole) - size - len(after)], after


def digest_list(items: Sequence[tuple[DigestAlgorithm, bytes]]) -> bytes:
    # DER SEQUENCE OF SingleDigest (X-Road DigestList.concatDigests).
    singles = []
    for alg, digest in items:
        before, after = _single_digest_frame(alg, len(digest))
        singles.append(before + digest + after)
    return _der(0x30, b"".join(singles))


def step_digest(algorithm: DigestAlgorithm, digests: Sequence[bytes]) -> bytes:
    """The digest of one hash step over ``digests`` (all made with ``algorithm``)."""
    return algorithm.digest(digest_list([(algorithm, d) for d in digests]))
