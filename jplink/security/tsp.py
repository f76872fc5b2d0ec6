"""RFC 3161 time-stamp protocol, client side: build requests, verify responses.

Sans-IO on pyHanko's model: :func:`build_timestamp_request` gives the DER to
POST (``application/timestamp-query``); :func:`verify_timestamp_response`
checks what came back against that request; :func:`verify_timestamp_token`
re-checks a token stored long ago (message log, ASiC containers). Each check
returns a frozen :class:`TimestampVerified` or raises; none returns a failure
value. Revocation of the TSA certificate is not checked here (that is OCSP's
job, done by the caller with the result's ``tsa_cert``).

The ASN.1 is handled by asn1crypto, the signatures by cryptography. The wire
constants (:class:`HashAlgorithm`, :class:`PKIStatus`, :class:`FailInfo`) are
shared with the TSA in ``ca_tsa.tsa``.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from jplink.errors import (
    CertificateExpired,
    CertificateValidationError,
    InvalidDigest,
    InvalidSignature,
    TimestampError,
    TimestampNonceMismatch,
    TimestampRejected,
)

__all__ = [
    "FailInfo",
    "HashAlgorithm",
    "MessageImprint",
    "PKIStatus",
    "TimestampRequest",
    "TimestampVerified",
    "build_timestamp_request",
    "new_nonce",
    "verify_timestamp_response",
    "verify_timestamp_token",
]


class HashAlgorithm(enum.Enum):
    """Message-imprint hash algorithms we accept; the value is the OID.

    SHA-1 is deliberately absent: SHA-1 imprints are neither produced nor
    accepted. (Reading old tokens, a version-1 ESS signingCertificate, whose
    certHash is SHA-1 by definition, is still accepted; see ``_check_ess``.)
    """

    SHA256 = "2.16.840.1.101.3.4.2.1"
    SHA384 = "2.16.840.1.101.3.4.2.2"
    SHA512 = "2.16.840.1.101.3.4.2.3"

    @property
    def hashlib_name(self) -> str:
        """The name hashlib and asn1crypto use (``sha256`` ...)."""
        return self.name.lower()

    @property
    def digest_size(self) -> int:
        """Length of the digest in bytes."""
        return {"SHA256": 32, "SHA384": 48, "SHA512": 64}[self.name]

    def digest(self, data: bytes) -> bytes:
        """Hash ``data`` with this algorithm."""
        return hashlib.new(self.hashlib_name, data).digest()

    @classmethod
    def from_name(cls, name: HashAlgorithm | str) -> HashAlgorithm:
        """Look up ``"sha512"`` / ``"SHA-512"`` / an OID; ValueError if unknown."""
        if isinstance(name, HashAlgorithm):
            return name
        key = name.replace("-", "").lower()
        for member in cls:
            if key in (member.hashlib_name, member.value):
                return member
        raise ValueError(f"unsupported time-stamp hash algorithm {name!r}")


class PKIStatus(enum.IntEnum):
    """PKIStatus values (RFC 3161 §2.4.2)."""

    GRANTED = 0
    GRANTED_WITH_MODS = 1
    REJECTION = 2
    WAITING = 3
    REVOCATION_WARNING = 4
    REVOCATION_NOTIFICATION = 5


class FailInfo(enum.Enum):
    """PKIFailureInfo bits (RFC 3161 §2.4.2); the value is the wire bit name."""

    BAD_ALG = "badAlg"  # bit 0
    BAD_REQUEST = "badRequest"  # bit 2
    BAD_DATA_FORMAT = "badDataFormat"  # bit 5
    TIME_NOT_AVAILABLE = "timeNotAvailable"  # bit 14
    UNACCEPTED_POLICY = "unacceptedPolicy"  # bit 15
    UNACCEPTED_EXTENSION = "unacceptedExtension"  # bit 16
    ADD_INFO_NOT_AVAILABLE = "addInfoNotAvailable"  # bit 17
    SYSTEM_FAILURE = "systemFailure"  # bit 25

    @property
    def asn1_name(self) -> str:
        """The bit name asn1crypto's ``PKIFailureInfo`` uses."""
        return _ASN1_FAIL_NAMES[self]


