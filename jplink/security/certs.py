"""Certificates: the JP-LINK certificate profile, CSR checks and certificate building.

Sans-IO: CSR bytes and keys in, ``x509.Certificate`` objects out; ``now`` is a
parameter. The CA (``ca_tsa``) issues with these functions and verifiers map a
certificate back to its member with :func:`member_subject_from_certificate`.

The JP-LINK certificate profile (``JpLinkCertificateProfileInfoProvider``)
==========================================================================

X-Road maps a certificate to a member with a per-CA ``certificateProfileInfo``
(PROTOCOLS.md §6.4): the FiVRK profile puts the member code in ``CN`` and
``INSTANCE/serverCode/memberClass`` in ``serialNumber``; the EJBCA profile uses
``C``/``O``/``CN``. JP-LINK's profile is modelled on FiVRK but puts the *whole*
member identifier in ``serialNumber`` so the mapping needs no other attribute,
and identifier codes can never contain ``/`` (PROTOCOLS.md §2 allows only
``A-Z a-z 0-9 '()+,-.=?``), so the split is unambiguous:

- ``C``: ``JP`` (both profiles).
- ``O``: the member name (both profiles).
- ``CN``: ``sign``: the member code; ``auth``: the security server code.
- ``serialNumber``: ``sign``: ``<instance>/<memberClass>/<memberCode>``;
  ``auth``: ``<instance>/<memberClass>/<memberCode>/<serverCode>``.

The issued subject is always built from the member identifier the central
server approved; a CSR's own subject must *fit* it: only these four attributes,
each single-valued, ``CN`` present, and every value present equal to the one
the profile derives.

Extensions of issued certificates: basicConstraints CA:FALSE (critical);
keyUsage (critical): ``sign`` nonRepudiation, ``auth`` digitalSignature plus
keyEncipherment for RSA keys (an EC key cannot encipher, so EC auth keys get
digitalSignature only); extendedKeyUsage ``auth``: clientAuth, serverAuth;
authorityInfoAccess with the OCSP URL; subject and authority key identifiers.
Every signature is SHA-256 (RSA PKCS#1 v1.5 or ECDSA).

The code lives in two modules by concept, re-exported here: :mod:`._certs_profile`
(subjects, member mapping, CSR checks) and :mod:`._certs_build` (builders).
"""

from __future__ import annotations

import functools

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ._certs_build import (
    Issuer,
    build_ca_certificate,
    build_end_entity_certificate,
    build_ocsp_signing_certificate,
    build_tsa_certificate,
    random_serial_number,
)
from ._certs_profile import (
    COUNTRY,
    CertProfile,
    MemberSubject,
    VerifiedCsr,
    build_subject_name,
    member_subject_from_certificate,
    verify_csr,
    verify_csr_subject,
)

__all__ = [
    "COUNTRY",
    "CertProfile",
    "Issuer",
    "MemberSubject",
    "VerifiedCsr",
    "build_ca_certificate",
    "build_end_entity_certificate",
    "build_ocsp_signing_certificate",
    "build_subject_name",
    "build_tsa_certificate",
    "certificate_der",
    "member_subject_from_certificate",
    "random_serial_number",
    "verify_csr",
    "verify_csr_subject",
]


@functools.lru_cache(maxsize=512)
def certificate_der(cert: x509.Certificate) -> bytes:
    """The DER encoding of ``cert``, memoised.

    The exchange needs the DER of the same few certificates (its own signing
    certificate, its peers') for every message; encoding one again costs more
    than all the rest of a cache hit. Certificates are immutable and compare
    by their DER bytes, so a hit can never be another certificate's encoding.
    """
    return cert.public_bytes(Encoding.DER)
