"""The one error tree of JP-LINK.

Every error that bad input, a failed trust check or a broken peer can cause is a
:class:`JPLinkError`. Each class carries a default X-Road-style leaf ``code``
(``InvalidSignatureValue``, ``MissingHeaderField`` ...). The component that
turns an error into a SOAP fault or an HTTP problem adds its prefix at that
boundary (``Server.ClientProxy``, ``Server.ServerProxy``, ``Client``), the way
X-Road's ``CodedException.withPrefix`` does; core code never knows which
component it runs in.

::

    JPLinkError                      .code, .message, .detail
    ├── ProtocolError                abstract: never raised directly
    │   ├── LocalProtocolError       we tried to build something illegal
    │   └── RemoteProtocolError      the peer / information system sent it wrong
    │       ├── MalformedMessage     InvalidXml, MissingHeader, MissingBody ...
    │       ├── XmlSecurityError     DTD, entity, XXE, oversized document
    │       └── SoapFault            a fault received from the wire
    ├── SecurityError                a trust decision said no
    │   ├── InvalidSignature         → InvalidDigest
    │   ├── CertificateValidationError
    │   │   ├── RevokedCertificate
    │   │   └── CertificateExpired
    │   ├── OcspError                → OcspUnknownStatus, OcspStale
    │   ├── TimestampError           → TimestampRejected, TimestampNonceMismatch
    │   ├── AccessDenied
    │   └── Unauthenticated      no or unknown credentials (HTTP 401)
    ├── GlobalConfError              → GlobalConfSignatureError, GlobalConfExpired
    ├── TransportError               only raised in jplink/clients/*
    ├── NotFound                     an addressed object does not exist
    ├── Conflict                     the request clashes with stored state
    ├── InvalidRequest               a well-formed request with bad values
    ├── StorageError
    ├── ConfigurationError           unknown/missing keys, bad values
    └── ProcessFailed                a child process (jplink network) failed
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "AccessDenied",
    "CertificateExpired",
    "CertificateValidationError",
    "ConfigurationError",
    "Conflict",
    "GlobalConfError",
    "GlobalConfExpired",
    "GlobalConfSignatureError",
    "InvalidDigest",
    "InvalidRequest",
    "InvalidSignature",
    "JPLinkError",
    "LocalProtocolError",
    "MalformedMessage",
    "NotFound",
    "OcspError",
    "OcspStale",
    "OcspUnknownStatus",
    "ProcessFailed",
    "ProtocolError",
    "RemoteProtocolError",
    "RevokedCertificate",
    "SecurityError",
    "SoapFault",
    "StorageError",
    "TimestampError",
    "TimestampNonceMismatch",
    "TimestampRejected",
    "TransportError",
    "Unauthenticated",
    "XmlSecurityError",
]


class JPLinkError(Exception):
    """Base of every JP-LINK error.

    Args:
        message: a sentence a user can act on; never a stack trace or SQL text.
        code: the X-Road-style leaf code; defaults to the class's ``code``.
        detail: optional machine-readable facts (shown in fault ``detail`` and
            problem responses).
    """

    code: ClassVar[str] = "InternalError"
    #: HTTP status used when the error becomes a problem response.
    http_status: ClassVar[int] = 500

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            # An instance-level code shadows the class default.
            self.code = code  # type: ignore[misc]
        self.detail: dict[str, Any] = dict(detail or {})

    def __str__(self) -> str:
        return self.message

    def with_prefix(self, prefix: str) -> str:
        """The full fault code with a component prefix, e.g. ``Server.ClientProxy``."""
        return f"{prefix}.{self.code}" if prefix else self.code


class ProtocolError(JPLinkError):
    """A message that breaks the protocol. Abstract (h11's model)."""

    code = "InvalidMessage"
    http_status = 400

    def __init__(self, message: str, **kwargs: Any) -> None:
        if type(self) is ProtocolError:
            raise TypeError("ProtocolError is abstract; raise a subclass")
        super().__init__(message, **kwargs)


class LocalProtocolError(ProtocolError):
    """We tried to build something illegal (a bug or a misconfiguration here)."""

    code = "InternalError"
    http_status = 500


class RemoteProtocolError(ProtocolError):
    """The peer or information system sent something illegal."""


class MalformedMessage(RemoteProtocolError):
    """A message that does not parse or lacks something required."""

    code = "InvalidMessage"


class XmlSecurityError(RemoteProtocolError):
    """XML refused for safety: DTD, entity declaration, external reference, size."""

    code = "InvalidXml"


class SoapFault(RemoteProtocolError):
    """A SOAP fault received from the wire; it is also the wire object.

    Args:
        faultcode: the full fault code as received
            (``Server.ServerProxy.AccessDenied``).
        faultstring: the human-readable reason.
        faultactor: optional actor.
        faultdetail: optional detail text.
    """

    code = "ServiceFailed"
    http_status = 500

    def __init__(
        self,
        faultcode: str,
        faultstring: str,
        *,
        faultactor: str | None = None,
        faultdetail: str | None = None,
    ) -> None:
        super().__init__(faultstring, code=faultcode)
        self.faultcode = faultcode
        self.faultstring = faultstring
        self.faultactor = faultactor
        self.faultdetail = faultdetail


class SecurityError(JPLinkError):
    """A trust decision said no. Callers must fail closed."""

    code = "SecurityError"
    http_status = 403


class InvalidSignature(SecurityError):
    """A signature (XML, CMS, OCSP, configuration) does not verify."""

    code = "InvalidSignatureValue"


class InvalidDigest(InvalidSignature):
    """A referenced digest does not match the data."""

    code = "InvalidSignatureValue"


class CertificateValidationError(SecurityError):
    """A certificate does not chain, has the wrong usage, or is not trusted."""

    code = "CertValidation"


class RevokedCertificate(CertificateValidationError):
    """The certificate has been revoked.

    Args:
        revoked_at: when it was revoked.
        reason: the CRL reason name, if given.
    """

    code = "CertValidation"

    def __init__(
        self,
        message: str,
        *,
        revoked_at: _dt.datetime | None = None,
        reason: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.revoked_at = revoked_at
        self.reason = reason


class CertificateExpired(CertificateValidationError):
    """The certificate is outside its validity period at the checked time."""

    code = "CertValidation"

    def __init__(
        self, message: str, *, expired_at: _dt.datetime | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.expired_at = expired_at


class OcspError(SecurityError):
    """An OCSP response is missing, malformed, or does not verify."""

    code = "InvalidOcspResponse"


class OcspUnknownStatus(OcspError):
    """The responder does not know the certificate."""

    code = "CertValidation"


class OcspStale(OcspError):
    """The OCSP response is older than allowed.

    Args:
        produced_at: the response's time.
        max_age: the allowed age.
    """

    code = "CertValidation"

    def __init__(
        self,
        message: str,
        *,
        produced_at: _dt.datetime | None = None,
        max_age: _dt.timedelta | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.produced_at = produced_at
        self.max_age = max_age


class TimestampError(SecurityError):
    """A time-stamp token or response is invalid."""

    code = "TimestampingFailed"


class TimestampRejected(TimestampError):
    """The TSA answered with a rejection.

    Args:
        status: the PKIStatus integer.
        fail_info: the failInfo bit names, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        fail_info: tuple[str, ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.status = status
        self.fail_info = fail_info


class TimestampNonceMismatch(TimestampError):
    """The token's nonce differs from the request's."""


class AccessDenied(SecurityError):
    """The caller has no right to what it asked for."""

    code = "AccessDenied"


class Unauthenticated(SecurityError):
    """The caller gave no credentials, or ones that are unknown or revoked."""

    code = "Unauthorized"
    http_status = 401


class GlobalConfError(JPLinkError):
    """Global configuration missing, malformed or untrusted."""

    code = "InvalidGlobalConf"
    http_status = 500


class GlobalConfSignatureError(GlobalConfError):
    """The configuration directory's signature or a file hash does not verify."""

    code = "InvalidSignatureValue"


class GlobalConfExpired(GlobalConfError):
    """The configuration is past its expiry date."""

    code = "OutdatedGlobalConf"


class TransportError(JPLinkError):
    """An outbound call failed at the network or HTTP level.

    Args:
        url: the address called.
        status: the HTTP status, when one was received.
        request_sent: False when no connection was made, so that no byte of
            the request left and it may be tried elsewhere.
    """

    code = "NetworkError"
    http_status = 502

    def __init__(
        self,
        message: str,
        *,
        url: str,
        status: int | None = None,
        request_sent: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.url = url
        self.status = status
        self.request_sent = request_sent


class NotFound(JPLinkError):
    """An addressed object (member, service, certificate ...) does not exist."""

    code = "NotFound"
    http_status = 404


class Conflict(JPLinkError):
    """The request clashes with stored state (duplicate, wrong state)."""

    code = "Conflict"
    http_status = 409


class InvalidRequest(JPLinkError):
    """A well-formed request whose values are not acceptable."""

    code = "InvalidRequest"
    http_status = 400


class StorageError(JPLinkError):
    """The database failed; the transaction was rolled back."""

    code = "DatabaseError"
    http_status = 503


class ConfigurationError(JPLinkError):
    """Configuration file with unknown or missing keys, or bad values."""

    code = "InvalidConfiguration"
    http_status = 500


class ProcessFailed(JPLinkError):
    """A child process that ``jplink network`` started failed or exited.

    Args:
        log: the file holding the process's output, for the operator to read.
    """

    code = "ProcessFailed"
    http_status = 500

    def __init__(self, message: str, *, log: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.log = log
