"""Saving and loading downloaded global configuration, atomically.

Layout under the configuration directory, one folder per instance::

    <dir>/<INSTANCE>/current.json          which generation is in force
    <dir>/<INSTANCE>/gen-XXXXXXXX/shared-params.xml
    <dir>/<INSTANCE>/gen-XXXXXXXX/private-params.xml   (internal configuration)

A new download is written into a fresh ``gen-*`` folder (each file written,
fsynced, the folder fsynced), and only then ``current.json`` is replaced by
``os.replace`` of a fsynced temporary file: a crash or a failed download at any
point leaves the previous ``current.json`` and the folder it names intact.
``current.json`` records each file's SHA-512, so a copy damaged on disk is
refused on load rather than trusted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import GlobalConfError, GlobalConfExpired, StorageError
from ..globalconf import (
    ContentIdentifier,
    PrivateParameters,
    SharedParameters,
    parse_private_parameters,
    parse_shared_parameters,
)
from ..identifiers import validate_part

__all__ = ["LoadedConfiguration", "load_saved_configuration", "save_configuration"]

_CURRENT = "current.json"
_NAMES = {
    ContentIdentifier.SHARED_PARAMETERS: "shared-params.xml",
    ContentIdentifier.PRIVATE_PARAMETERS: "private-params.xml",
}


@dataclass(frozen=True, slots=True)
class LoadedConfiguration:
    """A verified global configuration.

    Attributes:
        instance_identifier: the instance of the anchor.
        shared: the shared parameters (members, servers, CAs, TSAs ...).
        private: the private parameters; ``None`` for external configuration.
        expire_date: do not use the configuration after this.
        version: the configuration version (6).
        source_url: the download URL it came from.
    """

    instance_identifier: str
    shared: SharedParameters
    private: PrivateParameters | None
    expire_date: dt.datetime
    version: int
    source_url: str


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes) -> None:
    with path.open("xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def save_configuration(
    directory: Path,
    loaded: LoadedConfiguration,
    files: Mapping[ContentIdentifier, bytes],
) -> None:
    """Make a verified configuration the saved one, atomically.

    Args:
        directory: the configuration directory.
        loaded: the verified configuration (for its metadata).
        files: the verified file bytes by content identifier.

    Raises:
        StorageError: the files could not be written (the previous copy stays).
    """
    home = directory / validate_part(loaded.instance_identifier, "xRoadInstance")
    try:
        home.mkdir(parents=True, exist_ok=True)
        gen = Path(tempfile.mkdtemp(prefix="gen-", dir=home))
        try:
            meta: dict[str, Any] = {
                "generation": gen.name,
                "instanceIdentifier": loaded.instance_identifier,
                "expirationDate": loaded.expire_date.isoformat(),
                "configurationVersion": loaded.version,
                "sourceUrl": loaded.source_url,
                "files": {},
            }
            for ident, data in files.items():
                _write(gen / _NAMES[ident], data)
                meta["files"][ident.value] = {
                    "file": _NAMES[ident],
                    "sha512": hashlib.sha512(data).hexdigest(),
                }
            _fsync_dir(gen)
            fd, tmp = tempfile.mkstemp(prefix=".current-", dir=home)
            with os.fdopen(fd, "wb") as fh:
                fh.write(json.dumps(meta, indent=2).encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, home / _CURRENT)
            _fsync_dir(home)
        except BaseException:
            shutil.rmtree(gen, ignore_errors=True)
            raise
    except OSError as exc:
        raise StorageError(
            f"Cannot save the global configuration in {home}: {exc.strerror}"
        ) from exc
    for old in home.glob("gen-*"):
        if old.name != gen.name:
            shutil.rmtree(old, ignore_errors=True)
    for stale in home.glob(".current-*"):
        with contextlib.suppress(OSError):
            stale.unlink()


def _pick_instance(directory: Path, instance: str | None) -> Path:
    if instance is not None:
        return directory / validate_part(instance, "xRoadInstance")
    found = sorted(p.parent for p in directory.glob(f"*/{_CURRENT}"))
    if len(found) != 1:
        raise GlobalConfError(
            f"{directory} holds {len(found)} saved configurations; name the instance"
        )
    return found[0]


def read_saved(directory: Path, instance: str | None) -> LoadedConfiguration:
    """Load the saved configuration without looking at its expiry.

    Raises:
        GlobalConfError: nothing saved, or the saved copy is damaged.
    """
    home = _pick_instance(directory, instance)
    try:
        meta = json.loads((home / _CURRENT).read_bytes())
        gen = home / Path(meta["generation"]).name
        data: dict[str, bytes] = {}
        for ident, info in meta["files"].items():
            blob = (gen / Path(info["file"]).name).read_bytes()
            if hashlib.sha512(blob).hexdigest() != info["sha512"]:
                raise GlobalConfError(f"Saved {info['file']} in {gen} is damaged")
            data[ident] = blob
        shared = parse_shared_parameters(data[ContentIdentifier.SHARED_PARAMETERS])
        private_blob = data.get(ContentIdentifier.PRIVATE_PARAMETERS)
        expire = dt.datetime.fromisoformat(meta["expirationDate"])
        return LoadedConfiguration(
            instance_identifier=str(meta["instanceIdentifier"]),
            shared=shared,
            private=parse_private_parameters(private_blob) if private_blob else None,
            expire_date=expire,
            version=int(meta["configurationVersion"]),
            source_url=str(meta["sourceUrl"]),
        )
    except FileNotFoundError as exc:
        raise GlobalConfError(f"No saved global configuration in {home}") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GlobalConfError(
            f"The saved global configuration in {home} is unreadable"
        ) from exc


def load_saved_configuration(
    directory: Path, *, now: dt.datetime, instance: str | None = None
) -> LoadedConfiguration:
    """The saved configuration, if it has not expired.

    Args:
        directory: the configuration directory.
        now: the current time (aware).
        instance: which instance; may be omitted when only one is saved.

    Returns:
        The configuration last saved by a successful download.

    Raises:
        GlobalConfExpired: its ``Expire-date`` has passed (PR-GCONF: the
            security server then refuses requests, ``OutdatedGlobalConf``).
        GlobalConfError: nothing saved, or the saved copy is damaged.
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    loaded = read_saved(directory, instance)
    if loaded.expire_date < now:
        raise GlobalConfExpired(
            f"The saved global configuration expired at "
            f"{loaded.expire_date.isoformat()}",
            detail={"expire_date": loaded.expire_date.isoformat()},
        )
    return loaded
