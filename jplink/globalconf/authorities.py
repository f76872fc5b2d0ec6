"""Approved certification and time-stamping authorities (shared params §3-4).

These are the trust material a security server takes from the global
configuration: CA certificates (top CAs are the trust anchors, intermediates
are for path building), OCSP responders with their signing certificates, and
the TSAs whose tokens it accepts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography import x509

__all__ = [
    "AcmeServer",
    "ApprovedCA",
    "ApprovedTSA",
    "CaInfo",
    "CostType",
    "CsrFormat",
    "OcspResponder",
]


class CostType(enum.Enum):
    """Whether an OCSP or TSA service is free (V6 ``costType``)."""

    FREE = "FREE"
    PAID = "PAID"
    UNDEFINED = "UNDEFINED"


class CsrFormat(enum.Enum):
    """A CA's default CSR format (V6 ``defaultCsrFormat``)."""

    PEM = "PEM"
    DER = "DER"


@dataclass(frozen=True, slots=True)
class OcspResponder:
    """An OCSP responder of a CA: URL, optional signing cert, V6 cost type."""

    url: str
    cert: x509.Certificate | None = None
    cost_type: CostType | None = None


@dataclass(frozen=True, slots=True)
class CaInfo:
    """A CA certificate and the OCSP responders for what it issues."""

    cert: x509.Certificate
    ocsp: tuple[OcspResponder, ...] = ()


@dataclass(frozen=True, slots=True)
class AcmeServer:
    """ACME settings of an approved CA (V6)."""

    directory_url: str
    ip_address: str | None = None
    authentication_certificate_profile_id: str | None = None
    signing_certificate_profile_id: str | None = None


@dataclass(frozen=True, slots=True)
class ApprovedCA:
    """A certification authority approved by the governing authority.

    Attributes:
        name: shown in user interfaces.
        top_ca: the trust anchor for chain building.
        intermediate_cas: used for path building and finding OCSP responders.
        certificate_profile_info: the X-Road (Java) class name of the cert profile.
        authentication_only: certificates of this CA may be used for TLS only,
            never for message signatures.
        default_csr_format: V6 default CSR format.
        acme_server: V6 ACME settings.
    """

    name: str
    top_ca: CaInfo
    certificate_profile_info: str
    intermediate_cas: tuple[CaInfo, ...] = ()
    authentication_only: bool = False
    default_csr_format: CsrFormat | None = None
    acme_server: AcmeServer | None = None

    @property
    def ca_infos(self) -> tuple[CaInfo, ...]:
        """The top CA followed by the intermediates."""
        return (self.top_ca, *self.intermediate_cas)


@dataclass(frozen=True, slots=True)
class ApprovedTSA:
    """An approved time-stamping authority."""

    name: str
    url: str
    cert: x509.Certificate
    cost_type: CostType | None = None