_ASN1_FAIL_NAMES = {
    FailInfo.BAD_ALG: "bad_alg",
    FailInfo.BAD_REQUEST: "bad_request",
    FailInfo.BAD_DATA_FORMAT: "bad_data_format",
    FailInfo.TIME_NOT_AVAILABLE: "time_not_available",
    FailInfo.UNACCEPTED_POLICY: "unaccepted_policy",
    FailInfo.UNACCEPTED_EXTENSION: "unaccepted_extensions",
    FailInfo.ADD_INFO_NOT_AVAILABLE: "add_info_not_available",
    FailInfo.SYSTEM_FAILURE: "system_failure",
}
_WIRE_FAIL_NAMES = {v: k.value for k, v in _ASN1_FAIL_NAMES.items()}


@dataclass(frozen=True, slots=True)
class MessageImprint:
    """The hash of the time-stamped data and its algorithm."""

    algorithm: HashAlgorithm
    digest: bytes


@dataclass(frozen=True, slots=True)
class TimestampRequest:
    """A built TimeStampReq: the DER to send and what the answer must echo."""

    der: bytes
    imprint: MessageImprint
    nonce: int | None
    cert_req: bool
    policy: str | None


@dataclass(frozen=True, slots=True)
class TimestampVerified:
    """A time-stamp token that passed every check.

    ``token_der`` is the TimeStampToken (a CMS ContentInfo) to store; it is
    what :func:`verify_timestamp_token` takes back later.
    """

    token_der: bytes
    gen_time: dt.datetime
    serial: int
    policy: str
    imprint: MessageImprint
    nonce: int | None
    #: ``None`` when the TSA declared no accuracy.
    accuracy: dt.timedelta | None
    tsa_cert: x509.Certificate


def new_nonce() -> int:
    """A fresh random 64-bit nonce (never zero, never negative)."""
    return secrets.randbits(63) | 1


def _imprint_for(
    data: bytes | None, digest: bytes | None, algorithm: HashAlgorithm
) -> MessageImprint:
    if (data is None) == (digest is None):
        raise TypeError("give exactly one of data or digest")
    if digest is None:
        assert data is not None
        return MessageImprint(algorithm, algorithm.digest(data))
    if len(digest) != algorithm.digest_size:
        raise ValueError(
            f"a {algorithm.hashlib_name} digest has {algorithm.digest_size} bytes"
        )
    return MessageImprint(algorithm, bytes(digest))


def build_timestamp_request(
    data: bytes | None = None,
    *,
    digest: bytes | None = None,
    hash_algorithm: HashAlgorithm | str = HashAlgorithm.SHA512,
    nonce: int | None = None,
    cert_req: bool = True,
    policy: str | None = None,
) -> TimestampRequest:
    """Build a TimeStampReq (RFC 3161 §2.4.1) over ``data`` or its ``digest``.

    X-Road sends SHA-512, no nonce, no certReq and no policy; pass
    ``nonce=new_nonce()`` where replay matters.

    Args:
        data: the bytes to time-stamp (hashed here).
        digest: alternatively, their digest made with ``hash_algorithm``.
        hash_algorithm: SHA-256, SHA-384 or SHA-512 (default).
        nonce: echoed by the TSA; ``None`` sends none.
        cert_req: ask the TSA to include its certificate.
        policy: a TSA policy OID to request, or ``None``.

    Returns:
        The request: ``.der`` to send, ``.imprint`` and ``.nonce`` to check.

    Raises:
        TypeError: neither or both of data and digest.
        ValueError: unknown algorithm, wrong digest length.
    """
    algorithm = HashAlgorithm.from_name(hash_algorithm)
    imprint = _imprint_for(data, digest, algorithm)
    fields: dict[str, object] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": algorithm.hashlib_name},
            "hashed_message": imprint.digest,
        },
        "cert_req": cert_req,
    }
    if policy is not None:
        fields["req_policy"] = policy
    if nonce is not None:
        fields["nonce"] = nonce
    der = tsp.TimeStampReq(fields).dump()
    return TimestampRequest(der, imprint, nonce, cert_req, policy)


