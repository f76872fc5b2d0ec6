"""Build and sign OCSP responses (RFC 6960 §4.2): the responder's pure core.

:class:`OcspResponder` holds what never changes between requests (the
issuer's CertID hashes under every supported algorithm, the ResponderID, the
encoded responder certificate, the signing key) so a response is a few byte
concatenations and one signature. Time comes in as ``now``; statuses come in
as :class:`CertStatusAnswer`; nothing here does I/O.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from jplink.errors import AccessDenied, ConfigurationError
from jplink.security.ocsp import OcspCertStatus, OcspResponseStatus

from ._der import BIT_STRING, ENUMERATED, OCTET_STRING, SEQUENCE, generalized_time, tlv
from .request import CertIdHash, OcspRequest

__all__ = [
    "GOOD",
    "UNKNOWN",
    "CertStatusAnswer",
    "OcspResponder",
    "error_response",
]

_HASHLIB_NAMES = {
    CertIdHash.SHA1: "sha1",
    CertIdHash.SHA224: "sha224",
    CertIdHash.SHA256: "sha256",
    CertIdHash.SHA384: "sha384",
    CertIdHash.SHA512: "sha512",
}

#: CRLReason codes (RFC 5280 §5.3.1); 7 is unused.
_CRL_REASON = {
    x509.ReasonFlags.unspecified: 0,
    x509.ReasonFlags.key_compromise: 1,
    x509.ReasonFlags.ca_compromise: 2,
    x509.ReasonFlags.affiliation_changed: 3,
    x509.ReasonFlags.superseded: 4,
    x509.ReasonFlags.cessation_of_operation: 5,
    x509.ReasonFlags.certificate_hold: 6,
    x509.ReasonFlags.remove_from_crl: 8,
    x509.ReasonFlags.privilege_withdrawn: 9,
    x509.ReasonFlags.aa_compromise: 10,
}

# id-pkix-ocsp-basic (RFC 6960 §4.2.1), as a complete OID TLV.
_BASIC_RESPONSE_TYPE = bytes.fromhex("06092b0601050507300101")
_ALG_SHA256_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")
_ALG_ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
_ALG_ECDSA_SHA384 = bytes.fromhex("300a06082a8648ce3d040303")
_ALG_ED25519 = bytes.fromhex("300506032b6570")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True, slots=True)
class CertStatusAnswer:
    """What the CA's records say about one serial number."""

    status: OcspCertStatus
    revoked_at: dt.datetime | None = None
    reason: x509.ReasonFlags | None = None

    def __post_init__(self) -> None:
        if (self.status is OcspCertStatus.REVOKED) != (self.revoked_at is not None):
            raise ValueError("revoked_at is required for, and only for, REVOKED")


GOOD = CertStatusAnswer(OcspCertStatus.GOOD)
UNKNOWN = CertStatusAnswer(OcspCertStatus.UNKNOWN)


def error_response(status: OcspResponseStatus) -> bytes:
    """An unsigned ``OCSPResponse`` carrying only an error status.

    RFC 6960 §2.3: error messages "are not signed".

    Raises:
        ValueError: ``status`` is SUCCESSFUL (that needs a signed response).
    """
    if status is OcspResponseStatus.SUCCESSFUL:
        raise ValueError("a successful response must be signed")
    return tlv(SEQUENCE, tlv(ENUMERATED, bytes((status.value,))))


def _issuer_hashes(issuer: x509.Certificate) -> dict[CertIdHash, tuple[bytes, bytes]]:
    # RFC 6960 §4.1.1: issuerNameHash is the "Hash of issuer's DN" and
    # issuerKeyHash the "Hash of issuer's public key" (the subjectPublicKey
    # BIT STRING value); take both from the certificate's own encoding.
    tbs = asn1_x509.Certificate.load(issuer.public_bytes(Encoding.DER))[
        "tbs_certificate"
    ]
    name = tbs["subject"].dump()
    key = bytes(tbs["subject_public_key_info"]["public_key"].contents[1:])
    return {
        alg: (hashlib.new(name_, name).digest(), hashlib.new(name_, key).digest())
        for alg, name_ in _HASHLIB_NAMES.items()
    }


def _signature_algorithm(key: PrivateKey) -> tuple[bytes, hashes.HashAlgorithm | None]:
    if isinstance(key, rsa.RSAPrivateKey):
        return _ALG_SHA256_RSA, hashes.SHA256()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.key_size > 256:
            return _ALG_ECDSA_SHA384, hashes.SHA384()
        return _ALG_ECDSA_SHA256, hashes.SHA256()
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return _ALG_ED25519, None
    raise ConfigurationError(f"Unsupported OCSP signing key type {type(key).__name__}")


