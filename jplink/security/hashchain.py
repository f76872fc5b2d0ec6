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

import binascii
import functools
from collections.abc import Generator, Sequence
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
    "iter_build_hash_chains",
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
    return binascii.b2a_base64(data, newline=False).decode("ascii")


#: Digests or chains computed between two pauses of
#: :func:`iter_build_hash_chains` (1-3 ms of work).
PAUSE_EVERY = 256

#: A batch's messages share their few part names (``/message.xml``, ...).
_quoted = functools.lru_cache(maxsize=256)(quoteattr)


class _Tree:
    """The Merkle tree over the message inputs, leaves padded to 2^k slots.

    ``levels[k][j]`` is the node over slots ``[j * 2^k, (j + 1) * 2^k)``:
    its digest, or None when no input lies there. A node whose right half
    is empty is its left half, promoted unchanged (X-Road
    HashChainBuilder.fixTree); empty slots only pad the right edge.
    """

    def __init__(self, levels: list[list[bytes | None]], algorithm: DigestAlgorithm):
        self.algorithm = algorithm
        self.levels = levels
        self.top = levels[-1][0]

    @classmethod
    def grow(
        cls, leaves: Sequence[bytes], algorithm: DigestAlgorithm
    ) -> Generator[None, None, _Tree]:
        """Build the tree, pausing (``yield``) every :data:`PAUSE_EVERY` digests."""
        width = 1 << (len(leaves) - 1).bit_length()
        level: list[bytes | None] = [*leaves, *[None] * (width - len(leaves))]
        levels = [level]
        while len(level) > 1:
            above: list[bytes | None] = []
            for j in range(0, len(level), 2):
                left, right = level[j], level[j + 1]
                if left is None or right is None:
                    above.append(left)
                else:
                    above.append(step_digest(algorithm, [left, right]))
                    if len(above) % PAUSE_EVERY == 0:
                        yield
            level = above
            levels.append(level)
        return cls(levels, algorithm)

    def _real(self, k: int, j: int) -> tuple[int, int]:
        """The node that stands for node (k, j): down through promoted nodes.

        A promoted node has no step of its own, so a reference to it goes to
        the first real node below it, or to the leaf.
        """
        while k > 0 and self.levels[k - 1][2 * j + 1] is None:
            k, j = k - 1, 2 * j
        return k, j

    def chains(
        self, messages: Sequence[Sequence[tuple[str, bytes]]]
    ) -> Generator[None, None, list[bytes]]:
        """Every message's HashChain document, from the top down to it,
        pausing (``yield``) every :data:`PAUSE_EVERY` messages.

        Every chain through a node starts with the same steps, so they are
        written once per node (a batch of 1 000 messages has ~2 000 nodes
        and ~10 000 steps in its chains).
        """
        head = (
            f"{_HEADER}<ns2:HashChain {_NSDECL}>\n"
            f'    <ns2:DefaultDigestMethod Algorithm="{self.algorithm.value}"/>\n'
        )
        out: list[bytes] = [b""] * len(messages)
        written = 0
        # (level, index, the steps above it, how many)
        todo = [(*self._real(len(self.levels) - 1, 0), head, 0)]
        while todo:
            k, j, above, count = todo.pop()
            if k == 0:
                parts = messages[j]
                last = ""
                if len(parts) > 1:
                    last = _step(count, "".join(_data_ref(u, d) for u, d in parts))
                out[j] = f"{above}{last}</ns2:HashChain>\n".encode()
                written += 1
                if written % PAUSE_EVERY == 0:
                    yield
                continue
            left, right = self._hash_values(k - 1, 2 * j)
            for child, other in ((2 * j, right), (2 * j + 1, left)):
                ck, cj = self._real(k - 1, child)
                if ck == 0 and len(messages[cj]) == 1:
                    mine = _data_ref(*messages[cj][0])
                else:
                    mine = f'        <ns2:StepRef URI="#STEP{count + 1}"/>\n'
                items = mine + other if child % 2 == 0 else other + mine
                todo.append((ck, cj, above + _step(count, items), count + 1))
        return out

    def _hash_values(self, k: int, j: int) -> tuple[str, str]:
        """The HashValue items of the sibling nodes (k, j) and (k, j + 1)."""
        return (_hash_value(self.levels[k][j]), _hash_value(self.levels[k][j + 1]))


def _hash_value(digest: bytes | None) -> str:
    if digest is None:  # pragma: no cover - a real node has both children
        raise ValueError("inconsistent tree")
    return (
        "        <ns2:HashValue>\n"
        f"            <DigestValue>{_b64(digest)}</DigestValue>\n"
        "        </ns2:HashValue>\n"
    )


def _data_ref(uri: str, digest: bytes) -> str:
    return (
        f"        <ns2:DataRef URI={_quoted(uri)}>\n"
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
    steps = iter_build_hash_chains(
        messages, digest_algorithm=digest_algorithm, hash_chain_uri=hash_chain_uri
    )
    while True:
        try:
            next(steps)
        except StopIteration as done:
            batch: HashChainBatch = done.value
            return batch


def iter_build_hash_chains(
    messages: Sequence[Sequence[tuple[str, bytes]]],
    *,
    digest_algorithm: DigestAlgorithm = DigestAlgorithm.SHA512,
    hash_chain_uri: str = HASH_CHAIN_URI,
) -> Generator[None, None, HashChainBatch]:
    """:func:`build_hash_chains` in steps: a generator that pauses (yields
    None) every :data:`PAUSE_EVERY` digests or chains and returns the batch.

    A caller on an event loop resumes it between its other work: a batch of
    10 000 records takes over 100 ms, and in a thread it would share the GIL
    with the loop, whose SQLite statements then wait for the GIL at every
    row (``security_server._timestamper_sqlite``).

    Arguments, value and errors: those of :func:`build_hash_chains`.
    """
    if not messages or any(not m for m in messages):
        raise ValueError("every message needs at least one part")
    if len(messages) == 1 and len(messages[0]) == 1:
        raise ValueError("a single single-part message needs no hash chain")
    alg = digest_algorithm
    leaves: list[bytes] = []
    for m in messages:
        leaves.append(m[0][1] if len(m) == 1 else step_digest(alg, [d for _, d in m]))
        if len(leaves) % PAUSE_EVERY == 0:
            yield
    tree = yield from _Tree.grow(leaves, alg)
    top = tree.top
    if top is None:  # pragma: no cover - there is at least one input
        raise ValueError("empty tree")
    result = (
        f"{_HEADER}<ns2:HashChainResult URI={quoteattr(hash_chain_uri + '#STEP0')} "
        f"{_NSDECL}>\n"
        f'    <DigestMethod Algorithm="{alg.value}"/>\n'
        f"    <DigestValue>{_b64(top)}</DigestValue>\n"
        "</ns2:HashChainResult>\n"
    )
    chains = tuple((yield from tree.chains(messages)))
    return HashChainBatch(result.encode(), chains, top)