def verify_timestamp_response(
    der: bytes,
    *,
    request: TimestampRequest,
    trusted_tsa_certs: Sequence[x509.Certificate],
    now: dt.datetime | None = None,
    max_skew: dt.timedelta = dt.timedelta(minutes=5),
) -> TimestampVerified:
    """Check a TimeStampResp against the request that asked for it.

    Args:
        der: the body of the ``application/timestamp-reply``.
        request: the request it answers.
        trusted_tsa_certs: the TSA certificates (X-Road ``approvedTSA/cert``)
            or CA certificates the signer must be or chain to.
        now: when given, genTime must be within ``max_skew`` of it.
        max_skew: allowed distance between genTime and ``now``.

    Returns:
        The verified token.

    Raises:
        TimestampRejected: status other than granted / grantedWithMods.
        TimestampNonceMismatch: the nonce is missing or differs.
        TimestampError: malformed response, wrong imprint or policy, stale.
        InvalidSignature: the CMS signature or a signed digest does not verify.
        CertificateValidationError: the signer is not a trusted TSA.
    """
    resp = _load(_TimeStampResp, der, "TimeStampResp")
    try:
        status_info = resp["status"]
        status = int(status_info["status"])
        if status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
            bits = status_info["fail_info"].native or set()
            names = tuple(sorted(_WIRE_FAIL_NAMES.get(b, str(b)) for b in bits))
            text = "; ".join(status_info["status_string"].native or [])
            detail = f"status {status}" + "".join(f", {n}" for n in names)
            raise TimestampRejected(
                f"the TSA rejected the request ({detail})"
                + (f": {text}" if text else ""),
                status=status,
                fail_info=names,
            )
        token = resp["time_stamp_token"]
        if token.native is None:
            raise TimestampError("granted response without a time-stamp token")
        token_der = token.dump()
    except _PARSE_ERRORS as exc:
        raise TimestampError(f"malformed TimeStampResp: {exc}") from exc
    result = verify_timestamp_token(
        token_der,
        digest=request.imprint.digest,
        hash_algorithm=request.imprint.algorithm,
        trusted_tsa_certs=trusted_tsa_certs,
        now=now,
        max_skew=max_skew,
    )
    # "The nonce ... MUST be present in the response if it was present in
    # the request" and must have the same value (RFC 3161 §2.4.2).
    if result.nonce != request.nonce:
        raise TimestampNonceMismatch(
            f"nonce in the token ({result.nonce}) differs from the request's "
            f"({request.nonce})"
        )
    if request.policy is not None and result.policy != request.policy:
        raise TimestampError(
            f"TSA used policy {result.policy}, the request asked for {request.policy}"
        )
    if now is not None and result.gen_time < now - max_skew:
        raise TimestampError(f"genTime {result.gen_time} is too far before {now}")
    return result


def verify_timestamp_token(
    token_der: bytes,
    *,
    data: bytes | None = None,
    digest: bytes | None = None,
    hash_algorithm: HashAlgorithm | str | None = None,
    trusted_tsa_certs: Sequence[x509.Certificate],
    now: dt.datetime | None = None,
    max_skew: dt.timedelta = dt.timedelta(minutes=5),
) -> TimestampVerified:
    """Verify a stored TimeStampToken (CMS SignedData over a TSTInfo).

    Args:
        token_der: the ContentInfo DER.
        data: the time-stamped bytes, or
        digest: their digest (with ``hash_algorithm``, else the token's).
        hash_algorithm: pin the imprint algorithm; default: the token's.
        trusted_tsa_certs: TSA or CA certificates the signer must be or chain to.
        now: when given, genTime must not be later than ``now + max_skew``.
        max_skew: tolerance for the check above.

    Returns:
        The verified token.

    Raises:
        TimestampError: malformed token, imprint mismatch, bad certificate usage.
        InvalidSignature: the CMS signature or a signed digest does not verify.
        CertificateValidationError: the signer is not a trusted TSA.
        CertificateExpired: the signer or its chain was not valid at genTime.
    """
    parsed = _parse_token(token_der)
    tst = parsed.tst_info
    algorithm = tst.imprint.algorithm
    if hash_algorithm is not None:
        wanted = HashAlgorithm.from_name(hash_algorithm)
        if wanted != algorithm:
            raise TimestampError(
                f"token imprint uses {algorithm.hashlib_name}, expected "
                f"{wanted.hashlib_name}"
            )
    expected = _imprint_for(data, digest, algorithm)
    if not secrets.compare_digest(expected.digest, tst.imprint.digest):
        raise TimestampError("the token's message imprint does not match the data")
    signer = _check_signature(parsed, trusted_tsa_certs)
    _check_timestamping_usage(signer)
    _check_signer_trusted(signer, parsed.certificates, trusted_tsa_certs, tst.gen_time)
    _check_tsa_name(tst.tsa_name, signer)
    if now is not None and tst.gen_time > now + max_skew:
        raise TimestampError(f"genTime {tst.gen_time} is in the future of {now}")
    return TimestampVerified(
        token_der=token_der,
        gen_time=tst.gen_time,
        serial=tst.serial,
        policy=tst.policy,
        imprint=tst.imprint,
        nonce=tst.nonce,
        accuracy=tst.accuracy,
        tsa_cert=signer,
    )


