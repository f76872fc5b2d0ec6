"""Global configuration (PR-GCONF): anchors, signed directories, shared/private params.

Sans-IO: bytes in, objects out, ``now`` passed in. A security server uses it as

1. :func:`parse_configuration_anchor` on the anchor the operator uploaded;
2. :func:`verify_directory` on the downloaded directory, with the anchor's
   :attr:`~ConfigurationAnchor.verification_certs`;
3. :func:`verify_file` on each downloaded file, then
   :func:`parse_shared_parameters` / :func:`parse_private_parameters`;
4. the queries of :class:`SharedParameters` (servers of a client, auth-cert
   registration, trusted CAs, OCSP responders, TSAs, names, global groups).

A central server builds the same files with :func:`serialize_shared_parameters`,
:func:`serialize_private_parameters`, :func:`serialize_configuration_anchor` and
:func:`build_signed_directory`.
"""

from __future__ import annotations

from .algorithms import DigestAlgorithm, SignatureAlgorithm
from .anchor import (
    AnchorSource,
    ConfigurationAnchor,
    parse_configuration_anchor,
    serialize_configuration_anchor,
)
from .authorities import (
    AcmeServer,
    ApprovedCA,
    ApprovedTSA,
    CaInfo,
    CostType,
    CsrFormat,
    OcspResponder,
)
from .directory import (
    ContentIdentifier,
    DirectoryEntry,
    SignedDirectory,
    parse_signed_directory,
)
from .generate import serialize_private_parameters, serialize_shared_parameters
from .model import (
    CentralService,
    GlobalGroup,
    GlobalSettings,
    MaintenanceMode,
    ManagementService,
    Member,
    MemberClass,
    PrivateParameters,
    SecurityServer,
    SharedParameters,
    SharedSource,
    Subsystem,
    auth_cert_hash,
)
from .parse import parse_private_parameters, parse_shared_parameters
from .sign import ConfFile, build_signed_directory
from .verify import VerifiedDirectory, VerifiedFile, verify_directory, verify_file

__all__ = [
    "AcmeServer",
    "AnchorSource",
    "ApprovedCA",
    "ApprovedTSA",
    "CaInfo",
    "CentralService",
    "ConfFile",
    "ConfigurationAnchor",
    "ContentIdentifier",
    "CostType",
    "CsrFormat",
    "DigestAlgorithm",
    "DirectoryEntry",
    "GlobalGroup",
    "GlobalSettings",
    "MaintenanceMode",
    "ManagementService",
    "Member",
    "MemberClass",
    "OcspResponder",
    "PrivateParameters",
    "SecurityServer",
    "SharedParameters",
    "SharedSource",
    "SignatureAlgorithm",
    "SignedDirectory",
    "Subsystem",
    "VerifiedDirectory",
    "VerifiedFile",
    "auth_cert_hash",
    "build_signed_directory",
    "parse_configuration_anchor",
    "parse_private_parameters",
    "parse_shared_parameters",
    "parse_signed_directory",
    "serialize_configuration_anchor",
    "serialize_private_parameters",
    "serialize_shared_parameters",
    "verify_directory",
    "verify_file",
]
