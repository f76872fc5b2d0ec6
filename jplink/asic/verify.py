"""Verify an ASiC-E container offline, as X-Road's ``AsicContainerVerifier``.

The checks (PROTOCOLS.md §12.3, §6.4, §8), each failing closed with the
error of the check that failed (its name is in ``detail["check"]``):

1. ``container``: the ZIP layout (:func:`parse_asic_container`).
2. ``signature``: references, hash chain and SignatureValue
   (:func:`~jplink.security.signature.verify_signature`). A batch signature's
   ``/attachmentN`` DataRefs may be unresolvable: SOAP attachments are not
   logged, and X-Road accepts them as "unverified".
3. ``timestamp``: a single time-stamp over the raw SignatureValue, or a batch
   time-stamp over ``ts-hashchainresult.xml`` after the ts hash chain proves
   that ``META-INF/signatures.xml`` is in the batch; the TSA must be trusted.
4. ``signing-time``: the signature was made before the time-stamp.
5. ``certificate-chain``: the signer chains to a trusted CA, valid at genTime.
6. ``ocsp``: an embedded OCSP response says GOOD for every certificate on
   the path below the anchor, signed by the CA or an authorised responder,
   with thisUpdate within ``ocsp_freshness`` before genTime.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from cryptography import x509

from jplink.errors import (
    InvalidDigest,
    InvalidSignature,
    JPLinkError,
    MalformedMessage,
    OcspError,
    TimestampError,
)
from jplink.security.c14n import DigestAlgorithm, b64decode_text
from jplink.security.certpath import build_certificate_path
from jplink.security.hashchain import verify_hash_chain
from jplink.security.ocsp import (
    OcspCertStatus,
    OcspVerified,
    parse_ocsp_response,
    verify_ocsp_response,
)
from jplink.security.signature import VerifiedSignature, verify_signature
from jplink.security.tsp import TimestampVerified, verify_timestamp_token
from jplink.xml import parse_xml

from ._zip import ZipLimits
from .container import MALFORMED_ASIC, AsicContainer, Entry, parse_asic_container
from .trust import AsicTrust

__all__ = ["AsicVerified", "verify_asic_container"]

_TS_HASH_CHAIN_URI = "/" + Entry.TS_HASH_CHAIN
_SIGNATURES_URI = "/" + Entry.SIGNATURE
_UNLOGGED_ATTACHMENT = re.compile(r"/attachment[1-9][0-9]*")
_NS_ASIC_MANIFEST = "{http://uri.etsi.org/2918/v1.2.1#}"
_NS_DS = "{http://www.w3.org/2000/09/xmldsig#}"
#: Tolerance between the signer's clock and the TSA's.
_CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class AsicVerified:
    """A container whose signature, time-stamp and certificate status verified.

    Attributes:
        message: the signed message bytes (use these, not a re-parse).
        attachments: the signed REST bodies.
        signer_certificate: the verified signing certificate.
        signer_subject: its subject, RFC 4514.
        signing_time: the signed ``xades:SigningTime``.
        timestamp_time: the time-stamp's genTime (the validation time).
        batch_timestamp: whether the time-stamp covers a batch (ts hash chain).
        ocsp_status: the signer's OCSP status (always GOOD here).
        ocsp_time: the signer's OCSP thisUpdate.
        certificate_path: signer first, trust anchor last.
        unverified_refs: hash-chain DataRefs accepted without data (unlogged
            SOAP attachments).
        signature: the full signature result.
        timestamp: the full time-stamp result.
        ocsp: the full OCSP result for the signer.
    """

    message: bytes
    attachments: tuple[bytes, ...]
    signer_certificate: x509.Certificate
    signer_subject: str
    signing_time: dt.datetime
    timestamp_time: dt.datetime
    batch_timestamp: bool
    ocsp_status: OcspCertStatus
    ocsp_time: dt.datetime
    certificate_path: tuple[x509.Certificate, ...]
    unverified_refs: tuple[str, ...]
    signature: VerifiedSignature
    timestamp: TimestampVerified
    ocsp: OcspVerified


@contextlib.contextmanager
def _check(name: str) -> Iterator[None]:
    """Name the failing check in the error (message and ``detail["check"]``)."""
    try:
        yield
    except JPLinkError as exc:
        if "check" not in exc.detail:
            exc.detail["check"] = name
            exc.message = f"ASiC {name} check failed: {exc.message}"
        raise


def _verify_signature(container: AsicContainer) -> VerifiedSignature:
    signature = verify_signature(
        container.signature,
        parts=container.parts,
        hash_chain_result=container.hash_chain_result,
        hash_chain=container.hash_chain,
        allow_unresolved_chain_refs=True,
    )
    chain = signature.hash_chain
    for uri in chain.unverified_refs if chain is not None else ():
        # Only SOAP attachments are left out of the message log; any other
        # unresolvable input would be an unproven claim.
        if not _UNLOGGED_ATTACHMENT.fullmatch(uri):
            raise MalformedMessage(
                f"Hash chain references {uri!r}, which is not in the container",
                code="MalformedSignature.InvalidHashChainRef",
                detail={"uri": uri},
            )
    return signature


def _check_asic_manifest(manifest: bytes, ts_result: bytes) -> None:
    root = parse_xml(manifest)
    sig_ref = root.find(f"{_NS_ASIC_MANIFEST}SigReference")
    refs = root.findall(f"{_NS_ASIC_MANIFEST}DataObjectReference")
    if (
        root.tag != f"{_NS_ASIC_MANIFEST}ASiCManifest"
        or sig_ref is None
        or sig_ref.get("URI") != Entry.TIMESTAMP
        or len(refs) != 1
        or refs[0].get("URI") != Entry.TS_HASH_CHAIN_RESULT
    ):
        raise MalformedMessage(
            "ASiCManifest.xml must bind timestamp.tst to ts-hashchainresult.xml",
            code=MALFORMED_ASIC,
        )
    method = refs[0].find(f"{_NS_DS}DigestMethod")
    algorithm = DigestAlgorithm.from_uri(
        None if method is None else method.get("Algorithm")
    )
    value = refs[0].find(f"{_NS_DS}DigestValue")
    expected = b64decode_text(None if value is None else value.text, "DigestValue")
    if algorithm.digest(ts_result) != expected:
        raise InvalidDigest(
            "ASiCManifest digest of ts-hashchainresult.xml does not match",
            code=MALFORMED_ASIC,
        )


def _verify_timestamp(
    container: AsicContainer,
    signature: VerifiedSignature,
    trust: AsicTrust,
    now: dt.datetime | None,
) -> TimestampVerified:
    embedded = signature.timestamp_tokens
    if container.timestamp is None:
        if len(embedded) != 1:
            raise TimestampError(
                f"Expected one time-stamp in the signature, found {len(embedded)}"
            )
        # PROTOCOLS.md §12.2: a single time-stamp covers the raw (decoded)
        # bytes of ds:SignatureValue.
        return verify_timestamp_token(
            embedded[0],
            data=signature.signature_value,
            trusted_tsa_certs=trust.tsa_certs,
            now=now,
        )
    if embedded:
        raise TimestampError("Both a batch and an embedded time-stamp are present")
    ts_chain, ts_result = container.ts_hash_chain, container.ts_hash_chain_result
    if ts_chain is None or ts_result is None:  # parse_asic_container checks
        raise TimestampError("Batch time-stamp without its hash chain")
    # The batch time-stamp covers the ts hash chain result; the chain proves
    # that this container's signatures.xml is one of the batch's inputs.
    verify_hash_chain(
        ts_result,
        ts_chain,
        data={_SIGNATURES_URI: container.signature},
        hash_chain_uri=_TS_HASH_CHAIN_URI,
    )
    if container.asic_manifest is not None:
        _check_asic_manifest(container.asic_manifest, ts_result)
    return verify_timestamp_token(
        container.timestamp,
        data=ts_result,
        trusted_tsa_certs=trust.tsa_certs,
        now=now,
    )


def _extra_certificates(ders: Sequence[bytes]) -> tuple[x509.Certificate, ...]:
    try:
        return tuple(x509.load_der_x509_certificate(der) for der in ders)
    except ValueError:
        raise MalformedMessage(
            "CertificateValues holds an invalid certificate",
            code="MalformedSignature",
        ) from None


def _find_ocsp(responses: Sequence[bytes], cert: x509.Certificate) -> tuple[bytes, ...]:
    found = []
    for der in responses:
        parsed = parse_ocsp_response(der)
        if any(s.serial_number == cert.serial_number for s in parsed.responses):
            found.append(der)
    return tuple(found)


def _verify_ocsp(
    path: Sequence[x509.Certificate],
    responses: Sequence[bytes],
    trust: AsicTrust,
    at: dt.datetime,
) -> OcspVerified:
    """Verify the OCSP status of every certificate below the anchor."""
    results: list[OcspVerified] = []
    for cert, issuer in itertools.pairwise(path):
        candidates = _find_ocsp(responses, cert)
        if not candidates:
            raise OcspError(
                "The signature holds no OCSP response for "
                f"{cert.subject.rfc4514_string()}",
                detail={"serial": f"{cert.serial_number:x}"},
            )
        results.append(
            verify_ocsp_response(
                candidates[0],
                cert=cert,
                issuer=issuer,
                now=at,
                max_age=trust.ocsp_freshness,
                trusted_responders=trust.ocsp_responder_certs,
            )
        )
    return results[0]


def verify_asic_container(
    data: bytes,
    *,
    trust: AsicTrust,
    now: dt.datetime | None = None,
    limits: ZipLimits | None = None,
) -> AsicVerified:
    """Verify an ASiC-E container: signature, time-stamp, chain and OCSP.

    Args:
        data: the container bytes (untrusted).
        trust: the CAs, OCSP responders and TSAs to trust.
        now: when given (aware), the time-stamp must not lie after it.
        limits: ZIP resource limits.

    Returns:
        The verified container.

    Raises:
        MalformedMessage: a broken container (``MalformedAsicContainer``) or
            signature (``MalformedSignature[...]``, e.g.
            ``MalformedSignature.InvalidHashChainRef``).
        InvalidSignature: ``InvalidSignatureValue``: a digest or the value
            does not verify, or the signature post-dates its time-stamp.
        TimestampError: no time-stamp, or one that does not verify.
        CertificateValidationError: the signer or TSA is not trusted, or a
            certificate is revoked (``RevokedCertificate``) or was not valid
            at genTime (``CertificateExpired``).
        OcspError: missing, badly signed, unknown (``OcspUnknownStatus``) or
            stale (``OcspStale``) OCSP evidence.
    """
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    with _check("container"):
        container = parse_asic_container(data, limits=limits)
    with _check("signature"):
        signature = _verify_signature(container)
    with _check("timestamp"):
        timestamp = _verify_timestamp(container, signature, trust, now)
    with _check("signing-time"):
        if signature.signing_time > timestamp.gen_time + _CLOCK_SKEW:
            raise InvalidSignature("The signature is younger than its time-stamp")
    with _check("certificate-chain"):
        extra = _extra_certificates(signature.extra_certificates)
        path = build_certificate_path(
            signature.signer_certificate,
            anchors=trust.ca_certs,
            intermediates=(*trust.intermediate_certs, *extra),
            at=timestamp.gen_time,
        )
    with _check("ocsp"):
        ocsp = _verify_ocsp(path, signature.ocsp_responses, trust, timestamp.gen_time)
    return AsicVerified(
        message=container.message,
        attachments=container.attachments,
        signer_certificate=signature.signer_certificate,
        signer_subject=signature.signer_certificate.subject.rfc4514_string(),
        signing_time=signature.signing_time,
        timestamp_time=timestamp.gen_time,
        batch_timestamp=container.timestamp is not None,
        ocsp_status=ocsp.status,
        ocsp_time=ocsp.this_update,
        certificate_path=path,
        unverified_refs=(
            signature.hash_chain.unverified_refs if signature.hash_chain else ()
        ),
        signature=signature,
        timestamp=timestamp,
        ocsp=ocsp,
    )
