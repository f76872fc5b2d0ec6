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
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from lxml import etree

from jplink.errors import InvalidDigest, MalformedMessage
from jplink.ns import NS_DS, NS_HASHCHAIN
from jplink.xml import parse_xml

from .c14n import DigestAlgorithm, b64decode_text

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

#: File names of the two documents inside signed messages and ASiC containers.
HASH_CHAIN_RESULT_URI = "/sig-hashchainresult.xml"
HASH_CHAIN_URI = "/sig-hashchain.xml"
#: MIME type of the hash-chain result part and its DataObjectFormat.
HASH_CHAIN_RESULT_MIME = "application/hash-chain-result"

# Limits against crafted chains (X-Road's HashChainVerifier uses the same):
# a real chain has one step per tree level and two values per step.
_MAX_DEPTH = 64
_MAX_STEPS = 1024
_MAX_VALUES = 10_000

_HEADER = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_NSDECL = f'xmlns="{NS_DS}" xmlns:ns2="{NS_HASHCHAIN}"'


def _code(leaf: str) -> str:
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


def _digest_list(items: Sequence[tuple[DigestAlgorithm, bytes]]) -> bytes:
    # DER SEQUENCE OF SingleDigest (X-Road DigestList.concatDigests).
    singles = []
    for alg, digest in items:
        before, after = _single_digest_frame(alg, len(digest))
        singles.append(before + digest + after)
    return _der(0x30, b"".join(singles))


def step_digest(algorithm: DigestAlgorithm, digests: Sequence[bytes]) -> bytes:
    """The digest of one hash step over ``digests`` (all made with ``algorithm``)."""
    return algorithm.digest(_digest_list([(algorithm, d) for d in digests]))


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


# --------------------------------------------------------------------------
# Verification

_HC = f"{{{NS_HASHCHAIN}}}"
_DS = f"{{{NS_DS}}}"
_DIGEST_METHOD = f"{_DS}DigestMethod"
_DIGEST_VALUE = f"{_DS}DigestValue"
_TRANSFORMS = f"{_DS}Transforms"
_STEP_REF = f"{_HC}StepRef"
_HASH_VALUE = f"{_HC}HashValue"
_DATA_REF = f"{_HC}DataRef"
_HASH_CHAIN = f"{_HC}HashChain"
_HASH_STEP = f"{_HC}HashStep"
_DEFAULT_DIGEST_METHOD = f"{_HC}DefaultDigestMethod"


@dataclass(frozen=True, slots=True)
class VerifiedHashChain:
    """A hash chain that evaluated to the signed result.

    Attributes:
        top: the tree-top digest of the result document.
        digest_algorithm: the result's digest algorithm.
        verified_refs: DataRef URIs checked against the given data.
        unverified_refs: DataRef URIs accepted as written because their data
            was not given (only with ``allow_unresolved``).
    """

    top: bytes
    digest_algorithm: DigestAlgorithm
    verified_refs: tuple[str, ...]
    unverified_refs: tuple[str, ...]


def _malformed(message: str, **detail: object) -> MalformedMessage:
    return MalformedMessage(message, code=_code("MalformedHashChain"), detail=detail)


def _algorithm(
    el: etree._Element,
    default: DigestAlgorithm | None,
    accepted: frozenset[DigestAlgorithm],
) -> DigestAlgorithm:
    return _method_algorithm(el.find(_DIGEST_METHOD), default, accepted)


def _method_algorithm(
    method: etree._Element | None,
    default: DigestAlgorithm | None,
    accepted: frozenset[DigestAlgorithm],
) -> DigestAlgorithm:
    if method is not None:
        alg = DigestAlgorithm.from_uri(method.get("Algorithm"))
    elif default is not None:
        alg = default
    else:
        raise _malformed("Hash chain value without a digest method")
    if alg not in accepted:
        raise _malformed(f"Digest algorithm {alg.value} is not accepted")
    return alg