# --------------------------------------------------------------------------
# Parsing (untrusted bytes in, typed values out; any parse error is ours)
# --------------------------------------------------------------------------

_PARSE_ERRORS = (ValueError, TypeError, KeyError, OverflowError, AttributeError)
#: Digest algorithms we accept for the CMS signature itself.
_SIGNER_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_MAX_CHAIN = 6


class _TimeStampResp(core.Sequence):  # type: ignore[misc]
    """TimeStampResp with the token OPTIONAL, as RFC 3161 §2.4.2 defines it.

    (asn1crypto's ``tsp.TimeStampResp`` makes the token mandatory, so it
    cannot read rejections.)
    """

    _fields = [  # noqa: RUF012 - asn1crypto's spec attribute
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


@dataclass(frozen=True, slots=True)
class _TstInfo:
    policy: str
    imprint: MessageImprint
    serial: int
    gen_time: dt.datetime
    accuracy: dt.timedelta | None
    nonce: int | None
    tsa_name: asn1_x509.GeneralName | None


@dataclass(frozen=True, slots=True)
class _ParsedToken:
    tst_info: _TstInfo
    tst_der: bytes
    signer_info: cms.SignerInfo
    certificates: tuple[x509.Certificate, ...]


def _load(spec: type[core.Asn1Value], der: bytes, what: str) -> core.Asn1Value:
    try:
        value = spec.load(bytes(der), strict=True)
        value.native  # noqa: B018 - force the lazy parser over every field
    except _PARSE_ERRORS as exc:
        raise TimestampError(f"malformed {what}: {exc}") from exc
    return value


def _parse_token(token_der: bytes) -> _ParsedToken:
    info = _load(cms.ContentInfo, token_der, "TimeStampToken")
    try:
        if info["content_type"].native != "signed_data":
            raise TimestampError("a TimeStampToken must be a CMS SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        # "The content type ... MUST be id-ct-TSTInfo" (RFC 3161 §2.4.2).
        if encap["content_type"].native != "tst_info":
            raise TimestampError("the token's eContentType is not id-ct-TSTInfo")
        if encap["content"].native is None:
            raise TimestampError("the token has no TSTInfo content")
        tst_der = bytes(encap["content"])
        signer_infos = signed["signer_infos"]
        # "The time-stamp token MUST NOT contain any signatures other than
        # the signature of the TSA" (RFC 3161 §2.4.2).
        if len(signer_infos) != 1:
            raise TimestampError("a time-stamp token must have exactly one signer")
        certs = tuple(
            x509.load_der_x509_certificate(choice.chosen.dump())
            for choice in (signed["certificates"] or [])
            if choice.name == "certificate"
        )
        return _ParsedToken(_parse_tst_info(tst_der), tst_der, signer_infos[0], certs)
    except _PARSE_ERRORS as exc:
        raise TimestampError(f"malformed TimeStampToken: {exc}") from exc


def _parse_tst_info(tst_der: bytes) -> _TstInfo:
    tst = _load(tsp.TSTInfo, tst_der, "TSTInfo")
    if tst["version"].native != "v1":
        raise TimestampError("unsupported TSTInfo version")
    imprint = tst["message_imprint"]
    try:
        algorithm = HashAlgorithm(imprint["hash_algorithm"]["algorithm"].dotted)
    except ValueError:
        oid = imprint["hash_algorithm"]["algorithm"].dotted
        raise TimestampError(f"unsupported imprint algorithm {oid}") from None
    digest = imprint["hashed_message"].native
    if len(digest) != algorithm.digest_size:
        raise TimestampError("the imprint length does not fit its algorithm")
    gen_time = tst["gen_time"].native
    if gen_time.tzinfo is None:
        raise TimestampError("genTime without a time zone")
    accuracy = tst["accuracy"].native
    tsa = tst["tsa"]
    return _TstInfo(
        policy=tst["policy"].dotted,
        imprint=MessageImprint(algorithm, digest),
        serial=tst["serial_number"].native,
        gen_time=gen_time.astimezone(dt.UTC),
        accuracy=None
        if accuracy is None
        else dt.timedelta(
            seconds=accuracy.get("seconds") or 0,
            milliseconds=accuracy.get("millis") or 0,
            microseconds=accuracy.get("micros") or 0,
        ),
        nonce=tst["nonce"].native,
        tsa_name=None if tsa.native is None else tsa,
    )


# --------------------------------------------------------------------------
# Trust checks: each returns normally or raises; none returns False
# --------------------------------------------------------------------------


def _attributes(signer_info: cms.SignerInfo) -> dict[str, core.Asn1Value]:
    attrs = signer_info["signed_attrs"]
    if attrs.native is None:
        raise TimestampError("the token's signer has no signed attributes")
    found: dict[str, core.Asn1Value] = {}
    for attr in attrs:
        name = attr["type"].native
        # "The SignedAttributes MUST NOT include multiple instances of the
        # content-type / message-digest attribute" (RFC 5652 §11.1, §11.2).
        if name in found or len(attr["values"]) != 1:
            raise TimestampError(f"signed attribute {name} is not single-valued")
        found[name] = attr["values"][0]
    return found


def _check_signature(
    parsed: _ParsedToken, trusted: Sequence[x509.Certificate]
) -> x509.Certificate:
    info = parsed.signer_info
    digest_name = info["digest_algorithm"]["algorithm"].native
    if digest_name not in _SIGNER_HASHES:
        raise InvalidSignature(f"unsupported signer digest algorithm {digest_name}")
    hash_cls = _SIGNER_HASHES[digest_name]
    attrs = _attributes(info)
    if "content_type" not in attrs or attrs["content_type"].native != "tst_info":
        raise InvalidSignature("signed content-type attribute is not id-ct-TSTInfo")
    if "message_digest" not in attrs:
        raise InvalidSignature("the message-digest signed attribute is missing")
    actual = hashlib.new(digest_name, parsed.tst_der).digest()
    if not secrets.compare_digest(attrs["message_digest"].native, actual):
        raise InvalidDigest("the message-digest attribute does not match the TSTInfo")
    signer = _find_signer(info["sid"], [*parsed.certificates, *trusted])
    # DER of the SET OF attributes, tag restored from [0] IMPLICIT to SET.
    signed_bytes = b"\x31" + info["signed_attrs"].dump()[1:]
    _verify_raw(signer, info, hash_cls, signed_bytes)
    _check_ess(attrs, signer)
    return signer


def _find_signer(
    sid: cms.SignerIdentifier, candidates: Sequence[x509.Certificate]
) -> x509.Certificate:
    for cert in candidates:
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            if wanted["serial_number"].native == cert.serial_number and wanted[
                "issuer"
            ] == asn1_x509.Name.load(cert.issuer.public_bytes()):
                return cert
        else:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
            except x509.ExtensionNotFound:
                continue
            if ski.value.digest == sid.chosen.native:
                return cert
    raise CertificateValidationError(
        "the TSA certificate is neither in the token nor among the trusted certificates"
    )


def _verify_raw(
    signer: x509.Certificate,
    info: cms.SignerInfo,
    hash_cls: type[hashes.HashAlgorithm],
    signed_bytes: bytes,
) -> None:
    sig_alg = info["signature_algorithm"]
    signature = info["signature"].native
    key = signer.public_key()
    try:
        algo = sig_alg.signature_algo
        try:
            declared = sig_alg.hash_algo
        except ValueError:  # plain rsaEncryption carries no hash
            declared = None
        if declared is not None and algo != "rsassa_pss" and declared != hash_cls.name:
            raise InvalidSignature("signature and digest algorithms disagree")
        if algo == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed_bytes, padding.PKCS1v15(), hash_cls())
        elif algo == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            params = sig_alg["parameters"]
            pss_hash = _SIGNER_HASHES.get(params["hash_algorithm"]["algorithm"].native)
            if pss_hash is None:
                raise InvalidSignature("unsupported RSASSA-PSS hash")
            pss = padding.PSS(padding.MGF1(pss_hash()), params["salt_length"].native)
            key.verify(signature, signed_bytes, pss, pss_hash())
        elif algo == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed_bytes, ec.ECDSA(hash_cls()))
        else:
            raise InvalidSignature(f"unsupported signature algorithm {algo}")
    except _CryptoInvalidSignature:
        raise InvalidSignature(
            "the time-stamp token's signature does not verify"
        ) from None
    except _PARSE_ERRORS as exc:
        raise InvalidSignature(f"cannot verify the token signature: {exc}") from exc


