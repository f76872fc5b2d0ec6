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
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from lxml import etree

from jplink.errors import InvalidDigest, InvalidSignature, MalformedMessage
from jplink.ns import NS_DS, NS_XADES, NS_XSI
from jplink.xml import parse_xml

from .c14n import (
    MALFORMED_SIGNATURE,
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
    b64decode_text,
    b64encode_wrapped,
    canonicalize,
    sign_octets,
    verify_octets,
)
from .hashchain import (
    HASH_CHAIN_RESULT_MIME,
    HASH_CHAIN_RESULT_URI,
    VerifiedHashChain,
    build_hash_chains,
    verify_hash_chain,
)
from .xades import (
    SIGNED_PROPERTIES_TYPE,
    build_qualifying_properties,
    read_qualifying_properties,
)

__all__ = [
    "DEFAULT_POLICY",
    "NS_ASIC",
    "BatchSignature",
    "ReferenceKind",
    "SignaturePolicy",
    "SignedPart",
    "SigningKey",
    "VerifiedReference",
    "VerifiedSignature",
    "sign_batch",
    "sign_message",
    "verify_signature",
]

#: Namespace of the ``asic:XAdESSignatures`` wrapper written by X-Road 7.
NS_ASIC = "http://uri.etsi.org/02918/v1.2.1#"
# Older X-Road versions wrote v1.1.1 (sig-batch-sig.xml); verifiers accept both.
_ASIC_ROOTS = {
    f"{{{NS_ASIC}}}XAdESSignatures",
    "{http://uri.etsi.org/02918/v1.1.1#}XAdESSignatures",
}
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>'
_ID_ATTRIBUTES = ("Id", "ID", "id")
_EXC_C14N_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"

_SPKI = PublicFormat.SubjectPublicKeyInfo

#: Private keys we sign with (an HSM signer can wrap the same interface later).
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _ds(tag: str) -> str:
    return f"{{{NS_DS}}}{tag}"


def _malformed(message: str, **detail: object) -> MalformedMessage:
    return MalformedMessage(message, code=MALFORMED_SIGNATURE, detail=detail)


@dataclass(frozen=True, slots=True)
class SignaturePolicy:
    """Algorithm policy for producing and accepting message signatures."""

    digest_algorithm: DigestAlgorithm = DigestAlgorithm.SHA512
    """Digest for references, the signing-cert digest and the signature hash
    when we sign. SHA-512 is X-Road's default; SHA-1 cannot be chosen."""

    accepted_digests: frozenset[DigestAlgorithm] = frozenset(DigestAlgorithm)
    """Digests accepted on verification (references, certificate digest and
    the signature method's hash). Narrow it to refuse weaker hashes."""

    require_non_repudiation: bool = True
    """X-Road requires the nonRepudiation key usage on a signing certificate
    (PROTOCOLS.md §6.4 step 3); turning this off accepts any certificate."""

    max_clock_skew: dt.timedelta = dt.timedelta(minutes=5)
    """How far a SigningTime may lie after the verifier's ``now``."""


DEFAULT_POLICY = SignaturePolicy()


@dataclass(frozen=True, slots=True)
class SignedPart:
    """One part of a message, signed over its raw bytes.

    Attributes:
        uri: the reference URI: ``/message.xml``, ``/attachment1`` ...
        data: the exact bytes as sent (never re-serialised).
        mime_type: written to ``xades:DataObjectFormat``; X-Road writes
            ``text/xml``.
    """

    uri: str
    data: bytes
    mime_type: str = "text/xml"

    def __post_init__(self) -> None:
        if not self.uri.startswith("/") or "#" in self.uri:
            raise ValueError(f"part URI must be an absolute path: {self.uri!r}")


@dataclass(frozen=True, slots=True)
class BatchSignature:
    """One message's share of a batch signature.

    ``hash_chain`` and ``hash_chain_result`` are ``None`` when the batch was
    one single-part message, which X-Road signs directly. All three must be
    stored and sent byte-exact.
    """

    signature_xml: bytes
    hash_chain_result: bytes | None
    hash_chain: bytes | None


class ReferenceKind(enum.Enum):
    """What a verified ``ds:Reference`` pointed at."""

    DATA = "data"
    HASH_CHAIN_RESULT = "hash-chain-result"
    SIGNED_PROPERTIES = "signed-properties"


@dataclass(frozen=True, slots=True)
class VerifiedReference:
    """A ``ds:Reference`` whose digest matched."""

    uri: str
    kind: ReferenceKind
    digest_algorithm: DigestAlgorithm
    digest: bytes


