"""Hash-chain verification's fast path: chains in the exact form X-Road writes.

Every chain a security server receives was written by a hash-chain builder:
X-Road's JAXB marshaller or :mod:`.hashchain` (which reproduces its bytes).
That form is fixed to the byte: the XML declaration, the root with exactly
its two namespace declarations, a ``DefaultDigestMethod``, then the steps,
one element per line with fixed indentation, URIs and ids of plain ASCII
characters, base64 values without line breaks. A document of exactly that
form means one thing only: no entity, comment, CDATA section, other
namespace binding or attribute can hide in it, and it is pure ASCII. So it
can be read with regular expressions instead of a parser and an element
tree (a chain of a 64-message batch: ~100 us through lxml).

The fast path only ever *accepts*: :func:`fast_verify` returns the verified
chain, or None for anything else, unusual or wrong (another layout, a
digest method per value, a duplicate step, a cycle, a digest that does not
match, an unused input...). Then the general evaluator in
:mod:`._hashchain_verify` runs on the same input and gives the verdict and
the precise error. A differential test checks that the fast path accepts
nothing the general evaluator refuses and gives the same result for what
it accepts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import cast

from jplink.errors import JPLinkError
from jplink.ns import NS_DS, NS_HASHCHAIN

from ._hashchain_digests import digest_list
from .c14n import DigestAlgorithm, b64decode_text

__all__ = ["FAST_MAX_BYTES", "FAST_MAX_ITEMS", "FAST_MAX_STEPS", "fast_verify"]

#: Larger documents, or with more steps or values, go to the general
#: evaluator (a batch of 2^20 messages has 21 steps per chain). Far below
#: its limits, so nothing accepted here would exceed them there.
FAST_MAX_BYTES = 64 * 1024
FAST_MAX_STEPS = 64
FAST_MAX_ITEMS = 1024

# Attribute values: printable ASCII an XML writer leaves unescaped, without
# whitespace (which a parser would normalise in an attribute).
_VALUE = rb"[!#-%\'-;=?-~]+"
_B64 = rb"[A-Za-z0-9+/]+={0,2}"
_ITEM = (
    rb'        <ns2:StepRef URI="#(' + _VALUE + rb')"/>\n'
    rb"|        <ns2:HashValue>\n"
    rb"            <DigestValue>(" + _B64 + rb")</DigestValue>\n"
    rb"        </ns2:HashValue>\n"
    rb'|        <ns2:DataRef URI="(' + _VALUE + rb')">\n'
    rb"            <DigestValue>(" + _B64 + rb")</DigestValue>\n"
    rb"        </ns2:DataRef>\n"
)
_STEP = (
    rb'    <ns2:HashStep id="('
    + _VALUE
    + rb')">\n((?:'
    + _ITEM
    + rb")+)    </ns2:HashStep>\n"
)
_DOCUMENT = re.compile(
    rb'<\?xml version="1\.0" encoding="UTF-8" standalone="yes"\?>\n'
    rb'<ns2:HashChain xmlns="' + re.escape(NS_DS.encode()) + rb'" '
    rb'xmlns:ns2="' + re.escape(NS_HASHCHAIN.encode()) + rb'">\n'
    rb'    <ns2:DefaultDigestMethod Algorithm="(' + _VALUE + rb')"/>\n'
    rb"((?:" + _STEP + rb")+)"
    rb"</ns2:HashChain>\n"
)  # fmt: skip
_STEPS = re.compile(_STEP)
_ITEMS = re.compile(_ITEM)

# An item: (StepRef id, HashValue, DataRef URI, DataRef value); one is set.
_Item = tuple[bytes | None, bytes | None, bytes | None, bytes | None]


class _Fallback(Exception):
    """Not for the fast path: the general evaluator decides."""


def _steps(chain_xml: bytes) -> tuple[str, dict[str, list[_Item]]] | None:
    """The default algorithm URI and the steps, or None: another form."""
    if len(chain_xml) > FAST_MAX_BYTES:
        return None
    document = _DOCUMENT.fullmatch(chain_xml)
    if document is None:
        return None
    region, start, items = document.group(2), 0, 0
    steps: dict[str, list[_Item]] = {}
    for step in _STEPS.finditer(region):
        # The document matched as a whole: the steps follow one another.
        if step.start() != start or len(steps) >= FAST_MAX_STEPS:
            return None
        start = step.end()
        step_id = step.group(1).decode("ascii")
        if step_id in steps:
            return None  # a duplicate: the general evaluator says so
        steps[step_id] = [
            cast(_Item, item.groups()) for item in _ITEMS.finditer(step.group(2))
        ]
        items += len(steps[step_id])
    if items > FAST_MAX_ITEMS:
        return None
    if start != len(region):  # pragma: no cover - the full match covers it
        return None
    return document.group(1).decode("ascii"), steps


class _Chain:
    """One evaluation; any surprise raises :class:`_Fallback`."""

    def __init__(
        self,
        steps: dict[str, list[_Item]],
        algorithm: DigestAlgorithm,
        inputs: Mapping[str, bytes],
        inputs_are_digests: bool,
        allow_unresolved: bool,
    ) -> None:
        self.steps = steps
        self.algorithm = algorithm
        self.inputs = inputs
        self.inputs_are_digests = inputs_are_digests
        self.allow_unresolved = allow_unresolved
        self.memo: dict[str, bytes] = {}
        self.active: set[str] = set()
        self.used: set[str] = set()
        self.unverified: set[str] = set()

    def resolve(self, step_id: str) -> bytes:
        """DER SEQUENCE OF SingleDigest of one step (as the general path)."""
        found = self.memo.get(step_id)
        if found is not None:
            return found
        items = self.steps.get(step_id)
        if items is None or step_id in self.active:
            raise _Fallback  # a missing step or a cycle
        self.active.add(step_id)
        alg = self.algorithm
        values = []
        for ref, hash_value, uri, written in items:
            if ref is not None:
                value = alg.digest(self.resolve(ref.decode("ascii")))
            elif hash_value is not None:
                value = b64decode_text(hash_value.decode("ascii"), "DigestValue")
            else:
                assert uri is not None and written is not None
                value = self._data(uri.decode("ascii"), written)
            values.append((alg, value))
        self.active.discard(step_id)
        self.memo[step_id] = digest_list(values)
        return self.memo[step_id]

    def _data(self, uri: str, written_b64: bytes) -> bytes:
        written = b64decode_text(written_b64.decode("ascii"), "DigestValue")
        given = self.inputs.get(uri)
        if given is not None:
            actual = given if self.inputs_are_digests else self.algorithm.digest(given)
            if actual != written:
                raise _Fallback  # InvalidHashChainRef, with its detail
            self.used.add(uri)
        elif uri in self.inputs or not self.allow_unresolved:
            raise _Fallback
        else:
            self.unverified.add(uri)
        return written


def fast_verify(
    chain_xml: bytes,
    *,
    result: tuple[DigestAlgorithm, bytes, str | None],
    hash_chain_uri: str,
    inputs: Mapping[str, bytes],
    inputs_are_digests: bool,
    accepted: frozenset[DigestAlgorithm],
    allow_unresolved: bool,
) -> tuple[bytes, tuple[str, ...], tuple[str, ...]] | None:
    """Verify a chain of X-Road's exact form, or None: use the general path.

    Args:
        chain_xml: the ``HashChain`` document.
        result: the result document's algorithm, digest value and URI.
        hash_chain_uri, inputs, inputs_are_digests, accepted,
        allow_unresolved: as the general evaluator's.

    Returns:
        The top digest and the verified and unverified DataRef URIs (sorted),
        when the chain evaluates to the result with every input used; None
        otherwise, never an error.
    """
    read = _steps(chain_xml)
    if read is None:
        return None
    result_alg, expected, uri = result
    prefix = hash_chain_uri + "#"
    if uri is None or not uri.startswith(prefix) or len(uri) == len(prefix):
        return None
    top_step = uri[len(prefix) :]
    try:
        algorithm = DigestAlgorithm.from_uri(read[0])
        if algorithm not in accepted:
            return None
        chain = _Chain(read[1], algorithm, inputs, inputs_are_digests, allow_unresolved)
        top = result_alg.digest(chain.resolve(top_step))
    except (_Fallback, JPLinkError, ValueError):
        return None
    if top != expected or chain.used != set(inputs):
        return None
    return top, tuple(sorted(chain.used)), tuple(sorted(chain.unverified))
