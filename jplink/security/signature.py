"""X-Road message signatures: sign and verify ``asic:XAdESSignatures`` documents.

The profile (PROTOCOLS.md §6) is XML-DSig with detached references to the raw
bytes of the signed parts (``/message.xml``, ``/attachmentN``) or to the
hash-chain result of a batch (``/sig-hashchainresult.xml``), plus one
reference to the XAdES ``#signed-properties``. SignedInfo is canonicalised
with C14N 1.0; the "non-batch" form of X-Road >= 7.6 uses exclusive C14N.

Sans-IO: bytes in, bytes or frozen results out. :func:`verify_signature`
returns a :class:`VerifiedSignature` or raises; it never returns a flag.
Certificate-chain and OCSP decisions belong to other modules: the result
hands them the signer certificate and the embedded OCSP responses.

This module is the public façade. The work is split by concept into private
modules: the value objects (``_signature_model``), writing a document
(``_signature_build``; single-part documents are filled into a per-signer
template checked against it, ``_signature_template``), its shape and Id
index (``_signature_document``) and the per-reference and coverage checks
(``_signature_references``); the cache of verified batch-signature
documents is :mod:`.signature_cache`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping, Sequence

from cryptography import x509
from lxml import etree

from jplink.errors import InvalidSignature
from jplink.xml import parse_xml

from ._signature_document import SignatureDocument, read_signature_document
from ._signature_model import (
    DEFAULT_POLICY,
    NS_ASIC,
    BatchSignature,
    ReferenceKind,
    SignaturePolicy,
    SignedPart,
    SigningKey,
    VerifiedReference,
    VerifiedSignature,
    ds,
    malformed,
)
from ._signature_references import Coverage, check_coverage, verify_references
from ._signature_template import signature_document
from .c14n import b64decode_text, canonicalize, verify_octets
from .hashchain import HASH_CHAIN_RESULT_MIME, HASH_CHAIN_RESULT_URI, build_hash_chains
from .signature_cache import BatchSignatureCache, CheckedDocument
from .signature_shapes import SignatureShapes
from .xades import XadesProperties, read_qualifying_properties

__all__ = [
    "DEFAULT_POLICY",
    "NS_ASIC",
    "BatchSignature",
    "BatchSignatureCache",
    "ReferenceKind",
    "SignaturePolicy",
    "SignatureShapes",
    "SignedPart",
    "SigningKey",
    "VerifiedReference",
    "VerifiedSignature",
    "sign_batch",
    "sign_message",
    "verify_signature",
]


# --------------------------------------------------------------------------
# Signing


def sign_message(
    parts: Sequence[SignedPart],
    *,
    key: SigningKey,
    cert: x509.Certificate,
    ocsp_responses: Sequence[bytes] = (),
    signing_time: dt.datetime,
    extra_certificates: Sequence[x509.Certificate] = (),
    policy: SignaturePolicy = DEFAULT_POLICY,
) -> bytes:
    """Sign message parts directly, one reference per part.

    With one part (``/message.xml``) this is the X-Road 7 simple signature;
    with attachments it is the "non-batch" form X-Road >= 7.6 verifies.

    Args:
        parts: the parts in message order; their URIs must be unique.
        key: the member's signing key (RSA gives rsa-sha512, EC ecdsa-sha512).
        cert: the signing certificate for ``key``.
        ocsp_responses: DER OCSP responses to embed (signing cert first).
        signing_time: the SigningTime to write (timezone-aware).
        extra_certificates: intermediate CA certificates to embed.
        policy: the algorithm policy.

    Returns:
        The ``asic:XAdESSignatures`` document bytes.

    Raises:
        ValueError: no parts, duplicate URIs, a naive time, or a key that
            does not match ``cert``.
    """
    return signature_document(
        parts,
        key=key,
        cert=cert,
        ocsp_responses=ocsp_responses,
        extra_certificates=extra_certificates,
        signing_time=signing_time,
        policy=policy,
    )


def sign_batch(
    messages: Sequence[Sequence[SignedPart]],
    *,
    key: SigningKey,
    cert: x509.Certificate,
    ocsp_responses: Sequence[bytes] = (),
    signing_time: dt.datetime,
    extra_certificates: Sequence[x509.Certificate] = (),
    policy: SignaturePolicy = DEFAULT_POLICY,
) -> tuple[BatchSignature, ...]:
    """Sign several messages (each a message part plus attachments) at once.

    Builds a hash tree over the messages, signs the hash-chain result once
    (reference ``/sig-hashchainresult.xml``, MIME type
    ``application/hash-chain-result``) and gives each message its own chain
    (PROTOCOLS.md §6.3). A batch of one single-part message is signed
    directly, as X-Road does.

    Args:
        messages: per message, its parts (first the message, then attachments).
        key, cert, ocsp_responses, signing_time, extra_certificates, policy:
            as for :func:`sign_message`.

    Returns:
        One :class:`BatchSignature` per message, in order.

    Raises:
        ValueError: an empty batch or message, or as for :func:`sign_message`.
    """
    if not messages or any(not m for m in messages):
        raise ValueError("every message needs at least one part")

    def sign(parts: Sequence[SignedPart]) -> bytes:
        return signature_document(
            parts,
            key=key,
            cert=cert,
            ocsp_responses=ocsp_responses,
            extra_certificates=extra_certificates,
            signing_time=signing_time,
            policy=policy,
        )

    if len(messages) == 1 and len(messages[0]) == 1:
        return (BatchSignature(sign(messages[0]), None, None),)
    alg = policy.digest_algorithm
    chains = build_hash_chains(
        [[(p.uri, alg.digest(p.data)) for p in message] for message in messages],
        digest_algorithm=alg,
    )
    signature = sign(
        [SignedPart(HASH_CHAIN_RESULT_URI, chains.result, HASH_CHAIN_RESULT_MIME)]
    )
    return tuple(
        BatchSignature(signature, chains.result, chain) for chain in chains.chains
    )


# --------------------------------------------------------------------------
# Verification


def _key_info_certificate(key_info: etree._Element) -> tuple[x509.Certificate, bytes]:
    certs = key_info.findall(f"{ds('X509Data')}/{ds('X509Certificate')}")
    if len(certs) != 1:
        raise malformed("KeyInfo must hold exactly one X509Certificate")
    der = b64decode_text(certs[0].text, "X509Certificate")
    try:
        return _load_certificate(der), der
    except ValueError:
        raise malformed(
            "KeyInfo certificate is not a valid X.509 certificate"
        ) from None


@functools.lru_cache(maxsize=256)
def _load_certificate(der: bytes) -> x509.Certificate:
    # A peer signs with the same certificate again and again: it is parsed
    # once per distinct DER (errors are not cached).
    return x509.load_der_x509_certificate(der)


@functools.lru_cache(maxsize=256)
def _check_non_repudiation(cert: x509.Certificate) -> None:
    # Pure function of an immutable certificate: a pass is remembered, a
    # refusal raises every time (lru_cache does not keep exceptions).
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.content_commitment:
        raise malformed("The signing certificate lacks the nonRepudiation key usage")


def _verify_value(
    doc: SignatureDocument, policy: SignaturePolicy
) -> tuple[x509.Certificate, bytes, bytes]:
    """Check SignatureValue over canonical SignedInfo with the KeyInfo cert.

    Returns the certificate, its DER and the raw signature value.
    """
    cert, cert_der = _key_info_certificate(doc.key_info)
    signature_value = b64decode_text(doc.signature_value.text, "SignatureValue")
    signed_octets = canonicalize(
        doc.signed_info, doc.c14n, inclusive_prefixes=doc.c14n_prefixes
    )
    verify_octets(cert.public_key(), doc.method, signature_value, signed_octets)
    if policy.require_non_repudiation:
        _check_non_repudiation(cert)
    return cert, cert_der, signature_value


def _check_signing_time(
    props: XadesProperties, now: dt.datetime | None, policy: SignaturePolicy
) -> None:
    if now is not None and props.signing_time > now + policy.max_clock_skew:
        raise InvalidSignature(
            "SigningTime lies in the future",
            detail={
                "signing_time": props.signing_time.isoformat(),
                "now": now.isoformat(),
            },
        )


def verify_signature(
    signature_xml: bytes,
    *,
    parts: Mapping[str, bytes],
    hash_chain_result: bytes | None = None,
    hash_chain: bytes | None = None,
    now: dt.datetime | None = None,
    policy: SignaturePolicy = DEFAULT_POLICY,
    allow_unresolved_chain_refs: bool = False,
    cache: BatchSignatureCache | None = None,
    shapes: SignatureShapes | None = None,
) -> VerifiedSignature:
    """Verify an X-Road message signature over the given parts.

    Checks, failing closed: the document shape (one ``ds:Signature``, unique
    Ids, references resolved only inside this document); every reference
    digest (raw bytes for parts and the hash-chain result, C14N for the
    SignedProperties); that every given part is signed, directly or through
    the hash chain; the SignatureValue over canonical SignedInfo with the
    KeyInfo certificate; that the signed SigningCertificate names that
    certificate; and, with ``now``, that SigningTime is not in the future.

    With ``cache``, a batch signature whose document and hash-chain result
    verified before (the exact same bytes, the same policy) is not verified
    again: only this message's hash chain and coverage are checked, and the
    SigningTime check is run with this ``now`` (see
    :mod:`jplink.security.signature_cache` for the bound).

    Args:
        signature_xml: the signature document as received.
        parts: URI -> raw bytes of every signed part (``/message.xml``,
            ``/attachment1`` ...). Each must be covered by the signature.
        hash_chain_result: the ``/sig-hashchainresult.xml`` bytes of a batch
            signature.
        hash_chain: this message's ``/sig-hashchain.xml`` bytes.
        now: the verification time (timezone-aware), or None to skip the
            SigningTime check.
        policy: accepted algorithms and checks.
        allow_unresolved_chain_refs: accept hash-chain DataRefs whose data
            was not given (SOAP attachments are not kept in the message log);
            they are listed in ``hash_chain.unverified_refs``.
        cache: verified batch-signature documents to consult and fill.
        shapes: shapes of verified documents to recognise this one by (and
            to learn from it); see :mod:`jplink.security.signature_shapes`.

    Returns:
        The verified signature.

    Raises:
        MalformedMessage: code ``MalformedSignature[...]`` for a document that
            breaks the profile, an unknown algorithm, an unresolvable or
            duplicate reference, an unsigned part or a malformed hash chain.
        XmlSecurityError: the document is not acceptable XML.
        InvalidSignature: (``InvalidSignatureValue``) a digest, the signature
            value or the signing-certificate binding does not verify.
    """
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    # A document known by its exact bytes (a batch's, verified for another
    # message) or by its shape skips the document checks; coverage, the
    # signing time and (for a shape) the cache are handled as for any other.
    checked: CheckedDocument | None = None
    cached = False
    if cache is not None and hash_chain_result is not None:
        checked = cache.get(signature_xml, hash_chain_result, policy)
        cached = checked is not None
    if checked is None and shapes is not None:
        checked = shapes.recognise(
            signature_xml,
            parts=parts,
            hash_chain_result=hash_chain_result,
            policy=policy,
        )
    learn_from: tuple[SignatureDocument, etree._Element] | None = None
    if checked is not None:
        coverage = check_coverage(
            checked.data_uris,
            parts=parts,
            hash_chain_result=hash_chain_result,
            hash_chain=hash_chain,
            policy=policy,
            allow_unresolved_chain_refs=allow_unresolved_chain_refs,
        )
    else:
        doc = read_signature_document(parse_xml(signature_xml), policy)
        refs = verify_references(
            doc,
            parts=parts,
            hash_chain_result=hash_chain_result,
            hash_chain=hash_chain,
            policy=policy,
        )
        coverage = check_coverage(
            refs.data_uris,
            parts=parts,
            hash_chain_result=hash_chain_result,
            hash_chain=hash_chain,
            policy=policy,
            allow_unresolved_chain_refs=allow_unresolved_chain_refs,
        )
        cert, cert_der, signature_value = _verify_value(doc, policy)
        props = read_qualifying_properties(
            refs.signed_properties,
            signer_cert=cert,
            signer_cert_der=cert_der,
            accepted_digests=policy.accepted_digests,
        )
        checked = CheckedDocument(
            references=refs.references,
            data_uris=refs.data_uris,
            signer_certificate=cert,
            signature_method=doc.method,
            signature_value=signature_value,
            properties=props,
        )
        learn_from = (doc, refs.signed_properties)
    result = _verified(checked, coverage, now, policy)
    if shapes is not None and learn_from is not None:
        shapes.learn(signature_xml, *learn_from, checked, policy)
    # Stored only once every check passed, and only for a batch signature:
    # its document is shared by the batch's other messages.
    if (
        cache is not None
        and not cached
        and hash_chain_result is not None
        and coverage.hash_chain is not None
    ):
        cache.put(signature_xml, hash_chain_result, policy, checked)
    return result


def _verified(
    checked: CheckedDocument,
    coverage: Coverage,
    now: dt.datetime | None,
    policy: SignaturePolicy,
) -> VerifiedSignature:
    props = checked.properties
    _check_signing_time(props, now, policy)
    return VerifiedSignature(
        signer_certificate=checked.signer_certificate,
        signing_time=props.signing_time,
        ocsp_responses=props.ocsp_responses,
        extra_certificates=props.certificates,
        timestamp_tokens=props.timestamp_tokens,
        references=checked.references,
        signature_method=checked.signature_method,
        signature_value=checked.signature_value,
        signed_uris=coverage.signed_uris,
        hash_chain=coverage.hash_chain,
    )
