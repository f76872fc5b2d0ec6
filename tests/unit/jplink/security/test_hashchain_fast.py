"""The hash-chain fast path against the general evaluator (differential).

The fast path (``_hashchain_fast.fast_verify``) reads chains of X-Road's
exact form with regular expressions; anything else goes to the general
evaluator, which parses the XML. The property: the fast path accepts nothing
the general evaluator refuses, and what it accepts it reads the same way.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import jplink.security._hashchain_verify as general_module
from jplink.errors import JPLinkError, MalformedMessage
from jplink.security._hashchain_fast import fast_verify
from jplink.security.c14n import DigestAlgorithm
from jplink.security.hashchain import (
    HASH_CHAIN_URI,
    VerifiedHashChain,
    build_hash_chains,
    verify_hash_chain,
)
from tests.support.hashchain import independent_step

ALL = frozenset(DigestAlgorithm)


def _data(i: int, count: int) -> dict[str, bytes]:
    """Message ``i``'s parts: the SOAP part and ``count`` attachments."""
    parts = {"/message.xml": b"m%d" % i}
    parts.update({f"/attachment{a + 1}": b"a%d-%d" % (i, a) for a in range(count)})
    return parts


def _messages(attachments: list[int]) -> list[list[tuple[str, bytes]]]:
    return [
        [(uri, hashlib.sha512(raw).digest()) for uri, raw in _data(i, count).items()]
        for i, count in enumerate(attachments)
    ]


def _fast(
    result_xml: bytes,
    chain_xml: bytes,
    inputs: Mapping[str, bytes],
    *,
    digests: bool = True,
    uri: str = HASH_CHAIN_URI,
    accepted: frozenset[DigestAlgorithm] = ALL,
    allow_unresolved: bool = False,
) -> tuple[bytes, tuple[str, ...], tuple[str, ...]] | None:
    try:
        read = general_module._read_result(result_xml, accepted)
    except JPLinkError:
        return None  # refused before the chain is read, on either path
    return fast_verify(
        chain_xml,
        result=read,
        hash_chain_uri=uri,
        inputs=inputs,
        inputs_are_digests=digests,
        accepted=accepted,
        allow_unresolved=allow_unresolved,
    )


def _general(
    monkeypatch: pytest.MonkeyPatch, call: Callable[[], VerifiedHashChain]
) -> VerifiedHashChain | JPLinkError:
    """The general evaluator's verdict alone (the fast path switched off)."""
    with monkeypatch.context() as patched:
        patched.setattr(general_module, "fast_verify", lambda *a, **k: None)
        try:
            return call()
        except JPLinkError as exc:
            return exc


@pytest.mark.parametrize("attachments", [[0, 0], [1], [0, 2, 0], [0] * 64, [1] * 9])
def test_builder_chains_take_the_fast_path(attachments):
    messages = _messages(attachments)
    batch = build_hash_chains(messages)
    for chain, message in zip(batch.chains, messages, strict=True):
        fast = _fast(batch.result, chain, dict(message))
        assert fast is not None
        assert fast[0] == batch.top
        assert fast[1] == tuple(sorted(u for u, _ in message))
        data = {u: b"not the data" for u, _ in message}
        assert _fast(batch.result, chain, data, digests=False) is None


def test_xroad_vector_takes_the_fast_path(xroad_vectors):
    # The chain X-Road itself wrote, checked against the raw data.
    result = (xroad_vectors / "sig-batch-hash-chain-result.xml").read_bytes()
    chain = (xroad_vectors / "sig-batch-hash-chain-1.xml").read_bytes()
    data = {
        "/message.xml": (xroad_vectors / "sig-batch-message-1.xml").read_bytes(),
        "/attachment1": b"blaah",
    }
    fast = _fast(result, chain, data, digests=False)
    assert fast is not None
    assert fast[1] == ("/attachment1", "/message.xml")
    assert verify_hash_chain(result, chain, data=data).top == fast[0]


