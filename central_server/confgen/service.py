"""The global-configuration service layer: what the CLI and publisher call.

:func:`generate_configuration` reads the registry and the signing keys and
builds one generation (the CPU-bound XML writing and signing runs in a worker
thread so a publisher keeps serving meanwhile); :func:`generate_anchor` writes
the configuration anchor with every current verification certificate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from urllib.parse import urlsplit

from cryptography import x509

from jplink.errors import ConfigurationError
from jplink.globalconf import (
    AnchorSource,
    ConfigurationAnchor,
    serialize_configuration_anchor,
)
from jplink.storage import Database

from ..config import CentralConfig
from ..registry import get_parameters
from .build import GeneratedConfiguration, PublicationSettings, build_configuration
from .keys import SigningKeySet, SourceType, list_signing_keys, load_signing_key_set
from .snapshot import read_registry

__all__ = [
    "build_anchor",
    "generate_anchor",
    "generate_configuration",
    "load_key_sets",
    "publication_settings",
]


def publication_settings(config: CentralConfig) -> PublicationSettings:
    """Source URLs and management-service address from ``[publisher]``.

    Raises:
        ConfigurationError: a bad source URL or an unreadable certificate file.
    """
    pub = config.publisher
    urls = pub.source_urls or (f"http://{pub.host}:{pub.port}",)
    host = urlsplit(urls[0]).hostname or pub.host
    msurl = (
        pub.management_service_url
        or f"https://{host}:{config.registration.port}/managementservice/"
    )
    cert = None
    if pub.management_service_cert_file is not None:
        path = pub.management_service_cert_file
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"[publisher] management_service_cert_file {path}: not a readable "
                "PEM certificate"
            ) from exc
    try:
        return PublicationSettings(tuple(urls), msurl, cert)
    except ValueError as exc:
        raise ConfigurationError(f"[publisher] source_urls: {exc}") from exc


async def load_key_sets(
    db: Database, config: CentralConfig
) -> tuple[SigningKeySet, SigningKeySet]:
    """The internal and external signing keys.

    Raises:
        Conflict: a source type has no active key.
        ConfigurationError: a key file is unusable.
    """
    keys = await list_signing_keys(db)
    return (
        load_signing_key_set(config.home, keys, SourceType.INTERNAL),
        load_signing_key_set(config.home, keys, SourceType.EXTERNAL),
    )


async def generate_configuration(
    db: Database, config: CentralConfig, *, now: dt.datetime
) -> GeneratedConfiguration:
    """Generate and sign the configuration of the current registry state.

    Args:
        db: the central server's database.
        config: the instance configuration (home for key files, publisher).
        now: the generation time.

    Returns:
        The generation (not yet published).

    Raises:
        Conflict: not initialised, no management service provider, or no
            active signing key.
        ConfigurationError: bad ``[publisher]`` settings or key files.
        GlobalConfError: a stored certificate does not parse.
    """
    settings = publication_settings(config)
    internal, external = await load_key_sets(db, config)
    snapshot = await read_registry(db)
    return await asyncio.to_thread(
        build_configuration,
        snapshot,
        settings=settings,
        internal=internal,
        external=external,
        now=now,
    )


def build_anchor(
    instance: str,
    source_urls: tuple[str, ...],
    certs: tuple[x509.Certificate, ...],
    *,
    external: bool,
    now: dt.datetime,
) -> ConfigurationAnchor:
    """The anchor of ``internalconf`` (or ``externalconf``) at these URLs.

    Args:
        instance: the instance identifier.
        source_urls: base URLs; each gives ``<url>/internalconf``.
        certs: every current verification certificate of the source type.
        external: point at ``externalconf``.
        now: written as ``generatedAt``.
    """
    name = "externalconf" if external else "internalconf"
    return ConfigurationAnchor(
        instance_identifier=instance,
        sources=tuple(
            AnchorSource(f"{url.rstrip('/')}/{name}", certs) for url in source_urls
        ),
        generated_at=now,
    )


async def generate_anchor(
    db: Database, config: CentralConfig, *, external: bool, now: dt.datetime
) -> bytes:
    """The configuration anchor file with all current verification certs.

    Raises:
        Conflict: not initialised, or no active key of that source type.
        ConfigurationError: bad ``[publisher]`` settings or key files.
    """
    settings = publication_settings(config)
    params = await get_parameters(db)
    keys = load_signing_key_set(
        config.home,
        await list_signing_keys(db),
        SourceType.EXTERNAL if external else SourceType.INTERNAL,
    )
    anchor = build_anchor(
        params.instance_identifier,
        settings.source_urls,
        keys.verification_certs,
        external=external,
        now=now,
    )
    return serialize_configuration_anchor(anchor)
