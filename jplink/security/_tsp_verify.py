"""Trust checks on a parsed RFC 3161 token: each returns normally or raises.

None returns False. The CMS signature and its signed attributes (RFC 5652),
the ESS signing-certificate binding (RFC 3161 §2.4.2, RFC 5816), the TSA
certificate's extended key usage (RFC 3161 §2.3), its chain to a trusted
certificate at genTime, and the token's ``tsa`` name. Used by
:func:`jplink.security.tsp.verify_timestamp_token`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence

from asn1crypto import cms, core
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
)

from ._tsp_parse import PARSE_ERRORS, ParsedToken

__all__ = [
    "SIGNER_HASHES",
    "check_signature",
    "check_signer_trusted",
    "check_timestamping_usage",
    "check_tsa_name",
]

#: Digest algorithms we accept for the CMS signature itself.
SIGNER_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_MAX_CHAIN = 6


def _attributes(signer_info: cms.SignerInfo) -> dict[str, core.Asn1Value]:
    attrs = signer_info["signed_attrs"]
    # (Not ``.native``: it would decode and re-encode every attribute.)
    if isinstance(attrs, core.Void):
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


def check_signature(
    parsed: ParsedToken, trusted: Sequence[x509.Certificate]
) -> x509.Certificate:
    """Verify the token's CMS signature and signed attributes.

    Args:
        parsed: the token.
        trusted: trusted certificates, searched for the signer after the
            token's own.

    Returns:
        The signer's certificate (not yet checked for trust).

    Raises:
        InvalidSignature: a bad or missing attribute, or a signature that does
            not verify; ``InvalidDigest`` for a wrong message-digest.
        TimestampError: signed attributes missing or not single-valued.
        CertificateValidationError: the signer's certificate was not found.
    """
    info = parsed.signer_info
    digest_name = info["digest_algorithm"]["algorithm"].native
    if digest_name not in SIGNER_HASHES:
        raise InvalidSignature(f"unsupported signer digest algorithm {digest_name}")
    hash_cls = SIGNER_HASHES[digest_name]
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
            pss_hash = SIGNER_HASHES.get(params["hash_algorithm"]["algorithm"].native)
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
    except PARSE_ERRORS as exc:
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
    if hash_name not in ("sha1", *SIGNER_HASHES):
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


def check_timestamping_usage(cert: x509.Certificate) -> None:
    """Refuse a TSA certificate whose EKU is not exactly critical timeStamping.

    Raises:
        CertificateValidationError: a missing, non-critical or wrong EKU.
    """
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


def check_signer_trusted(
    signer: x509.Certificate,
    bundled: Sequence[x509.Certificate],
    trusted: Sequence[x509.Certificate],
    at: dt.datetime,
) -> None:
    """The signer is a trusted cert itself, or chains to one, valid at ``at``.

    Raises:
        CertificateExpired: the signer or a link was not valid at ``at``.
        CertificateValidationError: no chain to a trusted certificate.
    """
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


def check_tsa_name(
    name: asn1_x509.GeneralName | None, signer: x509.Certificate
) -> None:
    """Refuse a TSTInfo ``tsa`` name that is not a name of the signer.

    Raises:
        TimestampError: the name is present and matches no subject name.
    """
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
