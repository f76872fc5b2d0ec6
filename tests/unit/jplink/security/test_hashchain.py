"""Hash chains: X-Road's vectors, tree shapes, and every way a chain can lie."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jplink.errors import InvalidDigest, MalformedMessage
from jplink.security import hashchain
from jplink.security.c14n import DigestAlgorithm
from jplink.security.hashchain import (
    HASH_CHAIN_URI,
    build_hash_chains,
    iter_build_hash_chains,
    step_digest,
    verify_hash_chain,
)
from tests.support.hashchain import independent_step, independent_top

SHA512 = DigestAlgorithm.SHA512


@pytest.fixture
def vector_inputs(xroad_vectors):
    return {
        "result": (xroad_vectors / "sig-batch-hash-chain-result.xml").read_bytes(),
        "chain": (xroad_vectors / "sig-batch-hash-chain-1.xml").read_bytes(),
        "data": {
            "/message.xml": (xroad_vectors / "sig-batch-message-1.xml").read_bytes(),
            "/attachment1": b"blaah",
        },
    }


def test_builder_reproduces_xroad_documents(vector_inputs):
    data = vector_inputs["data"]
    batch = build_hash_chains(
        [
            [
                (uri, hashlib.sha512(data[uri]).digest())
                for uri in ("/message.xml", "/attachment1")
            ]
        ]
    )
    assert batch.result == vector_inputs["result"]
    assert batch.chains == (vector_inputs["chain"],)
    assert batch.top == independent_step(
        [
            hashlib.sha512(data["/message.xml"]).digest(),
            hashlib.sha512(b"blaah").digest(),
        ]
    )


def test_verifies_xroad_vector_with_data_and_digests(vector_inputs):
    v = vector_inputs
    by_data = verify_hash_chain(v["result"], v["chain"], data=v["data"])
    assert by_data.verified_refs == ("/attachment1", "/message.xml")
    digests = {uri: hashlib.sha512(d).digest() for uri, d in v["data"].items()}
    assert (
        verify_hash_chain(v["result"], v["chain"], digests=digests).top == by_data.top
    )


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6, 7, 8, 9, 13, 17])
def test_every_chain_of_every_tree_shape_verifies(n):
    messages = [
        [("/message.xml", hashlib.sha512(b"m%d" % i).digest())]
        + (
            [("/attachment1", hashlib.sha512(b"a%d" % i).digest())]
            if i % 3 == 1
            else []
        )
        for i in range(n)
    ]
    batch = build_hash_chains(messages)
    leaves = [
        m[0][1] if len(m) == 1 else independent_step([d for _, d in m])
        for m in messages
    ]
    assert batch.top == independent_top(leaves)
    for i, chain in enumerate(batch.chains):
        digests = dict(messages[i])
        assert verify_hash_chain(batch.result, chain, digests=digests).top == batch.top
        # A chain proves its own message only.
        other = dict(messages[(i + 1) % n])
        with pytest.raises((InvalidDigest, MalformedMessage)):
            verify_hash_chain(batch.result, chain, digests=other)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 2), min_size=2, max_size=300))
def test_large_batches_every_chain_verifies(attachments):
    # Batches as the time-stamper builds them (hundreds of records per
    # stamp), any mix of attachments: each chain proves its own message to
    # the checker, which evaluates it independently of how it was written.
    messages = [
        [("/message.xml", hashlib.sha512(b"m%d" % i).digest())]
        + [
            (f"/attachment{a + 1}", hashlib.sha512(b"a%d-%d" % (i, a)).digest())
            for a in range(count)
        ]
        for i, count in enumerate(attachments)
    ]
    batch = build_hash_chains(messages)
    leaves = [
        m[0][1] if len(m) == 1 else independent_step([d for _, d in m])
        for m in messages
    ]
    assert batch.top == independent_top(leaves)
    assert len(batch.chains) == len(messages)
    for chain, message in zip(batch.chains, messages, strict=True):
        verified = verify_hash_chain(batch.result, chain, digests=dict(message))
        assert verified.top == batch.top
        assert sorted(verified.verified_refs) == sorted(u for u, _ in message)


@pytest.mark.parametrize("n", [2, 7, 64, 301])
def test_built_in_steps_with_pauses(n, monkeypatch):
    # The time-stamper builds its batch in steps on the event loop, pausing
    # every PAUSE_EVERY digests or chains; the pauses fall inside the tree's
    # levels and the chains' walk, and must change nothing.
    monkeypatch.setattr(hashchain, "PAUSE_EVERY", 3)
    messages = [
        [("/message.xml", hashlib.sha512(b"m%d" % i).digest())]
        + ([("/attachment1", b"\x01" * 64)] if i % 5 == 2 else [])
        for i in range(n)
    ]
    steps = iter_build_hash_chains(messages)
    pauses = 0
    while True:
        try:
            assert next(steps) is None
        except StopIteration as done:
            batch = done.value
            break
        pauses += 1
    # One pause per 3 leaves and per 3 chains, more within the tree.
    assert pauses >= 2 * (n // 3)
    if n >= 64:
        assert pauses > 2 * (n // 3)
    leaves = [
        m[0][1] if len(m) == 1 else independent_step([d for _, d in m])
        for m in messages
    ]
    assert batch.top == independent_top(leaves)
    for chain, message in zip(batch.chains, messages, strict=True):
        assert verify_hash_chain(batch.result, chain, digests=dict(message)).top == (
            batch.top
        )


def test_step_digest_matches_independent_der():
    digests = [bytes(64), b"\xff" * 64]
    assert step_digest(SHA512, digests) == independent_step(digests)
    # Long contents need multi-byte DER lengths.
    many = [bytes([i]) * 64 for i in range(40)]
    assert step_digest(SHA512, many) == independent_step(many)


def test_builder_misuse():
    with pytest.raises(ValueError):
        build_hash_chains([])
    with pytest.raises(ValueError):
        build_hash_chains([[("/message.xml", bytes(64))]])
    with pytest.raises(ValueError):
        build_hash_chains([[("/message.xml", bytes(64))], []])


# -- negatives ------------------------------------------------------------


def _codes(excinfo):
    return excinfo.value.code


def test_tampered_data_is_invalid_ref(vector_inputs):
    v = vector_inputs
    with pytest.raises(InvalidDigest) as info:
        verify_hash_chain(
            v["result"], v["chain"], data={**v["data"], "/attachment1": b"x"}
        )
    assert _codes(info) == "MalformedSignature.InvalidHashChainRef"


def test_unused_input(vector_inputs):
    v = vector_inputs
    with pytest.raises(MalformedMessage) as info:
        verify_hash_chain(
            v["result"], v["chain"], data={**v["data"], "/attachment2": b""}
        )
    assert _codes(info) == "MalformedSignature.HashChainUnusedInputs"


def test_unresolved_ref_needs_permission(vector_inputs):
    v = vector_inputs
    only_message = {"/message.xml": v["data"]["/message.xml"]}
    with pytest.raises(MalformedMessage) as info:
        verify_hash_chain(v["result"], v["chain"], data=only_message)
    assert _codes(info) == "MalformedSignature.InvalidHashChainRef"
    ok = verify_hash_chain(
        v["result"], v["chain"], data=only_message, allow_unresolved=True
    )
    assert ok.unverified_refs == ("/attachment1",)


def test_chain_that_evaluates_elsewhere(vector_inputs):
    v = vector_inputs
    # Consistently replace an input and its DataRef: the chain now evaluates
    # to a different top, which the signed result does not contain.
    new = base64.b64encode(hashlib.sha512(b"other").digest())
    chain = re.sub(rb"ylyfi1Wl[^<]+", new, v["chain"])
    with pytest.raises(InvalidDigest) as info:
        verify_hash_chain(
            v["result"], chain, data={**v["data"], "/attachment1": b"other"}
        )
    assert _codes(info) == "MalformedSignature.InvalidHashChainResult"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'id="STEP0"', b'id="STEP9"'),  # the result points at a missing step
        (b"xmlenc#sha512", b"xmldsig#sha1"),  # an unaccepted algorithm
        (b"<ns2:HashStep", b"<ns2:Bogus><ns2:HashStep"),  # not a hash chain
        (
            b"</ns2:DataRef>\n    </ns2:HashStep>",
            b"</ns2:DataRef>\n<ns2:Foo/></ns2:HashStep>",
        ),
        (b"<DigestValue>+5CB", b"<DigestValue>!!"),  # not base64
    ],
)
def test_malformed_chains(vector_inputs, old, new):
    v = vector_inputs
    assert old in v["chain"]
    chain = v["chain"].replace(old, new, 1)
    if b"Bogus" in new:
        chain = chain.replace(b"</ns2:HashChain>", b"</ns2:Bogus></ns2:HashChain>")
    with pytest.raises(MalformedMessage):
        verify_hash_chain(v["result"], chain, data=v["data"])


def test_cycle_and_foreign_step_uris():
    digest = base64.b64encode(bytes(64)).decode()
    header = (
        '<ns2:HashChain xmlns="http://www.w3.org/2000/09/xmldsig#" '
        'xmlns:ns2="http://cyber.ee/hashchain">'
        f'<ns2:DefaultDigestMethod Algorithm="{SHA512.value}"/>'
    )
    result = (
        '<ns2:HashChainResult URI="/sig-hashchain.xml#STEP0" '
        'xmlns="http://www.w3.org/2000/09/xmldsig#" xmlns:ns2="http://cyber.ee/hashchain">'
        f'<DigestMethod Algorithm="{SHA512.value}"/><DigestValue>{digest}</DigestValue>'
        "</ns2:HashChainResult>"
    ).encode()
    cycle = (
        header + '<ns2:HashStep id="STEP0"><ns2:StepRef URI="#STEP1"/></ns2:HashStep>'
        '<ns2:HashStep id="STEP1"><ns2:StepRef URI="#STEP0"/></ns2:HashStep>'
        "</ns2:HashChain>"
    ).encode()
    with pytest.raises(MalformedMessage, match="Cycle"):
        verify_hash_chain(result, cycle)
    foreign = (
        header + '<ns2:HashStep id="STEP0"><ns2:StepRef URI="/other.xml#STEP1"/>'
        "</ns2:HashStep></ns2:HashChain>"
    ).encode()
    with pytest.raises(MalformedMessage, match="Invalid hash step URI"):
        verify_hash_chain(result, foreign)
    with pytest.raises(MalformedMessage):
        verify_hash_chain(result.replace(HASH_CHAIN_URI.encode(), b"/x.xml"), cycle)
