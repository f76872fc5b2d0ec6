"""Write an ``asic:XAdESSignatures`` document the way X-Road 7 does.

The layout (element order, Ids, the newlines between elements) follows
Santuario's output in X-Road's ``SignatureXmlBuilder``: the whitespace is part
of the canonical SignedInfo, so it must match to the byte for our signatures
to reproduce X-Road's (PROTOCOLS.md §6.1-6.2).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from lxml import etree

from jplink.ns import NS_DS, NS_XADES, NS_XSI

from ._signature_model import NS_ASIC, SignaturePolicy, SignedPart, SigningKey, ds
from .c14n import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
    b64encode_wrapped,
    canonicalize,
    sign_octets,
)
from .certs import certificate_der
from .xades import SIGNED_PROPERTIES_TYPE, build_qualifying_properties

__all__ = [
    "XML_DECLARATION",
    "SignatureTree",
    "check_key",
    "finish_document",
    "serialize_document",
    "signature_tree",
]

XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>'
_SPKI = PublicFormat.SubjectPublicKeyInfo
_SIGNING_TIME = f"{{{NS_XADES}}}SignedSignatureProperties/{{{NS_XADES}}}SigningTime"


def check_key(
    key: SigningKey, cert: x509.Certificate, signing_time: dt.datetime
) -> None:
    if signing_time.tzinfo is None:
        raise ValueError("signing_time must be timezone-aware")
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise TypeError("key must be an RSA or EC private key")
    if not _belongs(key, cert):
        raise ValueError("the private key does not belong to the certificate")


@functools.lru_cache(maxsize=64)
def _belongs(key: SigningKey, cert: x509.Certificate) -> bool:
    # A signer uses the same key and certificate for every message: the
    # public keys are encoded and compared once per pair (the cache holds
    # the key object, so its identity cannot be reused by another key).
    spki = key.public_key().public_bytes(Encoding.DER, _SPKI)
    return spki == cert.public_key().public_bytes(Encoding.DER, _SPKI)


def _add_reference(
    signed_info: etree._Element,
    *,
    ref_id: str,
    uri: str,
    algorithm: DigestAlgorithm,
    ref_type: str | None = None,
) -> etree._Element:
    # Santuario's layout: a newline between elements. The whitespace is part
    # of the canonical SignedInfo, so it must match X-Road's to the byte.
    ref = etree.SubElement(signed_info, ds("Reference"), Id=ref_id)
    if ref_type is not None:
        ref.set("Type", ref_type)
    ref.set("URI", uri)
    ref.text = ref.tail = "\n"
    etree.SubElement(ref, ds("DigestMethod"), Algorithm=algorithm.value).tail = "\n"
    value = etree.SubElement(ref, ds("DigestValue"))
    value.tail = "\n"
    return value


def _signed_info(
    signature: etree._Element,
    parts: Sequence[SignedPart],
    method: SignatureMethod,
    alg: DigestAlgorithm,
) -> tuple[etree._Element, tuple[etree._Element, ...], etree._Element]:
    """SignedInfo with the part references; returns it, the parts'
    DigestValues and the empty DigestValue of the SignedProperties reference."""
    signed_info = etree.SubElement(signature, ds("SignedInfo"))
    signed_info.text = signed_info.tail = "\n"
    etree.SubElement(
        signed_info,
        ds("CanonicalizationMethod"),
        Algorithm=CanonicalizationMethod.C14N_10.value,
    ).tail = "\n"
    etree.SubElement(
        signed_info, ds("SignatureMethod"), Algorithm=method.value
    ).tail = "\n"
    digests = []
    for i, part in enumerate(parts):
        digest = _add_reference(
            signed_info, ref_id=f"signature-reference-{i}", uri=part.uri, algorithm=alg
        )
        digest.text = b64encode_wrapped(alg.digest(part.data))
        digests.append(digest)
    sp_digest = _add_reference(
        signed_info,
        ref_id=f"signature-reference-{len(parts)}",
        uri="#signed-properties",
        algorithm=alg,
        ref_type=SIGNED_PROPERTIES_TYPE,
    )
    return signed_info, tuple(digests), sp_digest


def _key_info(signature: etree._Element, cert: x509.Certificate) -> None:
    key_info = etree.SubElement(signature, ds("KeyInfo"))
    key_info.text = key_info.tail = "\n"
    x509_data = etree.SubElement(key_info, ds("X509Data"))
    x509_data.text = x509_data.tail = "\n"
    cert_el = etree.SubElement(x509_data, ds("X509Certificate"))
    cert_el.text = "\n" + b64encode_wrapped(certificate_der(cert)) + "\n"
    cert_el.tail = "\n"


@dataclass(frozen=True, slots=True)
class SignatureTree:
    """A signature document under construction (see :func:`signature_tree`).

    Attributes:
        root: the ``asic:XAdESSignatures`` element.
        signed_info: ``ds:SignedInfo``, complete but for the SignedProperties
            digest.
        signed_properties: ``xades:SignedProperties``, complete.
        part_digests: the ``ds:DigestValue`` of each part reference.
        signing_time: the ``xades:SigningTime`` element.
        properties_digest: the empty ``ds:DigestValue`` of the
            SignedProperties reference.
        value: the empty ``ds:SignatureValue``.
        method: the signature method for the key.
        digest_algorithm: the references' digest algorithm.
    """

    root: etree._Element
    signed_info: etree._Element
    signed_properties: etree._Element
    part_digests: tuple[etree._Element, ...]
    signing_time: etree._Element
    properties_digest: etree._Element
    value: etree._Element
    method: SignatureMethod
    digest_algorithm: DigestAlgorithm


def signature_tree(
    parts: Sequence[SignedPart],
    *,
    key: SigningKey,
    cert: x509.Certificate,
    ocsp_responses: Sequence[bytes],
    extra_certificates: Sequence[x509.Certificate],
    signing_time: dt.datetime,
    policy: SignaturePolicy,
) -> SignatureTree:
    """Build the document tree: everything but the SignedProperties digest and
    the signature value (:func:`finish_document` adds them and serialises).

    This is the reference builder: a signature template is kept only when it
    reproduces these bytes.

    Args:
        parts: the parts in order, one reference each; URIs must be unique.
        key, cert, ocsp_responses, extra_certificates, signing_time, policy:
            as for :func:`jplink.security.signature.sign_message`.

    Raises:
        ValueError: no parts, duplicate URIs, a naive time, or a key that
            does not match ``cert``.
        TypeError: an unsupported key type.
    """
    check_key(key, cert, signing_time)
    if not parts:
        raise ValueError("nothing to sign")
    if len({p.uri for p in parts}) != len(parts):
        raise ValueError("part URIs must be unique")
    alg = policy.digest_algorithm
    method = SignatureMethod.for_key(key, alg)
    nsmap = {"asic": NS_ASIC, "ds": NS_DS, "xades": NS_XADES, "xsi": NS_XSI}
    root = etree.Element(f"{{{NS_ASIC}}}XAdESSignatures", nsmap=nsmap)
    signature = etree.SubElement(root, ds("Signature"), Id="signature")
    signature.text = "\n"
    signed_info, digests, sp_digest = _signed_info(signature, parts, method, alg)
    value = etree.SubElement(signature, ds("SignatureValue"), Id="signature-value")
    value.tail = "\n"
    _key_info(signature, cert)
    obj = etree.SubElement(signature, ds("Object"))
    obj.tail = "\n"
    signed_properties = build_qualifying_properties(
        obj,
        signature_id="signature",
        signed_properties_id="signed-properties",
        data_objects=[
            (f"signature-reference-{i}", p.mime_type) for i, p in enumerate(parts)
        ],
        cert=cert,
        digest_algorithm=alg,
        signing_time=signing_time,
        ocsp_responses=ocsp_responses,
        extra_certificates=extra_certificates,
    )
    time_element = signed_properties.find(_SIGNING_TIME)
    if time_element is None:  # pragma: no cover - built just above
        raise AssertionError("SignedProperties without SigningTime")
    return SignatureTree(
        root,
        signed_info,
        signed_properties,
        digests,
        time_element,
        sp_digest,
        value,
        method,
        alg,
    )


def finish_document(tree: SignatureTree, key: SigningKey) -> bytes:
    """Digest the SignedProperties, sign SignedInfo, serialise the document."""
    alg = tree.digest_algorithm
    tree.properties_digest.text = b64encode_wrapped(
        alg.digest(canonicalize(tree.signed_properties))
    )
    raw = sign_octets(key, tree.method, canonicalize(tree.signed_info))
    return serialize_document(tree, raw)


def serialize_document(tree: SignatureTree, raw: bytes) -> bytes:
    """The document bytes with signature value ``raw`` (SignedInfo complete)."""
    tree.value.text = "\n" + b64encode_wrapped(raw) + "\n"
    return XML_DECLARATION + etree.tostring(
        tree.root, encoding="UTF-8", xml_declaration=False
    )
