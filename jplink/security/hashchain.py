"""Hash chains: one signature (or time-stamp) over many messages.

X-Road batches signatures with a Merkle tree (PROTOCOLS.md §6.3, namespace
``http://cyber.ee/hashchain``). Each message's input is the digest of its
single part or, with attachments, the *step digest* over all its parts. A
step digest is ``H(DER(SEQUENCE OF SingleDigest))`` with
``SingleDigest ::= SEQUENCE { digest OCTET STRING, algorithm UTF8String,
transforms SEQUENCE {} }``. The signer signs the bytes of the
``HashChainResult`` document (the tree top); every message keeps its own
``HashChain`` (the path from the top down to its data) to prove membership.

Both documents are written exactly as X-Road's JAXB marshaller does
(pretty-printed, ``standalone="yes"``) and must travel byte-exact.

This module builds them; checking a chain (``verify_hash_chain``) lives in
``_hashchain_verify`` and the DigestList framing both use in
``_hashchain_digests``; everything public is importable from here.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from jplink.ns import NS_DS, NS_HASHCHAIN

from ._hashchain_digests import (
    HASH_CHAIN_RESULT_MIME,
    HASH_CHAIN_RESULT_URI,
    HASH_CHAIN_URI,
    step_digest,
)
from ._hashchain_verify import VerifiedHashChain, verify_hash_chain
from .c14n import DigestAlgorithm

__all__ = [
    "HASH_CHAIN_RESULT_MIME",
    "HASH_CHAIN_RESULT_URI",
    "HASH_CHAIN_URI",
    "HashChainBatch",
    "VerifiedHashChain",
    "build_hash_chains",
    "step_digest",
    "verify_hash_chain",
]

_HEADER = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_NSDECL = f'xmlns="{NS_DS}" xmlns:ns2="{NS_HASHCHAIN}"'


@dataclass(frozen=True, slots=True)
class HashChainBatch:
    """The output of :func:`build_hash_chains`.

    Attributes:
        result: the ``HashChainResult`` document (what gets signed).
        chains: one ``HashChain`` document per message, in input order.
        top: the tree-top digest written in ``result``.
    """

    result: bytes
    chains: tuple[bytes, ...]
    top: bytes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Tree:
    """The Merkle tree over the message inputs, leaves padded to 2^k slots."""

    def __init__(self, leaves: Sequence[bytes], algorithm: DigestAlgorithm) -> None:
        self.leaves = leaves
        self.algorithm = algorithm
        self.width = 1 << (len(leaves) - 1).bit_length()
        self._memo: dict[tuple[int, int], bytes | None] = {}

    def value(self, lo: int, hi: int) -> bytes | None:
        """The digest of slots [lo, hi); None when no input lies there."""
        if (lo, hi) not in self._memo:
            if lo >= len(self.leaves):
                result = None
            elif hi - lo == 1:
                result = self.leaves[lo]
            else:
                mid = (lo + hi) // 2
                left, right = self.value(lo, mid), self.value(mid, hi)
                # A node whose right half is empty is its left half, promoted
                # unchanged (X-Road HashChainBuilder.fixTree).
                if right is None or left is None:
                    result = left
                else:
                    result = step_digest(self.algorithm, [left, right])
            self._memo[(lo, hi)] = result
        return self._memo[(lo, hi)]

    def chain(self, index: int, parts: Sequence[tuple[str, bytes]]) -> bytes:
        """The HashChain document from the top down to input ``index``."""
        steps: list[str] = []
        lo, hi = 0, self.width
        multipart = len(parts) > 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            other_value = self.value(mid, hi) if index < mid else self.value(lo, mid)
            if other_value is None:  # pragma: no cover - only the root is entered here
                raise ValueError("inconsistent tree")
            mine = (lo, mid) if index < mid else (mid, hi)
            # Walk down through promoted nodes: they have no step of their
            # own, so the reference goes to the first real node or the leaf.
            while mine[1] - mine[0] > 1 and self.value(sum(mine) // 2, mine[1]) is None:
                mine = (mine[0], sum(mine) // 2)
            if mine[1] - mine[0] == 1 and not multipart:
                my_item = _data_ref(*parts[0])
            else:
                my_item = f'        <ns2:StepRef URI="#STEP{len(steps) + 1}"/>\n'
            other_item = (
                "        <ns2:HashValue>\n"
                f"            <DigestValue>{_b64(other_value)}</DigestValue>\n"
                "        </ns2:HashValue>\n"
            )
            items = my_item + other_item if index < mid else other_item + my_item
            steps.append(_step(len(steps), items))
            lo, hi = mine
        if multipart:
            steps.append(_step(len(steps), "".join(_data_ref(u, d) for u, d in parts)))
        return (
            f"{_HEADER}<ns2:HashChain {_NSDECL}>\n"
            f'    <ns2:DefaultDigestMethod Algorithm="{self.algorithm.value}"/>\n'
            + "".join(steps)
            + "</ns2:HashChain>\n"
        ).encode()


def _data_ref(uri: str, digest: bytes) -> str:
    return (
        f"        <ns2:DataRef URI={quoteattr(uri)}>\n"
        f"            <DigestValue>{_b64(digest)}</DigestValue>\n"
        "        </ns2:DataRef>\n"
    )


def _step(number: int, items: str) -> str:
    return f'    <ns2:HashStep id="STEP{number}">\n{items}    </ns2:HashStep>\n'


def build_hash_chains(
    messages: Sequence[Sequence[tuple[str, bytes]]],
    *,
    digest_algorithm: DigestAlgorithm = DigestAlgorithm.SHA512,
    hash_chain_uri: str = HASH_CHAIN_URI,
) -> HashChainBatch:
    """Build the Merkle tree over messages and each message's hash chain.

    Args:
        messages: per message, its parts as (URI, digest) pairs: first the
            message part, then the attachments.
        digest_algorithm: the algorithm of the given digests and the tree.
        hash_chain_uri: the name under which the chains travel.

    Returns:
        The result document, the per-message chains and the tree top.

    Raises:
        ValueError: no messages, an empty message, or a single single-part
            message (which needs no chain; X-Road signs it directly).
    """
    if not messages or any(not m for m in messages):
        raise ValueError("every message needs at least one part")
    if len(messages) == 1 and len(messages[0]) == 1:
        raise ValueError("a single single-part message needs no hash chain")
    alg = digest_algorithm
    tree = _Tree(
        [
            m[0][1] if len(m) == 1 else step_digest(alg, [d for _, d in m])
            for m in messages
        ],
        alg,
    )
    top = tree.value(0, tree.width)
    if top is None:  # pragma: no cover - there is at least one input
        raise ValueError("empty tree")
    result = (
        f"{_HEADER}<ns2:HashChainResult URI={quoteattr(hash_chain_uri + '#STEP0')} "
        f"{_NSDECL}>\n"
        f'    <DigestMethod Algorithm="{alg.value}"/>\n'
        f"    <DigestValue>{_b64(top)}</DigestValue>\n"
        "</ns2:HashChainResult>\n"
    )
    chains = tuple(tree.chain(i, m) for i, m in enumerate(messages))
    return HashChainBatch(result.encode(), chains, top)
