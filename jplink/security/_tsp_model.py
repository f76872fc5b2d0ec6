"""RFC 3161 wire constants and the value objects of the time-stamp client.

Shared by request building and verification (:mod:`jplink.security.tsp`, which
re-exports every public name), response parsing (:mod:`._tsp_parse`), the
trust checks (:mod:`._tsp_verify`) and the TSA in ``ca_tsa.tsa``.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from dataclasses import dataclass

from cryptography import x509

__all__ = [
    "WIRE_FAIL_NAMES",
    "FailInfo",
    "HashAlgorithm",
    "MessageImprint",
    "PKIStatus",
    "TimestampRequest",
    "TimestampVerified",
]


class HashAlgorithm(enum.Enum):
    """Message-imprint hash algorithms we accept; the value is the OID.

    SHA-1 is deliberately absent: SHA-1 imprints are neither produced nor
    accepted. (Reading old tokens, a version-1 ESS signingCertificate, whose
    certHash is SHA-1 by definition, is still accepted; see ``._tsp_verify``.)
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
WIRE_FAIL_NAMES = {v: k.value for k, v in _ASN1_FAIL_NAMES.items()}


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