def test_a_repeated_step_is_left_to_the_general_evaluator():
    messages = _messages([0, 0, 0])
    chain = build_hash_chains(messages).chains[0]
    start = chain.index(b'    <ns2:HashStep id="STEP1">')
    end = chain.index(b"</ns2:HashStep>\n", start) + len(b"</ns2:HashStep>\n")
    repeated = chain[:end] + chain[start:end] + chain[end:]
    result = build_hash_chains(messages).result
    assert _fast(result, repeated, dict(messages[0])) is None
    with pytest.raises(MalformedMessage, match="Duplicate hash step"):
        verify_hash_chain(result, repeated, digests=dict(messages[0]))


def test_other_layouts_fall_back_and_still_verify():
    messages = _messages([0, 1, 0])
    batch = build_hash_chains(messages)
    chain = batch.chains[1]
    # The same chain, written differently: valid XML, not X-Road's bytes.
    variants = [
        chain.replace(b"\n        ", b"\n\t"),
        chain.replace(
            b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n', b""
        ),
        chain.replace(b"<ns2:HashStep ", b"<!-- a step -->\n    <ns2:HashStep ", 1),
    ]
    for variant in variants:
        assert variant != chain
        assert _fast(batch.result, variant, dict(messages[1])) is None
        verified = verify_hash_chain(batch.result, variant, digests=dict(messages[1]))
        assert verified.top == batch.top


_SNIPPETS = [
    b"<!-- x -->",
    b"&amp;",
    b' a="b"',
    b"\r",
    b"\t",
    b'        <ns2:StepRef URI="#STEP1"/>\n',
    b'        <ns2:StepRef URI="#STEP0"/>\n',
    b"        <ns2:HashValue>\n            <DigestValue>AAAA</DigestValue>\n"
    b"        </ns2:HashValue>\n",
    b'        <ns2:DataRef URI="/message.xml">\n            <DigestValue>AAAA'
    b"</DigestValue>\n        </ns2:DataRef>\n",
    b'    <ns2:HashStep id="STEP9">\n        <ns2:StepRef URI="#STEP0"/>\n'
    b"    </ns2:HashStep>\n",
    b'<DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>',
]


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[bytes, list[int], int]:
    """A chain of a random batch, edited at random; the batch; its index."""
    attachments = draw(st.lists(st.integers(0, 2), min_size=2, max_size=16))
    index = draw(st.integers(0, len(attachments) - 1))
    chain = build_hash_chains(_messages(attachments)).chains[index]
    lines = chain.split(b"\n")
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(
            st.sampled_from(["byte", "delete", "copy", "swap", "insert", "ref"])
        )
        at = draw(st.integers(0, len(lines) - 1))
        if kind == "byte" and lines[at]:
            pos = draw(st.integers(0, len(lines[at]) - 1))
            new = draw(st.sampled_from(b"AZaz09+/=#\"<>&' \t1"))
            lines[at] = lines[at][:pos] + bytes([new]) + lines[at][pos + 1 :]
        elif kind == "delete" and len(lines) > 1:
            del lines[at]
        elif kind == "copy":
            lines.insert(at, lines[at])
        elif kind == "swap":
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif kind == "insert":
            lines.insert(at, draw(st.sampled_from(_SNIPPETS)).rstrip(b"\n"))
        elif kind == "ref":
            lines[at] = lines[at].replace(
                b"STEP", b"STEP" + str(draw(st.integers(0, 9))).encode(), 1
            )
    return b"\n".join(lines), attachments, index


