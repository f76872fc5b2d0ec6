"""The global-configuration downloader (PR-GCONF §9.2-9.3): the only I/O part.

:func:`fetch_global_configuration` tries each source of the anchor in turn:

1. ``GET <downloadURL>?version=6`` and verify the signed directory with
   :func:`jplink.globalconf.verify_directory` against the anchor's
   verification certificates (plus, for key rotation, those the saved and
   already verified shared parameters publish) and ``now``;
2. download each file of this instance the directory lists
   (``SHARED-PARAMETERS``, ``PRIVATE-PARAMETERS``) and
   :func:`~jplink.globalconf.verify_file` it, then parse it;
3. save the set atomically (see :mod:`._confstore`), so a failed or
   unverifiable download never replaces a good copy.

A directory whose ``Expire-date`` is older than the saved copy's is refused
(replay protection): its signature is genuine and it may not have expired
yet, but it is an older configuration than one already verified, which an
attacker on the path could replay to undo a change (a revoked server's auth
certificate, a removed member, a rotated signing key). The saved copy stays.

The first source that passes every step wins; when all fail, the last error is
raised with the others attached as notes. Other content identifiers
(``MONITORING``, other instances' shared parameters in a federation) are not
downloaded.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
from cryptography import x509

from ..errors import GlobalConfError, JPLinkError, TransportError
from ..globalconf import (
    AnchorSource,
    ConfigurationAnchor,
    ContentIdentifier,
    VerifiedDirectory,
    parse_private_parameters,
    parse_shared_parameters,
    verify_directory,
    verify_file,
)
from ..identifiers import validate_part
from ._confstore import (
    LoadedConfiguration,
    load_saved_configuration,
    read_saved,
    save_configuration,
)
from .http import DEFAULT_TIMEOUT, map_transport_errors, read_body

__all__ = [
    "MAX_DIRECTORY_BYTES",
    "MAX_FILE_BYTES",
    "LoadedConfiguration",
    "fetch_global_configuration",
    "load_saved_configuration",
]

#: The configuration version requested (``?version=6``).
CONF_VERSION = 6
#: A signed directory is a few KiB.
MAX_DIRECTORY_BYTES = 1 << 20
#: Shared parameters of a large instance are a few MiB.
MAX_FILE_BYTES = 64 << 20

_WANTED = (ContentIdentifier.PRIVATE_PARAMETERS, ContentIdentifier.SHARED_PARAMETERS)


async def _download(
    session: aiohttp.ClientSession, url: str, *, limit: int, timeout: float
) -> tuple[str, bytes]:
    with map_transport_errors(url):
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False
        ) as resp:
            body = await read_body(resp, limit=limit, url=url)
            if resp.status != 200:
                raise TransportError(
                    f"{url} answered with HTTP {resp.status}",
                    url=url,
                    status=resp.status,
                )
            return resp.headers.get("Content-Type", ""), body


def _file_url(source: AnchorSource, location: str) -> str:
    # PR-GCONF: Content-location is "relative to the download base URL". Only
    # absolute paths on the same server are followed, never another host.
    if not location.startswith("/") or location.startswith("//"):
        raise GlobalConfError(
            f"Content-location {location[:80]!r} is not a path on the source"
        )
    return urljoin(source.download_url, location)


def _trusted_certs(
    source: AnchorSource, saved: LoadedConfiguration | None
) -> list[x509.Certificate]:
    certs = list(source.verification_certs)
    if saved is not None:
        # Key rotation: the central server publishes its next key in the
        # shared parameters (verified when saved) before switching to it.
        external = source.download_url.rstrip("/").endswith("/externalconf")
        certs.extend(saved.shared.verification_certs(external=external))
    return certs


def _check_not_older(
    url: str, directory: VerifiedDirectory, saved: LoadedConfiguration | None
) -> None:
    # The central server sets Expire-date = generation time + a fixed
    # interval, so it only grows: an older one is an older directory.
    if saved is not None and directory.expire_date < saved.expire_date:
        raise GlobalConfError(
            f"{url} served a directory expiring {directory.expire_date.isoformat()}, "
            f"older than the saved one ({saved.expire_date.isoformat()}): "
            "refused as a replay",
            code="OutdatedGlobalConf",
            detail={
                "expire_date": directory.expire_date.isoformat(),
                "saved_expire_date": saved.expire_date.isoformat(),
            },
        )


async def _from_source(
    session: aiohttp.ClientSession,
    instance: str,
    source: AnchorSource,
    saved: LoadedConfiguration | None,
    *,
    now: dt.datetime,
    timeout: float,
) -> tuple[VerifiedDirectory, dict[ContentIdentifier, bytes]]:
    sep = "&" if "?" in source.download_url else "?"
    url = f"{source.download_url}{sep}version={CONF_VERSION}"
    content_type, body = await _download(
        session, url, limit=MAX_DIRECTORY_BYTES, timeout=timeout
    )
    directory = verify_directory(
        body,
        content_type,
        verification_certs=_trusted_certs(source, saved),
        now=now,
    )
    if directory.version != CONF_VERSION:
        raise GlobalConfError(
            f"{url} served configuration version {directory.version}, "
            f"not {CONF_VERSION}"
        )
    _check_not_older(url, directory, saved)
    files: dict[ContentIdentifier, bytes] = {}
    for ident in _WANTED:
        entries = directory.entries_for(ident, instance)
        if len(entries) > 1:
            raise GlobalConfError(f"{url} lists {ident.value} twice for {instance}")
        if not entries:
            continue
        file_url = _file_url(source, entries[0].content_location)
        _ctype, data = await _download(
            session, file_url, limit=MAX_FILE_BYTES, timeout=timeout
        )
        files[ident] = verify_file(entries[0], data).data
    if ContentIdentifier.SHARED_PARAMETERS not in files:
        raise GlobalConfError(f"{url} lists no shared parameters for {instance}")
    return directory, files


def _parse(
    instance: str,
    directory: VerifiedDirectory,
    files: dict[ContentIdentifier, bytes],
    source_url: str,
) -> LoadedConfiguration:
    shared = parse_shared_parameters(files[ContentIdentifier.SHARED_PARAMETERS])
    private_data = files.get(ContentIdentifier.PRIVATE_PARAMETERS)
    private = parse_private_parameters(private_data) if private_data else None
    for what, found in (
        ("shared", shared.instance_identifier),
        ("private", private.instance_identifier if private else instance),
    ):
        if found != instance:
            raise GlobalConfError(
                f"The {what} parameters describe instance {found!r}, "
                f"the anchor {instance!r}"
            )
    return LoadedConfiguration(
        instance_identifier=instance,
        shared=shared,
        private=private,
        expire_date=directory.expire_date,
        version=directory.version,
        source_url=source_url,
    )


async def fetch_global_configuration(
    session: aiohttp.ClientSession,
    anchor: ConfigurationAnchor,
    directory: Path,
    *,
    now: dt.datetime,
    timeout: float = DEFAULT_TIMEOUT,
) -> LoadedConfiguration:
    """Download, verify and save the configuration the anchor points at.

    Args:
        session: the caller's aiohttp session.
        anchor: the configuration anchor (trusted: its hash was checked).
        directory: where configurations are saved (one folder per instance).
        now: the current time (aware), for the directory's ``Expire-date``.
        timeout: seconds allowed for each HTTP call.

    Returns:
        The verified, saved configuration.

    Raises:
        GlobalConfSignatureError: no trusted certificate, bad signature or a
            file whose hash does not match (on every source).
        GlobalConfExpired: the directory has expired (on every source).
        GlobalConfError: malformed directory or files, wrong instance, or a
            directory older than the saved copy (``OutdatedGlobalConf``:
            a replay; the saved copy is kept).
        XmlSecurityError: a file is not acceptable XML.
        TransportError: a source could not be reached (on every source).
        StorageError: the configuration could not be saved.
    """
    instance = validate_part(anchor.instance_identifier, "xRoadInstance")
    try:
        saved: LoadedConfiguration | None = read_saved(directory, instance)
    except JPLinkError:  # nothing saved yet, or damaged: trust the anchor only
        saved = None
    errors: list[JPLinkError] = []
    for source in anchor.sources:
        try:
            verified, files = await _from_source(
                session, instance, source, saved, now=now, timeout=timeout
            )
            loaded = _parse(instance, verified, files, source.download_url)
        except JPLinkError as exc:
            errors.append(exc)
            continue
        save_configuration(directory, loaded, files)
        return loaded
    last = errors[-1]
    for source, err in zip(anchor.sources[:-1], errors[:-1], strict=True):
        last.add_note(f"{source.download_url}: {err.code}: {err.message}")
    raise last
