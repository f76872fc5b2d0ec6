"""Value objects of X-Road message signatures: policy, parts, results.

Shared by the signing side (:mod:`._signature_build`), the verifying side
(:mod:`._signature_document`, :mod:`._signature_references`) and the public
façade :mod:`jplink.security.signature`, which re-exports every public name.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from jplink.errors import MalformedMessage
from jplink.ns import NS_DS

from .c14n import MALFORMED_SIGNATURE, DigestAlgorithm, SignatureMethod
from .hashchain import VerifiedHashChain

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
    "ds",
    "malformed",
]

#: Namespace of the ``asic:XAdESSignatures`` wrapper written by X-Road 7.
NS_ASIC = "http://uri.etsi.org/02918/v1.2.1#"

#: Private keys we sign with (an HSM signer can wrap the same interface later).
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def ds(tag: str) -> str:
    """The Clark name of an XML-DSig element."""
    return f"{{{NS_DS}}}{tag}"


def malformed(message: str, **detail: object) -> MalformedMessage:
    """A ``MalformedSignature`` error: the document breaks the profile."""
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
