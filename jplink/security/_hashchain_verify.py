"""Hash-chain verification: a message's chain evaluated against the signed result.

Re-exported by :mod:`jplink.security.hashchain`. The chain documents come
from peers, so every step is bounded and every reference checked before a
digest is trusted.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from jplink.errors import InvalidDigest, MalformedMessage
from jplink.ns import NS_DS, NS_HASHCHAIN
from jplink.xml import parse_xml

from ._hashchain_digests import HASH_CHAIN_URI, digest_list, fault_code
from ._hashchain_fast import fast_verify
from .c14n import DigestAlgorithm, b64decode_text

__all__ = ["VerifiedHashChain", "verify_hash_chain"]

# Limits against crafted chains (X-Road's HashChainVerifier uses the same):
# a real chain has one step per tree level and two values per step.
_MAX_DEPTH = 64
_MAX_STEPS = 1024
_MAX_VALUES = 10_000

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
    return MalformedMessage(
        message, code=fault_code("MalformedHashChain"), detail=detail
    )


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
        self.memo[step_id] = digest_list(items)
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
                    code=fault_code("InvalidHashChainRef"),
                    detail={"uri": uri},
                )
            self.used.add(uri)
        elif self.allow_unresolved:
            self.unverified.add(uri)
        else:
            raise MalformedMessage(
                f"Hash chain references {uri!r}, which was not given",
                code=fault_code("InvalidHashChainRef"),
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
    read = _read_result(bytes(result_xml), accepted_digests)
    inputs = data if data is not None else (digests or {})
    fast = fast_verify(
        chain_xml,
        result=read,
        hash_chain_uri=hash_chain_uri,
        inputs=inputs,
        inputs_are_digests=data is None,
        accepted=accepted_digests,
        allow_unresolved=allow_unresolved,
    )
    if fast is not None:
        return VerifiedHashChain(fast[0], read[0], fast[1], fast[2])
    # Any other form, and every failure, is decided here.
    result_alg, expected, uri = read
    evaluator = _Evaluator(
        chain_xml,
        chain_uri=hash_chain_uri,
        inputs=inputs,
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
            code=fault_code("InvalidHashChainResult"),
        )
    unused = sorted(set(evaluator.inputs) - evaluator.used)
    if unused:
        raise MalformedMessage(
            f"Inputs not referenced by the hash chain: {', '.join(unused)}",
            code=fault_code("HashChainUnusedInputs"),
            detail={"uris": unused},
        )
    return VerifiedHashChain(
        top,
        result_alg,
        tuple(sorted(evaluator.used)),
        tuple(sorted(evaluator.unverified)),
    )