def _check_ess(attrs: dict[str, core.Asn1Value], signer: x509.Certificate) -> None:
    # "The ESS SigningCertificate attribute MUST be included" (RFC 3161
    # §2.4.2); RFC 5816 allows SigningCertificateV2 instead. SHA-1 certHash
    # (version 1) is accepted for reading old tokens; we never produce it.
    if "signing_certificate_v2" in attrs:
        first = attrs["signing_certificate_v2"]["certs"][0]
        hash_name = first["hash_algorithm"]["algorithm"].native
    elif "signing_certificate" in attrs:
        first = attrs["signing_certificate"]["certs"][0]
        hash_name = "sha1"
    else:
        raise InvalidSignature("the token lacks the ESS signing-certificate attribute")
    if hash_name not in ("sha1", *_SIGNER_HASHES):
        raise InvalidSignature(f"unsupported ESS certificate hash {hash_name}")
    cert_der = signer.public_bytes(serialization.Encoding.DER)
    if not secrets.compare_digest(
        first["cert_hash"].native, hashlib.new(hash_name, cert_der).digest()
    ):
        raise InvalidSignature(
            "the ESS signing-certificate hash names another certificate"
        )
    issuer_serial = first["issuer_serial"]
    if issuer_serial.native is not None and (
        issuer_serial["serial_number"].native != signer.serial_number
    ):
        raise InvalidSignature("the ESS issuerSerial names another certificate")


