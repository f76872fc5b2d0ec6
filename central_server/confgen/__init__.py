"""Global configuration on the central server: signing keys, generation, anchors.

- :mod:`.keys`: configuration-signing keys with two-stage rollover;
- :mod:`.snapshot`: the registry read into the :mod:`jplink.globalconf` model;
- :mod:`.build`: one signed generation (sans-IO);
- :mod:`.service`: what the CLI and the publisher (:mod:`central_server.publisher`)
  call.
"""

from __future__ import annotations

from .build import (
    CONF_VERSION,
    GeneratedConfiguration,
    PublicationSettings,
    SignedDirectoryFile,
    build_configuration,
    version_id,
)
from .keys import (
    ConfSigner,
    SigningKeyInfo,
    SigningKeySet,
    SourceType,
    activate_signing_key,
    add_signing_key,
    list_signing_keys,
    load_signing_key_set,
    remove_signing_key,
)
from .service import (
    build_anchor,
    generate_anchor,
    generate_configuration,
    publication_settings,
)
from .snapshot import RegistrySnapshot, change_marker, read_registry

__all__ = [
    "CONF_VERSION",
    "ConfSigner",
    "GeneratedConfiguration",
    "PublicationSettings",
    "RegistrySnapshot",
    "SignedDirectoryFile",
    "SigningKeyInfo",
    "SigningKeySet",
    "SourceType",
    "activate_signing_key",
    "add_signing_key",
    "build_anchor",
    "build_configuration",
    "change_marker",
    "generate_anchor",
    "generate_configuration",
    "list_signing_keys",
    "load_signing_key_set",
    "publication_settings",
    "read_registry",
    "remove_signing_key",
    "version_id",
]