@dataclass(frozen=True, slots=True)
class VerifiedSignature:
    """A signature whose references, value and signing-cert binding verified.

    Attributes:
        signer_certificate: the KeyInfo certificate (chain and OCSP status
            are still to be checked by the caller).
        signing_time: the signed ``xades:SigningTime`` (UTC).
        ocsp_responses: embedded DER OCSP responses, in document order.
        extra_certificates: DER certificates from ``CertificateValues``.
        timestamp_tokens: DER tokens from ``SignatureTimeStamp``.
        references: every verified reference, in SignedInfo order.
        signature_method: the SignatureMethod used.
        signature_value: the raw signature value (the input of a single
            message-log time-stamp).
        signed_uris: the URIs of the signed parts (directly or via the chain).
        hash_chain: the verified hash chain of a batch signature, else None.
    """

    signer_certificate: x509.Certificate
    signing_time: dt.datetime
    ocsp_responses: tuple[bytes, ...]
    extra_certificates: tuple[bytes, ...]
    timestamp_tokens: tuple[bytes, ...]
    references: tuple[VerifiedReference, ...]
    signature_method: SignatureMethod
    signature_value: bytes
    signed_uris: frozenset[str]
    hash_chain: VerifiedHashChain | None


# --------------------------------------------------------------------------
# Signing


def _check_key(
    key: SigningKey, cert: x509.Certificate, signing_time: dt.datetime
) -> None:
    if signing_time.tzinfo is None:
        raise ValueError("signing_time must be timezone-aware")
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise TypeError("key must be an RSA or EC private key")
    if key.public_key().public_bytes(
        Encoding.DER, _SPKI
    ) != cert.public_key().public_bytes(Encoding.DER, _SPKI):
        raise ValueError("the private key does not belong to the certificate")


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
    ref = etree.SubElement(signed_info, _ds("Reference"), Id=ref_id)
    if ref_type is not None:
        ref.set("Type", ref_type)
    ref.set("URI", uri)
    ref.text = ref.tail = "\n"
    etree.SubElement(ref, _ds("DigestMethod"), Algorithm=algorithm.value).tail = "\n"
    value = etree.SubElement(ref, _ds("DigestValue"))
    value.tail = "\n"
    return value


