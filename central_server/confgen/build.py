"""Build one generation of the global configuration (sans-IO).

From a :class:`~.snapshot.RegistrySnapshot`, the signing keys and the
publication settings this writes ``private-params.xml`` (V3) and
``shared-params.xml`` (V6) and signs two directories (PR-GCONF §9.3):

- ``internalconf``: PRIVATE-PARAMETERS and SHARED-PARAMETERS, signed with the
  active internal key;
- ``externalconf``: SHARED-PARAMETERS only, signed with the active external key.

Files live at ``/V6/<version id>/<name>``; the version id is the generation
time as X-Road writes it (``yyyyMMddHHmmss`` + 9 digits of nanoseconds).
``Expire-date`` is ``now + confExpireIntervalSeconds`` (PR-GCONF: "expiry =
generation time + confExpireIntervalSeconds (600)"). The XML bytes depend only
on the registry state, keys and settings, never on ``now``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509

from jplink.errors import Conflict
from jplink.globalconf import (
    ConfFile,
    ContentIdentifier,
    GlobalSettings,
    ManagementService,
    PrivateParameters,
    SharedParameters,
    SharedSource,
    build_signed_directory,
    serialize_private_parameters,
    serialize_shared_parameters,
)

from .keys import SigningKeySet
from .snapshot import RegistrySnapshot

__all__ = [
    "CONF_VERSION",
    "GeneratedConfiguration",
    "PublicationSettings",
    "SignedDirectoryFile",
    "build_configuration",
    "private_parameters",
    "shared_parameters",
    "version_id",
]

#: The configuration version we publish (X-Road 7.8 clients ask for 6).
CONF_VERSION = 6


@dataclass(frozen=True, slots=True)
class PublicationSettings:
    """Where the configuration is published and the management service.

    Attributes:
        source_urls: base URLs (``http://cs.example.jp``); each host becomes a
            shared-params ``source/address``.
        management_service_url: ``authCertRegServiceAddress``.
        management_service_cert: the TLS certificate of that address, if known.
    """

    source_urls: tuple[str, ...]
    management_service_url: str
    management_service_cert: x509.Certificate | None = None

    def __post_init__(self) -> None:
        if not self.source_urls:
            raise ValueError("at least one source URL is needed")
        for url in self.source_urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"source URL must be http(s)://host[:port]: {url!r}")


@dataclass(frozen=True, slots=True)
class SignedDirectoryFile:
    """A signed directory ready to serve: its Content-Type and body."""

    content_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class GeneratedConfiguration:
    """One generation: the files and both signed directories.

    Attributes:
        version_id: the ``/V6/<version_id>/`` path segment.
        instance_identifier: the instance it describes.
        generated_at: ``now`` of the generation.
        expire_date: the directories' ``Expire-date`` (whole seconds).
        files: ``Content-location`` -> bytes, for every listed file.
        internal: the ``internalconf`` directory.
        external: the ``externalconf`` directory.
        change_marker: the registry change marker it was built from.
    """

    version_id: str
    instance_identifier: str
    generated_at: dt.datetime
    expire_date: dt.datetime
    files: Mapping[str, bytes]
    internal: SignedDirectoryFile
    external: SignedDirectoryFile
    change_marker: int


def version_id(now: dt.datetime) -> str:
    """The directory name of a generation, as X-Road writes it."""
    utc = now.astimezone(dt.UTC)
    return f"{utc:%Y%m%d%H%M%S}{utc.microsecond:06d}000"


def _sources(
    settings: PublicationSettings, internal: SigningKeySet, external: SigningKeySet
) -> tuple[SharedSource, ...]:
    hosts: list[str] = []
    for url in settings.source_urls:
        host = urlsplit(url).hostname or ""
        if host not in hosts:
            hosts.append(host)
    return tuple(
        SharedSource(
            address=host,
            internal_verification_certs=internal.verification_certs,
            external_verification_certs=external.verification_certs,
        )
        for host in hosts
    )


def shared_parameters(
    snapshot: RegistrySnapshot,
    settings: PublicationSettings,
    internal: SigningKeySet,
    external: SigningKeySet,
) -> SharedParameters:
    """The shared-parameters model of a registry snapshot."""
    return SharedParameters(
        instance_identifier=snapshot.parameters.instance_identifier,
        global_settings=GlobalSettings(
            snapshot.member_classes, snapshot.parameters.ocsp_freshness_seconds
        ),
        sources=_sources(settings, internal, external),
        approved_cas=snapshot.approved_cas,
        approved_tsas=snapshot.approved_tsas,
        members=snapshot.members,
        security_servers=snapshot.security_servers,
        global_groups=snapshot.global_groups,
    )


def private_parameters(
    snapshot: RegistrySnapshot, settings: PublicationSettings
) -> PrivateParameters:
    """The private-parameters model of a registry snapshot.

    Raises:
        Conflict: no management service provider is set (private parameters
            must name one: ``managementRequestServiceProviderId``).
    """
    provider = snapshot.parameters.management_service_provider
    if provider is None:
        raise Conflict(
            "The management service provider is not set; private parameters "
            "need managementRequestServiceProviderId"
        )
    return PrivateParameters(
        instance_identifier=snapshot.parameters.instance_identifier,
        management_service=ManagementService(
            auth_cert_reg_service_address=settings.management_service_url,
            provider_id=provider,
            auth_cert_reg_service_cert=settings.management_service_cert,
        ),
        time_stamping_interval_seconds=(
            snapshot.parameters.time_stamping_interval_seconds
        ),
    )


def build_configuration(
    snapshot: RegistrySnapshot,
    *,
    settings: PublicationSettings,
    internal: SigningKeySet,
    external: SigningKeySet,
    now: dt.datetime,
) -> GeneratedConfiguration:
    """Write and sign one generation of the configuration.

    Args:
        snapshot: the registry state.
        settings: source URLs and the management service address.
        internal: keys of ``internalconf``.
        external: keys of ``externalconf``.
        now: the generation time (aware).

    Returns:
        The files and the two signed directories.

    Raises:
        Conflict: no management service provider is set.
        ValueError: ``now`` is naive, or the registry is inconsistent.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    instance = snapshot.parameters.instance_identifier
    vid = version_id(now)
    private_xml = serialize_private_parameters(private_parameters(snapshot, settings))
    shared_xml = serialize_shared_parameters(
        shared_parameters(snapshot, settings, internal, external)
    )
    private_file = ConfFile(
        ContentIdentifier.PRIVATE_PARAMETERS,
        f"/V{CONF_VERSION}/{vid}/private-params.xml",
        private_xml,
    )
    shared_file = ConfFile(
        ContentIdentifier.SHARED_PARAMETERS,
        f"/V{CONF_VERSION}/{vid}/shared-params.xml",
        shared_xml,
    )
    expire = now + dt.timedelta(
        seconds=snapshot.parameters.conf_expire_interval_seconds
    )
    signed = {}
    for name, files, keys in (
        ("internal", (private_file, shared_file), internal),
        ("external", (shared_file,), external),
    ):
        content_type, body = build_signed_directory(
            files,
            instance=instance,
            signing_key=keys.signer.key,
            signing_cert=keys.signer.cert,
            expire=expire,
            now=now,
            version=CONF_VERSION,
        )
        signed[name] = SignedDirectoryFile(content_type, body)
    return GeneratedConfiguration(
        version_id=vid,
        instance_identifier=instance,
        generated_at=now,
        expire_date=expire.replace(microsecond=0),
        files={f.content_location: f.data for f in (private_file, shared_file)},
        internal=signed["internal"],
        external=signed["external"],
        change_marker=snapshot.change_marker,
    )
