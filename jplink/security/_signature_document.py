"""Read the shape of a signature document and resolve its Ids.

Signature-wrapping defence lives here: exactly one ``ds:Signature`` (bare or
inside ``asic:XAdESSignatures``), the fixed child order of XML-DSig §4.1,
and an Id index built only from this document in which every Id names
exactly one element.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from ._signature_model import NS_ASIC, SignaturePolicy, ds, malformed
from .c14n import CanonicalizationMethod, DigestAlgorithm, SignatureMethod

__all__ = [
    "SignatureDocument",
    "check_digest_allowed",
    "element_children",
    "inclusive_prefixes",
    "read_signature_document",
]

# Older X-Road versions wrote v1.1.1 (sig-batch-sig.xml); verifiers accept both.
_ASIC_ROOTS = {
    f"{{{NS_ASIC}}}XAdESSignatures",
    "{http://uri.etsi.org/02918/v1.1.1#}XAdESSignatures",
}
_ID_ATTRIBUTES = ("Id", "ID", "id")
# Every Id-like attribute (no namespace) of the root and its descendants.
_ID_VALUES = etree.XPath(
    " | ".join(f"descendant-or-self::*/@{name}" for name in _ID_ATTRIBUTES),
    smart_strings=True,
)
_EXC_C14N_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"


@dataclass(frozen=True, slots=True)
class SignatureDocument:
    """The parts of one ``ds:Signature``, checked for shape only."""

    signature: etree._Element
    signature_id: str
    signed_info: etree._Element
    signature_value: etree._Element
    key_info: etree._Element
    c14n: CanonicalizationMethod
    c14n_prefixes: tuple[str, ...]
    method: SignatureMethod
    references: tuple[etree._Element, ...]
    ids: dict[str, etree._Element]


def element_children(el: etree._Element) -> list[etree._Element]:
    """The element children of ``el`` (comments and PIs skipped)."""
    return [c for c in el if isinstance(c.tag, str)]


def inclusive_prefixes(el: etree._Element) -> tuple[str, ...]:
    """The exclusive-C14N ``InclusiveNamespaces/@PrefixList`` under ``el``."""
    inc = el.find(f"{{{_EXC_C14N_NS}}}InclusiveNamespaces")
    return tuple((inc.get("PrefixList") or "").split()) if inc is not None else ()


def check_digest_allowed(alg: DigestAlgorithm, policy: SignaturePolicy) -> None:
    """Raise ``MalformedSignature`` unless ``policy`` accepts ``alg``."""
    if alg not in policy.accepted_digests:
        raise malformed(
            f"Digest algorithm {alg.value} is not accepted", algorithm=alg.value
        )


def _locate_signature(root: etree._Element) -> etree._Element:
    if root.tag == ds("Signature"):
        return root
    if root.tag not in _ASIC_ROOTS:
        raise malformed(f"Unexpected signature document root {root.tag!r}")
    children = element_children(root)
    if len(children) != 1 or children[0].tag != ds("Signature"):
        raise malformed("XAdESSignatures must hold exactly one ds:Signature")
    return children[0]


def _index_ids(root: etree._Element) -> dict[str, etree._Element]:
    # Signature wrapping defence: an Id resolves only inside this document
    # and must name exactly one element.
    index: dict[str, etree._Element] = {}
    for value in _ID_VALUES(root):  # one XPath pass in C, not a get() per name
        if value in index:
            raise malformed(
                f"Duplicate Id {value!r} in the signature document", id=value
            )
        index[str(value)] = value.getparent()
    return index


def read_signature_document(
    root: etree._Element, policy: SignaturePolicy
) -> SignatureDocument:
    """Check the structure of a parsed signature document.

    Args:
        root: the parsed document root.
        policy: the accepted algorithms (the signature method's digest).

    Returns:
        The located signature parts.

    Raises:
        MalformedMessage: ``MalformedSignature`` for a document that breaks
            the profile or names an unknown or refused algorithm.
    """
    signature = _locate_signature(root)
    ids = _index_ids(root)
    children = element_children(signature)
    tags = [c.tag for c in children]
    if tags[:3] != [ds("SignedInfo"), ds("SignatureValue"), ds("KeyInfo")] or any(
        t != ds("Object") for t in tags[3:]
    ):
        raise malformed(
            "ds:Signature must be SignedInfo, SignatureValue, KeyInfo, Object*"
        )
    signed_info, value_el, key_info = children[:3]
    signature_id = signature.get("Id")
    if not signature_id:
        raise malformed("ds:Signature has no Id")
    si_children = element_children(signed_info)
    if len(si_children) < 3 or [c.tag for c in si_children[:2]] != [
        ds("CanonicalizationMethod"),
        ds("SignatureMethod"),
    ]:
        raise malformed(
            "SignedInfo must be CanonicalizationMethod, SignatureMethod, Reference+"
        )
    c14n = CanonicalizationMethod.from_uri(si_children[0].get("Algorithm"))
    method = SignatureMethod.from_uri(si_children[1].get("Algorithm"))
    check_digest_allowed(method.digest, policy)
    return SignatureDocument(
        signature=signature,
        signature_id=signature_id,
        signed_info=signed_info,
        signature_value=value_el,
        key_info=key_info,
        c14n=c14n,
        c14n_prefixes=inclusive_prefixes(si_children[0]),
        method=method,
        references=tuple(si_children[2:]),
        ids=ids,
    )