@dataclass(frozen=True, slots=True)
class OcspResponder:
    """Signs responses for the certificates of one issuing CA.

    Build it with :meth:`create`; the fields are precomputed encodings.
    """

    issuer_hashes: Mapping[CertIdHash, tuple[bytes, bytes]]
    responder_id: bytes
    certs: bytes
    signature_algorithm: bytes
    signing_key: PrivateKey
    sign_hash: hashes.HashAlgorithm | None
    next_update: dt.timedelta | None

    @classmethod
    def create(
        cls,
        *,
        issuer: x509.Certificate,
        responder_cert: x509.Certificate,
        responder_key: PrivateKey,
        next_update: dt.timedelta | None,
    ) -> OcspResponder:
        """Prepare a responder.

        Args:
            issuer: the CA whose certificates are answered for.
            responder_cert: the delegated OCSP certificate (EKU OCSPSigning,
                issued by ``issuer``), or ``issuer`` itself.
            responder_key: the private key of ``responder_cert``.
            next_update: nextUpdate - thisUpdate, or None to omit nextUpdate.

        Raises:
            ConfigurationError: the key does not belong to the certificate,
                or its type is not supported.
        """
        spki = PublicFormat.SubjectPublicKeyInfo
        if responder_key.public_key().public_bytes(Encoding.DER, spki) != (
            responder_cert.public_key().public_bytes(Encoding.DER, spki)
        ):
            raise ConfigurationError("OCSP key does not match the OCSP certificate")
        algorithm, sign_hash = _signature_algorithm(responder_key)
        # ResponderID byKey (RFC 6960 §4.2.1): "SHA-1 hash of responder's
        # public key (excluding the tag and length fields)".
        key_id = x509.SubjectKeyIdentifier.from_public_key(responder_cert.public_key())
        cert_der = responder_cert.public_bytes(Encoding.DER)
        return cls(
            issuer_hashes=_issuer_hashes(issuer),
            responder_id=tlv(0xA2, tlv(OCTET_STRING, key_id.digest)),
            certs=tlv(0xA0, tlv(SEQUENCE, cert_der)),
            signature_algorithm=algorithm,
            signing_key=responder_key,
            sign_hash=sign_hash,
            next_update=next_update,
        )

    def authorize(self, request: OcspRequest) -> None:
        """Check that every CertID names this responder's issuer.

        Raises:
            AccessDenied: a CertID of another issuer. RFC 6960 §2.3: the
                ``unauthorized`` status "is returned in cases where the client
                is not authorized to make this query to this server or the
                server is not capable of responding authoritatively".
        """
        for query in request.queries:
            expected = self.issuer_hashes[query.hash_algorithm]
            if (query.issuer_name_hash, query.issuer_key_hash) != expected:
                raise AccessDenied(
                    "This responder does not answer for that issuer",
                    detail={"serial": f"{query.serial_number:x}"},
                )

    def sign_response(
        self,
        request: OcspRequest,
        answers: Sequence[CertStatusAnswer],
        *,
        now: dt.datetime,
    ) -> bytes:
        """The signed ``OCSPResponse`` answering ``request``.

        Args:
            request: an authorised request (see :meth:`authorize`).
            answers: one status per query, in request order.
            now: producedAt and thisUpdate (aware).

        Returns:
            DER bytes for ``application/ocsp-response``.

        Raises:
            ValueError: ``answers`` does not match the queries (misuse).
        """
        if len(answers) != len(request.queries):
            raise ValueError("one answer per query is required")
        this_update = generalized_time(now)
        next_update = b""
        if self.next_update is not None:
            next_update = tlv(0xA0, generalized_time(now + self.next_update))
        singles = b"".join(
            tlv(
                SEQUENCE,
                query.cert_id_der + _cert_status(answer) + this_update + next_update,
            )
            for query, answer in zip(request.queries, answers, strict=True)
        )
        extensions = b""
        if request.nonce_extension is not None:
            # RFC 6960 §4.4.1: "in responses it would be included as one of
            # the responseExtensions"; echoed exactly as the client sent it.
            extensions = tlv(0xA1, tlv(SEQUENCE, request.nonce_extension))
        tbs = tlv(
            SEQUENCE,
            self.responder_id + this_update + tlv(SEQUENCE, singles) + extensions,
        )
        basic = tlv(
            SEQUENCE,
            tbs
            + self.signature_algorithm
            + tlv(BIT_STRING, b"\x00" + self._sign(tbs))
            + self.certs,
        )
        response_bytes = tlv(SEQUENCE, _BASIC_RESPONSE_TYPE + tlv(OCTET_STRING, basic))
        return tlv(SEQUENCE, b"\x0a\x01\x00" + tlv(0xA0, response_bytes))

    def _sign(self, data: bytes) -> bytes:
        key = self.signing_key
        if isinstance(key, rsa.RSAPrivateKey):
            assert self.sign_hash is not None
            return key.sign(data, padding.PKCS1v15(), self.sign_hash)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            assert self.sign_hash is not None
            return key.sign(data, ec.ECDSA(self.sign_hash))
        return key.sign(data)


def _cert_status(answer: CertStatusAnswer) -> bytes:
    if answer.status is OcspCertStatus.GOOD:
        return b"\x80\x00"  # good [0] IMPLICIT NULL
    if answer.status is OcspCertStatus.UNKNOWN:
        return b"\x82\x00"  # unknown [2] IMPLICIT UnknownInfo (NULL)
    assert answer.revoked_at is not None
    info = generalized_time(answer.revoked_at)
    if answer.reason is not None:
        code = _CRL_REASON[answer.reason]
        info += tlv(0xA0, tlv(ENUMERATED, bytes((code,))))
    return tlv(0xA1, info)  # revoked [1] IMPLICIT RevokedInfo