@settings(
    max_examples=600,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    case=_mutated(),
    inputs=st.sampled_from(["own"] * 4 + ["other", "extra", "missing", "data"]),
    allow_unresolved=st.booleans(),
    uri=st.sampled_from([HASH_CHAIN_URI] * 4 + ["/other-chain.xml"]),
    result_uri=st.sampled_from([""] * 6 + ["#STEP0", HASH_CHAIN_URI + "#STEP1", "#"]),
    accepted=st.sampled_from([ALL] * 4 + [frozenset({DigestAlgorithm.SHA256})]),
)
def test_fast_path_accepts_only_what_the_general_evaluator_accepts(
    monkeypatch, case, inputs, allow_unresolved, uri, result_uri, accepted
):
    chain, attachments, index = case
    messages = _messages(attachments)
    own = dict(messages[index])
    given_inputs: dict[str, bytes] = {
        "own": own,
        "other": dict(messages[(index + 1) % len(messages)]),
        "extra": {**own, "/attachment9": bytes(64)},
        "missing": {},
        "data": _data(index, attachments[index]),
    }[inputs]
    digests = inputs != "data"
    result = build_hash_chains(messages).result
    if result_uri:  # the result names another step, or none
        old = f'URI="{HASH_CHAIN_URI}#STEP0"'.encode()
        result = result.replace(old, f'URI="{result_uri}"'.encode())

    def general() -> VerifiedHashChain:
        kwargs = {"digests": given_inputs} if digests else {"data": given_inputs}
        return verify_hash_chain(
            result,
            chain,
            hash_chain_uri=uri,
            accepted_digests=accepted,
            allow_unresolved=allow_unresolved,
            **kwargs,
        )

    verdict = _general(monkeypatch, general)
    fast = _fast(
        result,
        chain,
        given_inputs,
        digests=digests,
        uri=uri,
        accepted=accepted,
        allow_unresolved=allow_unresolved,
    )
    event("fast path accepted" if fast is not None else "fast path declined")
    event("general accepted" if isinstance(verdict, VerifiedHashChain) else "refused")
    if fast is not None:
        assert isinstance(verdict, VerifiedHashChain), verdict
        assert fast == (verdict.top, verdict.verified_refs, verdict.unverified_refs)
    # The public function gives the general verdict either way.
    try:
        public: VerifiedHashChain | JPLinkError = general()
    except JPLinkError as exc:
        public = exc
    if isinstance(verdict, VerifiedHashChain):
        assert public == verdict
    else:
        assert isinstance(public, JPLinkError)
        assert (public.code, public.message) == (verdict.code, verdict.message)


def test_a_chain_in_a_digest_the_policy_refuses_is_not_accepted(monkeypatch):
    # A crafted pair: the result in SHA-512 (accepted), the chain's steps in
    # SHA-256 (refused), the top digest computed correctly over them.
    messages = [
        [("/message.xml", hashlib.sha256(b"m%d" % i).digest())] for i in range(2)
    ]
    chain = build_hash_chains(messages, digest_algorithm=DigestAlgorithm.SHA256).chains[
        0
    ]
    top = independent_step(
        [d for m in messages for _, d in m], uri=DigestAlgorithm.SHA256.value
    )
    result = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<ns2:HashChainResult URI="{HASH_CHAIN_URI}#STEP0" '
        'xmlns="http://www.w3.org/2000/09/xmldsig#" '
        'xmlns:ns2="http://cyber.ee/hashchain">\n'
        f'    <DigestMethod Algorithm="{DigestAlgorithm.SHA512.value}"/>\n'
        f"    <DigestValue>{base64.b64encode(top).decode()}</DigestValue>\n"
        "</ns2:HashChainResult>\n"
    ).encode()
    own = dict(messages[0])
    # Both algorithms accepted: the pair verifies, on the fast path.
    assert _fast(result, chain, own) is not None
    # SHA-512 only: the general evaluator refuses, the fast path declines.
    sha512 = frozenset({DigestAlgorithm.SHA512})
    verdict = _general(
        monkeypatch,
        lambda: verify_hash_chain(result, chain, digests=own, accepted_digests=sha512),
    )
    assert isinstance(verdict, JPLinkError)
    assert _fast(result, chain, own, accepted=sha512) is None
