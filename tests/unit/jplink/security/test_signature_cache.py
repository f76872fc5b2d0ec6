"""The batch-signature cache: one document check per batch, never a weaker check.

A hit skips the document checks (references, SignatureValue, XAdES binding)
only for the exact same signature and hash-chain-result bytes under the same
policy; each message's hash chain and the SigningTime check still run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from jplink.errors import InvalidDigest, InvalidSignature, MalformedMessage
from jplink.security import signature as signature_mod
from jplink.security.c14n import DigestAlgorithm
from jplink.security.signature import (
    BatchSignatureCache,
    SignaturePolicy,
    SignedPart,
    sign_batch,
    sign_message,
    verify_signature,
)
from tests.unit.jplink.security.test_signature_roundtrip import _make_signer

SIGNING_TIME = dt.datetime(2026, 11, 21, 8, 59, 30, tzinfo=dt.UTC)
AFTER = SIGNING_TIME + dt.timedelta(seconds=1)


@pytest.fixture(scope="module")
def signer():
    return _make_signer(ec.generate_private_key(ec.SECP384R1()))


def _message(i: int) -> list[SignedPart]:
    return [
        SignedPart("/message.xml", f"<env>message {i}</env>".encode()),
        SignedPart("/attachment1", bytes([i]) * 40, "application/octet-stream"),
    ]


@pytest.fixture(scope="module")
def batch(signer):
    key, cert = signer
    messages = [_message(i) for i in range(3)]
    signed = sign_batch(messages, key=key, cert=cert, signing_time=SIGNING_TIME)
    return messages, signed


def _verify(messages, signed, i, cache, *, now=AFTER, parts=None, **kw):
    return verify_signature(
        signed[i].signature_xml,
        parts=parts or {p.uri: p.data for p in messages[i]},
        hash_chain_result=signed[i].hash_chain_result,
        hash_chain=signed[i].hash_chain,
        now=now,
        cache=cache,
        **kw,
    )


class _Counting:
    """Counts how often the SignatureValue is checked (the expensive step)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = signature_mod._verify_value

        def counting(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(signature_mod, "_verify_value", counting)


def test_one_document_check_per_batch(batch, monkeypatch):
    messages, signed = batch
    counter = _Counting(monkeypatch)
    cache = BatchSignatureCache()
    fresh = [_verify(messages, signed, i, None) for i in range(3)]
    assert counter.calls == 3
    cached = [_verify(messages, signed, i, cache) for i in range(3)]
    # The batch shares one document: checked once, then only the chains.
    assert counter.calls == 4
    assert (cache.hits, cache.misses, len(cache)) == (2, 1, 1)
    # A hit gives the same result a fresh check gives, message by message.
    for got, want in zip(cached, fresh, strict=True):
        assert got.hash_chain == want.hash_chain
        assert got.signed_uris == want.signed_uris
        assert got.references == want.references
        assert got.signature_value == want.signature_value
        assert got.signing_time == want.signing_time
        assert got.signer_certificate == want.signer_certificate
    assert {r.hash_chain.top for r in cached if r.hash_chain} == {
        fresh[0].hash_chain.top  # type: ignore[union-attr]
    }


def test_a_hit_still_checks_each_message(batch):
    messages, signed = batch
    cache = BatchSignatureCache()
    _verify(messages, signed, 0, cache)
    tampered = {p.uri: p.data for p in messages[1]}
    tampered["/message.xml"] += b" "
    with pytest.raises(InvalidDigest) as info:
        _verify(messages, signed, 1, cache, parts=tampered)
    assert info.value.code == "MalformedSignature.InvalidHashChainRef"
    # Another message's chain with this message's parts.
    with pytest.raises(InvalidDigest):
        verify_signature(
            signed[1].signature_xml,
            parts={p.uri: p.data for p in messages[1]},
            hash_chain_result=signed[1].hash_chain_result,
            hash_chain=signed[2].hash_chain,
            now=AFTER,
            cache=cache,
        )
    # An unsigned extra part.
    extra = {p.uri: p.data for p in messages[1]} | {"/attachment2": b"x"}
    with pytest.raises(MalformedMessage):
        _verify(messages, signed, 1, cache, parts=extra)
    # A hash chain missing altogether.
    with pytest.raises(MalformedMessage):
        verify_signature(
            signed[1].signature_xml,
            parts={p.uri: p.data for p in messages[1]},
            hash_chain_result=signed[1].hash_chain_result,
            now=AFTER,
            cache=cache,
        )
    assert cache.hits == 4  # every refusal above came from a hit


def test_signing_time_is_checked_again_on_a_hit(batch):
    messages, signed = batch
    cache = BatchSignatureCache()
    _verify(messages, signed, 0, cache, now=AFTER)
    # A verifier whose clock is far behind the SigningTime refuses, hit or not.
    early = SIGNING_TIME - dt.timedelta(hours=1)
    with pytest.raises(InvalidSignature):
        _verify(messages, signed, 1, cache, now=early)
    assert cache.hits == 1


def test_the_key_is_the_exact_bytes(batch, signer):
    messages, signed = batch
    cache = BatchSignatureCache()
    _verify(messages, signed, 0, cache)
    # One byte more in the signature document: not a hit, checked afresh.
    doc = signed[1].signature_xml.replace(
        b"</ds:SignatureValue>", b"</ds:SignatureValue>\n", 1
    )
    assert doc != signed[1].signature_xml
    result = verify_signature(
        doc,
        parts={p.uri: p.data for p in messages[1]},
        hash_chain_result=signed[1].hash_chain_result,
        hash_chain=signed[1].hash_chain,
        now=AFTER,
        cache=cache,
    )
    assert result.hash_chain is not None
    assert (cache.hits, cache.misses) == (0, 2)
    # A forged signature value with the cached result bytes: a miss, refused.
    forged = signed[1].signature_xml.replace(
        b'Id="signature-value">\n', b'Id="signature-value">\nAAAA', 1
    )
    assert forged != signed[1].signature_xml
    with pytest.raises((InvalidSignature, MalformedMessage)):
        verify_signature(
            forged,
            parts={p.uri: p.data for p in messages[1]},
            hash_chain_result=signed[1].hash_chain_result,
            hash_chain=signed[1].hash_chain,
            now=AFTER,
            cache=cache,
        )
    # A changed hash-chain result under the cached document: a miss, refused.
    result_xml = signed[1].hash_chain_result
    assert result_xml is not None
    with pytest.raises((InvalidDigest, MalformedMessage)):
        verify_signature(
            signed[1].signature_xml,
            parts={p.uri: p.data for p in messages[1]},
            hash_chain_result=result_xml + b"\n",
            hash_chain=signed[1].hash_chain,
            now=AFTER,
            cache=cache,
        )
    assert cache.hits == 0
    # Nothing that failed was stored.
    assert len(cache) == 2


def test_another_policy_is_another_entry(batch):
    messages, signed = batch
    cache = BatchSignatureCache()
    _verify(messages, signed, 0, cache)
    strict = dataclasses.replace(
        SignaturePolicy(), accepted_digests=frozenset({DigestAlgorithm.SHA256})
    )
    # Cached under the default policy, but SHA-512 is refused under this one.
    with pytest.raises(MalformedMessage):
        _verify(messages, signed, 1, cache, policy=strict)
    assert cache.hits == 0


def test_direct_signatures_are_not_stored(signer):
    key, cert = signer
    parts = _message(7)
    doc = sign_message(parts, key=key, cert=cert, signing_time=SIGNING_TIME)
    cache = BatchSignatureCache()
    verify_signature(doc, parts={p.uri: p.data for p in parts}, now=AFTER, cache=cache)
    assert len(cache) == 0


def test_bounded_least_recently_used(signer):
    key, cert = signer
    cache = BatchSignatureCache(max_entries=2)
    batches = []
    for seed in range(3):
        messages = [_message(10 * seed + i) for i in range(2)]
        signed = sign_batch(messages, key=key, cert=cert, signing_time=SIGNING_TIME)
        batches.append((messages, signed))
    _verify(*batches[0], 0, cache)
    _verify(*batches[1], 0, cache)
    _verify(*batches[0], 1, cache)  # batch 0 used again: batch 1 is the oldest
    _verify(*batches[2], 0, cache)
    assert len(cache) == 2
    hits = cache.hits
    _verify(*batches[0], 1, cache)
    assert cache.hits == hits + 1
    _verify(*batches[1], 1, cache)
    assert cache.hits == hits + 1  # forgotten, checked afresh
    cache.clear()
    assert len(cache) == 0
    with pytest.raises(ValueError):
        BatchSignatureCache(max_entries=0)


def test_x_road_batch_vector_through_the_cache(xroad_vectors: Path):
    def read(name: str) -> bytes:
        return (xroad_vectors / name).read_bytes()

    args = {
        "parts": {
            "/message.xml": read("sig-batch-message-1.xml"),
            "/attachment1": b"blaah",
        },
        "hash_chain_result": read("sig-batch-hash-chain-result.xml"),
        "hash_chain": read("sig-batch-hash-chain-1.xml"),
    }
    cache = BatchSignatureCache()
    doc = read("sig-batch-sig.xml")
    first = verify_signature(doc, cache=cache, **args)
    second = verify_signature(doc, cache=cache, **args)
    assert cache.hits == 1
    assert second.hash_chain == first.hash_chain
    assert second.hash_chain is not None
    assert second.hash_chain.verified_refs == ("/attachment1", "/message.xml")
    bad = dict(args, parts={**args["parts"], "/attachment1": b"blaah!"})  # type: ignore[dict-item]
    with pytest.raises(InvalidDigest):
        verify_signature(doc, cache=cache, **bad)  # type: ignore[arg-type]