def _check_timestamping_usage(cert: x509.Certificate) -> None:
    # "The corresponding certificate MUST contain only one instance of the
    # extended key usage field extension ... with KeyPurposeID having value:
    # id-kp-timeStamping. This extension MUST be critical." (RFC 3161 §2.3)
    try:
        eku = cert.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE)
    except x509.ExtensionNotFound:
        raise CertificateValidationError(
            "the TSA certificate has no extended key usage"
        ) from None
    except ValueError as exc:  # duplicate extensions
        raise CertificateValidationError(f"bad TSA certificate: {exc}") from exc
    if not eku.critical:
        raise CertificateValidationError("the TSA certificate's EKU is not critical")
    usages = eku.value
    if not isinstance(usages, x509.ExtendedKeyUsage) or list(usages) != [
        ExtendedKeyUsageOID.TIME_STAMPING
    ]:
        raise CertificateValidationError(
            "the TSA certificate's EKU must be exactly id-kp-timeStamping"
        )


def _check_valid_at(cert: x509.Certificate, at: dt.datetime) -> None:
    if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
        raise CertificateExpired(
            f"certificate {cert.subject.rfc4514_string()} was not valid at {at}",
            expired_at=cert.not_valid_after_utc,
        )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(
            cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        )
    except x509.ExtensionNotFound:
        return False


def _check_signer_trusted(
    signer: x509.Certificate,
    bundled: Sequence[x509.Certificate],
    trusted: Sequence[x509.Certificate],
    at: dt.datetime,
) -> None:
    """The signer is a trusted cert itself, or chains to one, valid at ``at``."""
    _check_valid_at(signer, at)
    if signer in trusted:  # pinned, X-Road's approvedTSA/cert model
        return
    current = signer
    for _ in range(_MAX_CHAIN):
        for issuer in [*trusted, *bundled]:
            if (
                issuer.subject != current.issuer
                or issuer == current
                or not _is_ca(issuer)
            ):
                continue
            try:
                current.verify_directly_issued_by(issuer)
            except (_CryptoInvalidSignature, ValueError, TypeError):
                continue
            _check_valid_at(issuer, at)
            if issuer in trusted:
                return
            current = issuer
            break
        else:
            break
    raise CertificateValidationError(
        f"the TSA certificate {signer.subject.rfc4514_string()} does not chain to a "
        "trusted certificate"
    )


def _check_tsa_name(
    name: asn1_x509.GeneralName | None, signer: x509.Certificate
) -> None:
    # "If present, it MUST correspond to one of the subject names included in
    # the certificate that is to be used to verify the token" (RFC 3161 §2.4.2).
    if name is None:
        return
    cert = asn1_x509.Certificate.load(signer.public_bytes(serialization.Encoding.DER))
    candidates = [asn1_x509.GeneralName(name="directory_name", value=cert.subject)]
    candidates.extend(cert.subject_alt_name_value or [])
    for candidate in candidates:
        if candidate.name != name.name:
            continue
        if name.name == "directory_name":
            if candidate.chosen == name.chosen:  # RFC 5280 §7.1 name matching
                return
        elif candidate.native == name.native:
            return
    raise TimestampError("the token's tsa name is not a name of its signer")