class _Evaluator:
    """Resolves hash steps of one chain document, with X-Road's limits."""

    def __init__(
        self,
        chain_xml: bytes,
        *,
        chain_uri: str,
        inputs: Mapping[str, bytes],
        inputs_are_digests: bool,
        accepted: frozenset[DigestAlgorithm],
        allow_unresolved: bool,
    ) -> None:
        root = parse_xml(chain_xml)
        if root.tag != _HASH_CHAIN:
            raise _malformed(f"Unexpected hash chain root {root.tag!r}")
        self.chain_uri = chain_uri
        self.inputs = inputs
        self.inputs_are_digests = inputs_are_digests
        self.accepted = accepted
        self.allow_unresolved = allow_unresolved
        self.default: DigestAlgorithm | None = None
        self.steps: dict[str, etree._Element] = {}
        for child in root:
            tag = child.tag
            if not isinstance(tag, str):
                continue
            step_id = child.get("id") if tag == _HASH_STEP else None
            if tag == _DEFAULT_DIGEST_METHOD and not self.steps:
                self.default = DigestAlgorithm.from_uri(child.get("Algorithm"))
            elif step_id:
                if step_id in self.steps:
                    raise _malformed(f"Duplicate hash step {step_id!r}")
                self.steps[step_id] = child
            else:
                raise _malformed(f"Unexpected element {tag!r} in hash chain")
        self.memo: dict[str, bytes] = {}
        self.active: set[str] = set()
        self.values = 0
        self.used: set[str] = set()
        self.unverified: set[str] = set()

    def step_id(self, uri: str | None) -> str:
        base, sep, fragment = (uri or "").partition("#")
        if not sep or not fragment or base not in ("", self.chain_uri):
            raise _malformed(f"Invalid hash step URI {uri!r}", uri=uri)
        return fragment

    def resolve(self, step_id: str) -> bytes:
        """DER SEQUENCE OF SingleDigest of one step."""
        if step_id in self.memo:
            return self.memo[step_id]
        if step_id in self.active:
            raise _malformed(f"Cycle in hash chain at {step_id!r}")
        if len(self.active) >= _MAX_DEPTH or len(self.memo) >= _MAX_STEPS:
            raise _malformed("Hash chain is too deep or too long")
        step = self.steps.get(step_id)
        if step is None:
            raise _malformed(f"No hash step {step_id!r}", step=step_id)
        self.active.add(step_id)
        items = [self.value(el) for el in step if isinstance(el.tag, str)]
        self.active.discard(step_id)
        self.memo[step_id] = _digest_list(items)
        return self.memo[step_id]

    def value(self, el: etree._Element) -> tuple[DigestAlgorithm, bytes]:
        self.values += 1
        if self.values > _MAX_VALUES:
            raise _malformed("Hash chain has too many values")
        tag = el.tag
        # One pass over the children (the first DigestMethod and DigestValue
        # count, as with find()); this runs for every value of every chain.
        method = digest_value = None
        for child in el:
            ctag = child.tag
            if ctag == _DIGEST_METHOD:
                if method is None:
                    method = child
            elif ctag == _DIGEST_VALUE:
                if digest_value is None:
                    digest_value = child
            elif ctag == _TRANSFORMS:
                raise _malformed("Transforms in hash chains are not supported")
        alg = _method_algorithm(method, self.default, self.accepted)
        if tag == _STEP_REF:
            return alg, alg.digest(self.resolve(self.step_id(el.get("URI"))))
        written = b64decode_text(
            None if digest_value is None else digest_value.text,
            "hash chain DigestValue",
        )
        if tag == _HASH_VALUE:
            return alg, written
        if tag != _DATA_REF:
            raise _malformed(f"Unexpected element {tag!r} in hash step")
        uri = el.get("URI") or ""
        if uri in self.inputs:
            given = self.inputs[uri]
            actual = given if self.inputs_are_digests else alg.digest(given)
            if actual != written:
                raise InvalidDigest(
                    f"Hash chain reference to {uri!r} does not match the data",
                    code=_code("InvalidHashChainRef"),
                    detail={"uri": uri},
                )
            self.used.add(uri)
        elif self.allow_unresolved:
            self.unverified.add(uri)
        else:
            raise MalformedMessage(
                f"Hash chain references {uri!r}, which was not given",
                code=_code("InvalidHashChainRef"),
                detail={"uri": uri},
            )
        return alg, written


