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

This module builds requests and runs the checks in order; the pieces live in
private modules by concept: :mod:`._tsp_model` (wire constants, value
objects), :mod:`._tsp_parse` (untrusted DER to typed values) and
:mod:`._tsp_verify` (the trust checks). Every public name is re-exported here.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

from asn1crypto import core, tsp
from cryptography import x509

from jplink.errors import TimestampError, TimestampNonceMismatch, TimestampRejected

from ._tsp_model import (
    WIRE_FAIL_NAMES,
    FailInfo,
    HashAlgorithm,
    MessageImprint,
    PKIStatus,
    TimestampRequest,
    TimestampVerified,
)
from ._tsp_parse import PARSE_ERRORS, TimeStampResp, load_asn1, parse_token
from ._tsp_verify import (
    check_signature,
    check_signer_trusted,
    check_timestamping_usage,
    check_tsa_name,
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
    resp = load_asn1(TimeStampResp, der, "TimeStampResp")
    try:
        status_info = resp["status"]
        status = int(status_info["status"])
        if status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
            bits = status_info["fail_info"].native or set()
            names = tuple(sorted(WIRE_FAIL_NAMES.get(b, str(b)) for b in bits))
            text = "; ".join(status_info["status_string"].native or [])
            detail = f"status {status}" + "".join(f", {n}" for n in names)
            raise TimestampRejected(
                f"the TSA rejected the request ({detail})"
                + (f": {text}" if text else ""),
                status=status,
                fail_info=names,
            )
        token = resp["time_stamp_token"]
        if isinstance(token, core.Void):
            raise TimestampError("granted response without a time-stamp token")
        token_der = token.dump()
    except PARSE_ERRORS as exc:
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
    parsed = parse_token(token_der)
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
    signer = check_signature(parsed, trusted_tsa_certs)
    check_timestamping_usage(signer)
    check_signer_trusted(signer, parsed.certificates, trusted_tsa_certs, tst.gen_time)
    check_tsa_name(tst.tsa_name, signer)
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
