"""Check every ``ds:Reference`` of a signature and what the references cover.

Per reference (XML-DSig §4.3.3): the raw bytes of a signed part or of the
batch hash-chain result (no transforms), or the canonical
``xades:SignedProperties`` of *this* signature. Then coverage: every given
part must be signed, directly or, for a batch signature, through the
message's hash chain (PROTOCOLS.md §6.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lxml import etree

from jplink.errors import InvalidDigest
from jplink.ns import NS_XADES

from ._signature_document import (
    SignatureDocument,
    check_digest_allowed,
    element_children,
    inclusive_prefixes,
)
from ._signature_model import (
    ReferenceKind,
    SignaturePolicy,
    VerifiedReference,
    ds,
    malformed,
)
from .c14n import CanonicalizationMethod, DigestAlgorithm, b64decode_text, canonicalize
from .hashchain import HASH_CHAIN_RESULT_URI, VerifiedHashChain, verify_hash_chain

__all__ = ["Coverage", "VerifiedReferences", "check_coverage", "verify_references"]


@dataclass(frozen=True, slots=True)
class VerifiedReferences:
    """Every reference digest matched; the SignedProperties element found."""

    references: tuple[VerifiedReference, ...]
    data_uris: frozenset[str]
    signed_properties: etree._Element


@dataclass(frozen=True, slots=True)
class Coverage:
    """What the signature covers: part URIs and the batch hash chain."""

    signed_uris: frozenset[str]
    hash_chain: VerifiedHashChain | None


def _reference_transform(
    ref: etree._Element,
) -> tuple[CanonicalizationMethod | None, tuple[str, ...]]:
    transforms = ref.find(ds("Transforms"))
    if transforms is None:
        return None, ()
    items = element_children(transforms)
    if len(items) != 1 or items[0].tag != ds("Transform"):
        raise malformed("Only a single canonicalization transform is supported")
    method = CanonicalizationMethod.from_uri(items[0].get("Algorithm"))
    return method, inclusive_prefixes(items[0])


def _signed_properties_target(
    doc: SignatureDocument, uri: str, already: etree._Element | None
) -> etree._Element:
    # Only this signature's own SignedProperties may be referenced by Id:
    # Object -> QualifyingProperties(Target=#signature) -> SignedProperties.
    target = doc.ids.get(uri[1:])
    qp = target.getparent() if target is not None else None
    obj = qp.getparent() if qp is not None else None
    if (
        already is not None
        or target is None
        or target.tag != f"{{{NS_XADES}}}SignedProperties"
        or qp is None
        or qp.tag != f"{{{NS_XADES}}}QualifyingProperties"
        or qp.get("Target") != "#" + doc.signature_id
        or obj is None
        or obj.getparent() is not doc.signature
    ):
        raise malformed(
            f"Reference {uri!r} does not name this signature's SignedProperties",
            uri=uri,
        )
    return target


def _data_octets(
    uri: str,
    parts: Mapping[str, bytes],
    hash_chain_result: bytes | None,
    hash_chain: bytes | None,
) -> tuple[bytes, ReferenceKind]:
    if uri == HASH_CHAIN_RESULT_URI:
        if hash_chain_result is None or hash_chain is None:
            raise malformed("Batch signature without hash chain and result", uri=uri)
        return hash_chain_result, ReferenceKind.HASH_CHAIN_RESULT
    if uri in parts:
        return parts[uri], ReferenceKind.DATA
    raise malformed(f"Signature references {uri!r}, which was not given", uri=uri)


def _read_reference(
    ref: etree._Element, policy: SignaturePolicy
) -> tuple[str, DigestAlgorithm, bytes]:
    if ref.tag != ds("Reference"):
        raise malformed(f"Unexpected element {ref.tag!r} in SignedInfo")
    uri = ref.get("URI")
    dm, dv = ref.find(ds("DigestMethod")), ref.find(ds("DigestValue"))
    if not uri or dm is None or dv is None:
        raise malformed("Reference needs URI, DigestMethod and DigestValue")
    alg = DigestAlgorithm.from_uri(dm.get("Algorithm"))
    check_digest_allowed(alg, policy)
    return uri, alg, b64decode_text(dv.text, "DigestValue")


def verify_references(
    doc: SignatureDocument,
    *,
    parts: Mapping[str, bytes],
    hash_chain_result: bytes | None,
    hash_chain: bytes | None,
    policy: SignaturePolicy,
) -> VerifiedReferences:
    """Check the digest of every reference in SignedInfo order.

    Raises:
        MalformedMessage: ``MalformedSignature`` for a bad or unresolvable
            reference, transforms on raw data, or a duplicate reference.
        InvalidDigest: a digest does not match (``InvalidSignatureValue``).
    """
    verified: list[VerifiedReference] = []
    data_uris: set[str] = set()
    signed_properties: etree._Element | None = None
    for ref in doc.references:
        uri, alg, expected = _read_reference(ref, policy)
        transform, prefixes = _reference_transform(ref)
        if uri.startswith("#"):
            signed_properties = _signed_properties_target(doc, uri, signed_properties)
            # XML-DSig §4.3.3.2/§4.3.3.3: a same-document reference without
            # transforms is converted to octets with inclusive C14N 1.0.
            octets = canonicalize(
                signed_properties,
                transform or CanonicalizationMethod.C14N_10,
                inclusive_prefixes=prefixes,
            )
            kind = ReferenceKind.SIGNED_PROPERTIES
        else:
            if transform is not None:
                raise malformed(
                    f"Reference {uri!r} to raw data must not have transforms", uri=uri
                )
            if uri in data_uris:
                raise malformed(f"Duplicate reference to {uri!r}", uri=uri)
            data_uris.add(uri)
            octets, kind = _data_octets(uri, parts, hash_chain_result, hash_chain)
        actual = alg.digest(octets)
        if actual != expected:
            raise InvalidDigest(
                f"Digest of {uri!r} does not match the signature", detail={"uri": uri}
            )
        verified.append(VerifiedReference(uri, kind, alg, actual))
    if signed_properties is None:
        raise malformed("Signature has no reference to xades:SignedProperties")
    return VerifiedReferences(tuple(verified), frozenset(data_uris), signed_properties)


def check_coverage(
    data_uris: frozenset[str],
    *,
    parts: Mapping[str, bytes],
    hash_chain_result: bytes | None,
    hash_chain: bytes | None,
    policy: SignaturePolicy,
    allow_unresolved_chain_refs: bool,
) -> Coverage:
    """Check that every given part is signed, directly or via the hash chain.

    Args:
        data_uris: the URIs the signature references directly
            (:attr:`VerifiedReferences.data_uris`).
        parts, hash_chain_result, hash_chain: as given to the verifier.
        policy: the accepted digests (of the hash chain).
        allow_unresolved_chain_refs: accept chain DataRefs without data.

    Returns:
        The signed part URIs and the verified hash chain, if any.

    Raises:
        MalformedMessage: ``MalformedSignature[...]`` for an unsigned part, a
            batch signature that references more than the chain result, an
            unused hash chain, or a malformed chain.
        InvalidDigest: the hash chain does not evaluate to the result.
    """
    if HASH_CHAIN_RESULT_URI not in data_uris:
        if hash_chain is not None or hash_chain_result is not None:
            raise malformed("Hash chain given, but the signature does not reference it")
        unsigned = sorted(set(parts) - data_uris)
        if unsigned:
            raise malformed(
                f"Parts not covered by the signature: {', '.join(unsigned)}",
                uris=unsigned,
            )
        return Coverage(data_uris, None)
    if len(data_uris) != 1:
        raise malformed("A batch signature must reference only the hash-chain result")
    if hash_chain_result is None or hash_chain is None:  # checked per reference
        raise malformed("Batch signature without hash chain and result")
    chain = verify_hash_chain(
        hash_chain_result,
        hash_chain,
        data=parts,
        accepted_digests=policy.accepted_digests,
        allow_unresolved=allow_unresolved_chain_refs,
    )
    return Coverage(frozenset(parts), chain)