@functools.lru_cache(maxsize=64)
def _read_result(
    result_xml: bytes, accepted: frozenset[DigestAlgorithm]
) -> tuple[DigestAlgorithm, bytes, str | None]:
    """Algorithm, digest value and URI of a result document.

    Memoised on the exact bytes: the messages of one batch share their
    result document, so it is parsed once per batch, not per message (a
    document that fails raises every time: errors are not cached).
    """
    result = parse_xml(result_xml)
    if result.tag != f"{_HC}HashChainResult":
        raise _malformed(f"Unexpected hash chain result root {result.tag!r}")
    result_alg = _algorithm(result, None, accepted)
    expected = b64decode_text(
        getattr(result.find(_DIGEST_VALUE), "text", None), "hash chain result"
    )
    return result_alg, expected, result.get("URI")


def verify_hash_chain(
    result_xml: bytes,
    chain_xml: bytes,
    *,
    data: Mapping[str, bytes] | None = None,
    digests: Mapping[str, bytes] | None = None,
    hash_chain_uri: str = HASH_CHAIN_URI,
    accepted_digests: frozenset[DigestAlgorithm] = frozenset(DigestAlgorithm),
    allow_unresolved: bool = False,
) -> VerifiedHashChain:
    """Evaluate a message's hash chain and check it against the result.

    Args:
        result_xml: the ``HashChainResult`` document (the signed bytes).
        chain_xml: this message's ``HashChain`` document.
        data: URI -> raw bytes of the message's parts; or
        digests: URI -> digests of the parts, made with the chain's algorithm.
        hash_chain_uri: the name the result uses for the chain document.
        accepted_digests: digest algorithms the policy accepts.
        allow_unresolved: accept DataRefs whose data is not given.

    Returns:
        The verified chain.

    Raises:
        MalformedMessage: codes ``MalformedSignature.MalformedHashChain`` (bad
            structure, unknown algorithm, bad step reference, cycle, limits),
            ``MalformedSignature.InvalidHashChainRef`` (data not given) and
            ``MalformedSignature.HashChainUnusedInputs`` (a given part is not
            in the chain).
        InvalidDigest: ``MalformedSignature.InvalidHashChainRef`` (a DataRef
            digest differs from the data) or
            ``MalformedSignature.InvalidHashChainResult`` (the chain does not
            evaluate to the result).
    """
    if data is not None and digests is not None:
        raise ValueError("give data or digests, not both")
    result_alg, expected, uri = _read_result(bytes(result_xml), accepted_digests)
    evaluator = _Evaluator(
        chain_xml,
        chain_uri=hash_chain_uri,
        inputs=data if data is not None else (digests or {}),
        inputs_are_digests=data is None,
        accepted=accepted_digests,
        allow_unresolved=allow_unresolved,
    )
    if not (uri or "").startswith(hash_chain_uri + "#"):
        raise _malformed(f"Hash chain result points at {uri!r}", uri=uri)
    top = result_alg.digest(evaluator.resolve(evaluator.step_id(uri)))
    if top != expected:
        raise InvalidDigest(
            "Hash chain does not evaluate to the signed hash chain result",
            code=_code("InvalidHashChainResult"),
        )
    unused = sorted(set(evaluator.inputs) - evaluator.used)
    if unused:
        raise MalformedMessage(
            f"Inputs not referenced by the hash chain: {', '.join(unused)}",
            code=_code("HashChainUnusedInputs"),
            detail={"uris": unused},
        )
    return VerifiedHashChain(
        top,
        result_alg,
        tuple(sorted(evaluator.used)),
        tuple(sorted(evaluator.unverified)),
    )
