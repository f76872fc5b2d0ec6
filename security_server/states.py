"""The security server's stored states and kinds; each value is the stored word.

Registration states follow X-Road's (``saved``, ``registration in progress``,
``registered``, ``deletion in progress``, ``disabled``); the words are the ones
the CLI shows and the admin API will return.
"""

from __future__ import annotations

import enum

__all__ = [
    "AccessSubjectType",
    "CentralRequestKind",
    "CentralRequestStatus",
    "CertStatus",
    "ClientState",
    "LogDirection",
    "LogSide",
    "ServiceDescriptionType",
]


class ClientState(enum.Enum):
    """Registration state of a member or subsystem of this server."""

    SAVED = "saved"
    REGISTRATION_IN_PROGRESS = "registration-in-progress"
    REGISTERED = "registered"
    DELETION_IN_PROGRESS = "deletion-in-progress"
    DISABLED = "disabled"


class CertStatus(enum.Enum):
    """Registration state of a certificate on the token."""

    SAVED = "saved"
    REGISTRATION_IN_PROGRESS = "registration-in-progress"
    REGISTERED = "registered"
    DISABLED = "disabled"


class CentralRequestKind(enum.Enum):
    """What an onboarding request sent to the central server asks for."""

    CSR = "csr"
    AUTH_CERT_REG = "authCertReg"
    CLIENT_REG = "clientReg"
    CLIENT_DELETION = "clientDeletion"


class CentralRequestStatus(enum.Enum):
    """This server's view of an onboarding request.

    ``submitted``: the central server stored it (pending approval);
    ``approved``: a CSR request's certificate was issued and imported;
    ``declined``: the operator declined it (the reason is kept);
    ``completed``: the global configuration shows the change.
    """

    SUBMITTED = "submitted"
    APPROVED = "approved"
    DECLINED = "declined"
    COMPLETED = "completed"


class ServiceDescriptionType(enum.Enum):
    """What a service description was read from."""

    WSDL = "wsdl"
    OPENAPI3 = "openapi3"
    REST = "rest"


class AccessSubjectType(enum.Enum):
    """Who an access right is granted to."""

    CLIENT = "client"
    LOCAL_GROUP = "local-group"
    GLOBAL_GROUP = "global-group"


class LogDirection(enum.Enum):
    """Whether a message-log record is a request or a response."""

    REQUEST = "request"
    RESPONSE = "response"


class LogSide(enum.Enum):
    """Which proxy wrote a message-log record."""

    CLIENT_PROXY = "client-proxy"
    SERVER_PROXY = "server-proxy"
