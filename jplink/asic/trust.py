"""What an offline verifier of ASiC containers trusts.

X-Road verifies a container against the global configuration that was valid
when it was made (PROTOCOLS.md §8, §12.3): the approved CAs (top CAs are the
anchors, intermediates only help build the path), the OCSP responder
certificates and the approved TSAs, plus ``ocspFreshnessSeconds``.
:class:`AsicTrust` holds exactly that; build it from a shared-parameters file
with :func:`load_asic_trust`. Path building lives in
:mod:`jplink.security.certpath`; :func:`build_certificate_path` is re-exported
here so existing imports keep working.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509

from jplink.globalconf import SharedParameters, parse_shared_parameters
from jplink.security.certpath import build_certificate_path

__all__ = ["AsicTrust", "build_certificate_path", "load_asic_trust"]


@dataclass(frozen=True, slots=True)
class AsicTrust:
    """Trust material for verifying ASiC containers offline."""

    ca_certs: tuple[x509.Certificate, ...]
    """Trust anchors for signing certificates (approved top CAs that may
    issue signing certificates; authentication-only CAs are left out)."""

    tsa_certs: tuple[x509.Certificate, ...]
    """Approved TSA certificates (or CAs they must chain to)."""

    ocsp_responder_certs: tuple[x509.Certificate, ...] = ()
    """Responder certificates configured for the CAs; a CA itself and its
    delegated responders (EKU OCSPSigning) are accepted anyway."""

    intermediate_certs: tuple[x509.Certificate, ...] = ()
    """Intermediate CA certificates, for path building only."""

    ocsp_freshness: dt.timedelta = dt.timedelta(seconds=3600)
    """The largest age of an OCSP response at the time-stamp's genTime
    (X-Road's ``ocspFreshnessSeconds``, default 3600)."""

    @classmethod
    def from_shared_parameters(cls, params: SharedParameters) -> AsicTrust:
        """The trust of a parsed shared-parameters file.

        Args:
            params: the shared parameters (any supported version).

        Returns:
            The trust: signing-capable top CAs, their intermediates, all OCSP
            responder certificates, the approved TSAs and the freshness.
        """
        signing_cas = [ca for ca in params.approved_cas if not ca.authentication_only]
        return cls(
            ca_certs=tuple(ca.top_ca.cert for ca in signing_cas),
            tsa_certs=tuple(params.tsa_certs()),
            ocsp_responder_certs=tuple(params.ocsp_responder_certs()),
            intermediate_certs=tuple(
                info.cert for ca in signing_cas for info in ca.intermediate_cas
            ),
            ocsp_freshness=dt.timedelta(
                seconds=params.global_settings.ocsp_freshness_seconds
            ),
        )


def load_asic_trust(shared_params_xml: bytes) -> AsicTrust:
    """Build :class:`AsicTrust` from a shared-parameters XML file.

    Args:
        shared_params_xml: the ``shared-params.xml`` bytes (V2-V6; certs as
            base64 DER or base64 of PEM text).

    Returns:
        The trust.

    Raises:
        GlobalConfError: the file is not valid shared parameters.
        XmlSecurityError: the file is not acceptable XML.
    """
    return AsicTrust.from_shared_parameters(parse_shared_parameters(shared_params_xml))