def _build_signature(
    parts: Sequence[SignedPart],
    *,
    key: SigningKey,
    cert: x509.Certificate,
    ocsp_responses: Sequence[bytes],
    extra_certificates: Sequence[x509.Certificate],
    signing_time: dt.datetime,
    policy: SignaturePolicy,
) -> bytes:
    _check_key(key, cert, signing_time)
    if not parts:
        raise ValueError("nothing to sign")
    if len({p.uri for p in parts}) != len(parts):
        raise ValueError("part URIs must be unique")
    alg = policy.digest_algorithm
    method = SignatureMethod.for_key(key, alg)
    nsmap = {"asic": NS_ASIC, "ds": NS_DS, "xades": NS_XADES, "xsi": NS_XSI}
    root = etree.Element(f"{{{NS_ASIC}}}XAdESSignatures", nsmap=nsmap)
    signature = etree.SubElement(root, _ds("Signature"), Id="signature")
    signature.text = "\n"
    signed_info = etree.SubElement(signature, _ds("SignedInfo"))
    signed_info.text = signed_info.tail = "\n"
    etree.SubElement(
        signed_info,
        _ds("CanonicalizationMethod"),
        Algorithm=CanonicalizationMethod.C14N_10.value,
    ).tail = "\n"
    etree.SubElement(
        signed_info, _ds("SignatureMethod"), Algorithm=method.value
    ).tail = "\n"
    for i, part in enumerate(parts):
        _add_reference(
            signed_info, ref_id=f"signature-reference-{i}", uri=part.uri, algorithm=alg
        ).text = b64encode_wrapped(alg.digest(part.data))
    sp_digest = _add_reference(
        signed_info,
        ref_id=f"signature-reference-{len(parts)}",
        uri="#signed-properties",
        algorithm=alg,
        ref_type=SIGNED_PROPERTIES_TYPE,
    )
    value = etree.SubElement(signature, _ds("SignatureValue"), Id="signature-value")
    value.tail = "\n"
    key_info = etree.SubElement(signature, _ds("KeyInfo"))
    key_info.text = key_info.tail = "\n"
    x509_data = etree.SubElement(key_info, _ds("X509Data"))
    x509_data.text = x509_data.tail = "\n"
    cert_el = etree.SubElement(x509_data, _ds("X509Certificate"))
    cert_el.text = "\n" + b64encode_wrapped(cert.public_bytes(Encoding.DER)) + "\n"
    cert_el.tail = "\n"
    obj = etree.SubElement(signature, _ds("Object"))
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
    sp_digest.text = b64encode_wrapped(alg.digest(canonicalize(signed_properties)))
    raw = sign_octets(key, method, canonicalize(signed_info))
    value.text = "\n" + b64encode_wrapped(raw) + "\n"
    return _XML_DECLARATION + etree.tostring(
        root, encoding="UTF-8", xml_declaration=False
    )


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
    return _build_signature(
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
        return _build_signature(
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


def _locate_signature(root: etree._Element) -> etree._Element:
    if root.tag == _ds("Signature"):
        return root
    if root.tag not in _ASIC_ROOTS:
        raise _malformed(f"Unexpected signature document root {root.tag!r}")
    children = [c for c in root if isinstance(c.tag, str)]
    if len(children) != 1 or children[0].tag != _ds("Signature"):
        raise _malformed("XAdESSignatures must hold exactly one ds:Signature")
    return children[0]


def _index_ids(root: etree._Element) -> dict[str, etree._Element]:
    # Signature wrapping defence: an Id resolves only inside this document
    # and must name exactly one element.
    index: dict[str, etree._Element] = {}
    for el in root.iter(etree.Element):
        for name in _ID_ATTRIBUTES:
            value = el.get(name)
            if value is None:
                continue
            if value in index:
                raise _malformed(
                    f"Duplicate Id {value!r} in the signature document", id=value
                )
            index[value] = el
    return index


def _element_children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _reference_transform(
    ref: etree._Element,
) -> tuple[CanonicalizationMethod | None, tuple[str, ...]]:
    transforms = ref.find(_ds("Transforms"))
    if transforms is None:
        return None, ()
    items = _element_children(transforms)
    if len(items) != 1 or items[0].tag != _ds("Transform"):
        raise _malformed("Only a single canonicalization transform is supported")
    method = CanonicalizationMethod.from_uri(items[0].get("Algorithm"))
    return method, _inclusive_prefixes(items[0])


def _inclusive_prefixes(el: etree._Element) -> tuple[str, ...]:
    inc = el.find(f"{{{_EXC_C14N_NS}}}InclusiveNamespaces")
    return tuple((inc.get("PrefixList") or "").split()) if inc is not None else ()


def _key_info_certificate(key_info: etree._Element) -> tuple[x509.Certificate, bytes]:
    certs = key_info.findall(f"{_ds('X509Data')}/{_ds('X509Certificate')}")
    if len(certs) != 1:
        raise _malformed("KeyInfo must hold exactly one X509Certificate")
    der = b64decode_text(certs[0].text, "X509Certificate")
    try:
        return x509.load_der_x509_certificate(der), der
    except ValueError:
        raise _malformed(
            "KeyInfo certificate is not a valid X.509 certificate"
        ) from None


def _check_non_repudiation(cert: x509.Certificate) -> None:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.content_commitment:
        raise _malformed("The signing certificate lacks the nonRepudiation key usage")


def _check_digest_allowed(alg: DigestAlgorithm, policy: SignaturePolicy) -> None:
    if alg not in policy.accepted_digests:
        raise _malformed(
            f"Digest algorithm {alg.value} is not accepted", algorithm=alg.value
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
) -> VerifiedSignature:
    """Verify an X-Road message signature over the given parts.

    Checks, failing closed: the document shape (one ``ds:Signature``, unique
    Ids, references resolved only inside this document); every reference
    digest (raw bytes for parts and the hash-chain result, C14N for the
    SignedProperties); that every given part is signed, directly or through
    the hash chain; the SignatureValue over canonical SignedInfo with the
    KeyInfo certificate; that the signed SigningCertificate names that
    certificate; and, with ``now``, that SigningTime is not in the future.

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
    root = parse_xml(signature_xml)
    signature = _locate_signature(root)
    ids = _index_ids(root)
    children = _element_children(signature)
    tags = [c.tag for c in children]
    if tags[:3] != [_ds("SignedInfo"), _ds("SignatureValue"), _ds("KeyInfo")] or any(
        t != _ds("Object") for t in tags[3:]
    ):
        raise _malformed(
            "ds:Signature must be SignedInfo, SignatureValue, KeyInfo, Object*"
        )
    signed_info, value_el, key_info = children[:3]
    signature_id = signature.get("Id")
    if not signature_id:
        raise _malformed("ds:Signature has no Id")

    si_children = _element_children(signed_info)
    if len(si_children) < 3 or [c.tag for c in si_children[:2]] != [
        _ds("CanonicalizationMethod"),
        _ds("SignatureMethod"),
    ]:
        raise _malformed(
            "SignedInfo must be CanonicalizationMethod, SignatureMethod, Reference+"
        )
    c14n = CanonicalizationMethod.from_uri(si_children[0].get("Algorithm"))
    method = SignatureMethod.from_uri(si_children[1].get("Algorithm"))
    _check_digest_allowed(method.digest, policy)

    verified: list[VerifiedReference] = []
    data_uris: set[str] = set()
    signed_properties: etree._Element | None = None
    for ref in si_children[2:]:
        if ref.tag != _ds("Reference"):
            raise _malformed(f"Unexpected element {ref.tag!r} in SignedInfo")
        uri = ref.get("URI")
        dm, dv = ref.find(_ds("DigestMethod")), ref.find(_ds("DigestValue"))
        if not uri or dm is None or dv is None:
            raise _malformed("Reference needs URI, DigestMethod and DigestValue")
        alg = DigestAlgorithm.from_uri(dm.get("Algorithm"))
        _check_digest_allowed(alg, policy)
        expected = b64decode_text(dv.text, "DigestValue")
        transform, prefixes = _reference_transform(ref)
        if uri.startswith("#"):
            target = ids.get(uri[1:])
            qp = target.getparent() if target is not None else None
            obj = qp.getparent() if qp is not None else None
            if (
                signed_properties is not None
                or target is None
                or target.tag != f"{{{NS_XADES}}}SignedProperties"
                or qp is None
                or qp.tag != f"{{{NS_XADES}}}QualifyingProperties"
                or qp.get("Target") != "#" + signature_id
                or obj is None
                or obj.getparent() is not signature
            ):
                raise _malformed(
                    f"Reference {uri!r} does not name this signature's "
                    "SignedProperties",
                    uri=uri,
                )
            signed_properties = target
            # XML-DSig §4.3.3.2/§4.3.3.3: a same-document reference without
            # transforms is converted to octets with inclusive C14N 1.0.
            octets = canonicalize(
                target,
                transform or CanonicalizationMethod.C14N_10,
                inclusive_prefixes=prefixes,
            )
            kind = ReferenceKind.SIGNED_PROPERTIES
        else:
            if transform is not None:
                raise _malformed(
                    f"Reference {uri!r} to raw data must not have transforms", uri=uri
                )
            if uri in data_uris:
                raise _malformed(f"Duplicate reference to {uri!r}", uri=uri)
            data_uris.add(uri)
            if uri == HASH_CHAIN_RESULT_URI:
                if hash_chain_result is None or hash_chain is None:
                    raise _malformed(
                        "Batch signature without hash chain and result", uri=uri
                    )
                octets, kind = hash_chain_result, ReferenceKind.HASH_CHAIN_RESULT
            elif uri in parts:
                octets, kind = parts[uri], ReferenceKind.DATA
            else:
                raise _malformed(
                    f"Signature references {uri!r}, which was not given", uri=uri
                )
        actual = alg.digest(octets)
        if actual != expected:
            raise InvalidDigest(
                f"Digest of {uri!r} does not match the signature", detail={"uri": uri}
            )
        verified.append(VerifiedReference(uri, kind, alg, actual))

    if signed_properties is None:
        raise _malformed("Signature has no reference to xades:SignedProperties")
    chain: VerifiedHashChain | None = None
    if HASH_CHAIN_RESULT_URI in data_uris:
        if len(data_uris) != 1:
            raise _malformed(
                "A batch signature must reference only the hash-chain result"
            )
        if hash_chain_result is None or hash_chain is None:  # checked above
            raise _malformed("Batch signature without hash chain and result")
        chain = verify_hash_chain(
            hash_chain_result,
            hash_chain,
            data=parts,
            accepted_digests=policy.accepted_digests,
            allow_unresolved=allow_unresolved_chain_refs,
        )
        signed_uris = frozenset(parts)
    else:
        if hash_chain is not None or hash_chain_result is not None:
            raise _malformed(
                "Hash chain given, but the signature does not reference it"
            )
        unsigned = sorted(set(parts) - data_uris)
        if unsigned:
            raise _malformed(
                f"Parts not covered by the signature: {', '.join(unsigned)}",
                uris=unsigned,
            )
        signed_uris = frozenset(data_uris)

    cert, cert_der = _key_info_certificate(key_info)
    signature_value = b64decode_text(value_el.text, "SignatureValue")
    signed_octets = canonicalize(
        signed_info, c14n, inclusive_prefixes=_inclusive_prefixes(si_children[0])
    )
    verify_octets(cert.public_key(), method, signature_value, signed_octets)
    if policy.require_non_repudiation:
        _check_non_repudiation(cert)
    props = read_qualifying_properties(
        signed_properties,
        signer_cert_der=cert_der,
        accepted_digests=policy.accepted_digests,
    )
    if now is not None and props.signing_time > now + policy.max_clock_skew:
        raise InvalidSignature(
            "SigningTime lies in the future",
            detail={
                "signing_time": props.signing_time.isoformat(),
                "now": now.isoformat(),
            },
        )
    return VerifiedSignature(
        signer_certificate=cert,
        signing_time=props.signing_time,
        ocsp_responses=props.ocsp_responses,
        extra_certificates=props.certificates,
        timestamp_tokens=props.timestamp_tokens,
        references=tuple(verified),
        signature_method=method,
        signature_value=signature_value,
        signed_uris=signed_uris,
        hash_chain=chain,
    )
