"""Parse an RFC 3161 TimeStampReq from untrusted bytes (pure).

Every refusal is an :class:`~jplink.errors.InvalidRequest` whose
``detail["fail_info"]`` is the :class:`~jplink.security.tsp.FailInfo` to put
into the rejection response, so the TSA never lets an exception escape for
bad input.
"""

from __future__ import annotations

from dataclasses import dataclass

from asn1crypto import tsp

from jplink.errors import InvalidRequest
from jplink.security.tsp import FailInfo, HashAlgorithm

__all__ = ["TimestampQuery", "parse_timestamp_query", "query_rejected"]

_PARSE_ERRORS = (ValueError, TypeError, KeyError, OverflowError, AttributeError)
_NULL = b"\x05\x00"


@dataclass(frozen=True, slots=True)
class TimestampQuery:
    """The parts of a TimeStampReq the TSA acts on."""

    algorithm: HashAlgorithm
    digest: bytes
    #: Whether the request's AlgorithmIdentifier carried explicit NULL
    #: parameters; the TSTInfo echoes the imprint exactly as received.
    null_params: bool
    nonce: int | None
    cert_req: bool
    policy: str | None


def query_rejected(fail_info: FailInfo, message: str) -> InvalidRequest:
    """The error for a refused request, carrying the failInfo to answer with."""
    return InvalidRequest(message, detail={"fail_info": fail_info})


def parse_timestamp_query(der: bytes, *, policy_oid: str) -> TimestampQuery:
    """Parse and check a TimeStampReq (RFC 3161 §2.4.1).

    Args:
        der: the request body, as received.
        policy_oid: the TSA's policy; a request for another one is refused.

    Returns:
        The query to answer.

    Raises:
        InvalidRequest: with ``detail["fail_info"]`` badDataFormat (not a
            TimeStampReq), badAlg (hash not SHA-256/384/512),
            unacceptedPolicy (reqPolicy not ours) or unacceptedExtension (any
            extension: we support none).
    """
    try:
        req = tsp.TimeStampReq.load(der, strict=True)
        # Touch every field: asn1crypto parses lazily, and a broken field
        # must fail here, not later. (Cheaper than ``.native`` on the whole.)
        version = req["version"].native
        imprint = req["message_imprint"]
        alg = imprint["hash_algorithm"]
        oid = alg["algorithm"].dotted
        params_der = alg["parameters"].dump()
        digest = imprint["hashed_message"].native
        nonce = req["nonce"].native
        cert_req = bool(req["cert_req"].native)
        req_policy = req["req_policy"]
        policy = None if req_policy.native is None else req_policy.dotted
        extensions = req["extensions"].native
    except _PARSE_ERRORS as exc:
        raise query_rejected(
            FailInfo.BAD_DATA_FORMAT, "not a DER TimeStampReq"
        ) from exc
    if version != "v1":
        raise query_rejected(FailInfo.BAD_DATA_FORMAT, "TimeStampReq version must be 1")
    try:
        algorithm = HashAlgorithm(oid)
    except ValueError:
        raise query_rejected(
            FailInfo.BAD_ALG, f"hash algorithm {oid} is not accepted"
        ) from None
    if params_der not in (b"", _NULL):
        raise query_rejected(FailInfo.BAD_ALG, "hash algorithm with parameters")
    if len(digest) != algorithm.digest_size:
        raise query_rejected(
            FailInfo.BAD_DATA_FORMAT,
            f"a {algorithm.hashlib_name} imprint has {algorithm.digest_size} bytes",
        )
    # "unacceptedPolicy (15) -- the requested TSA policy is not supported by
    # the TSA." (RFC 3161 §2.4.2)
    if policy is not None and policy != policy_oid:
        raise query_rejected(
            FailInfo.UNACCEPTED_POLICY, f"policy {policy} is not this TSA's policy"
        )
    # "If an extension, whether it is marked critical or not critical, is used
    # by a requester but is not recognized by a time-stamping server, the
    # server SHALL not issue a token and SHALL return a failure
    # (unacceptedExtension)." (RFC 3161 §2.4.1)
    if extensions:
        raise query_rejected(
            FailInfo.UNACCEPTED_EXTENSION, "request extensions are not supported"
        )
    return TimestampQuery(
        algorithm=algorithm,
        digest=digest,
        null_params=params_der == _NULL,
        nonce=nonce,
        cert_req=cert_req,
        policy=policy,
    )
