"""The bundled sample: a small municipality database and two services.

``jplink adapter sample`` (and the local demo network) use it: it writes
``<home>/sample.db`` (SQLite) from ``samples/municipalities.sql``, registers
it as data source ``sample`` and registers the service definitions in
``samples/*.toml`` through the ordinary :class:`~adapter_server.Registry`, so
the sample goes through the same validation and preview as any service.
"""

from __future__ import annotations

import json
import sqlite3
import tomllib
from pathlib import Path

from jplink.errors import InvalidRequest, StorageError

from .definitions import DataSourceDefinition, ServiceDefinition
from .portable import service_from_dict
from .registry import Registry

__all__ = ["SAMPLES", "SAMPLE_DATASOURCE", "install_sample", "load_service_file"]

#: The directory of the sample SQL and service files.
SAMPLES = Path(__file__).resolve().parent / "samples"
SAMPLE_DATASOURCE = "sample"


def load_service_file(path: Path) -> ServiceDefinition:
    """One service definition from a ``.toml`` or ``.json`` file.

    Raises:
        InvalidRequest: unreadable, unparsable or invalid definition.
    """
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"Cannot read {path} as UTF-8 text") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "TOML"
        raise InvalidRequest(f"{path.name} is not valid {kind}: {exc}") from exc
    if isinstance(data, dict) and "format" in data:
        raise InvalidRequest(f"{path.name} is an export file; use import instead")
    return service_from_dict(data, path.name)


def _create_database(path: Path) -> None:
    script = (SAMPLES / "municipalities.sql").read_text("utf-8")
    path.unlink(missing_ok=True)
    try:
        with sqlite3.connect(path) as conn:
            conn.executescript(script)
        conn.close()
    except sqlite3.Error as exc:
        raise StorageError(f"Cannot create the sample database {path}") from exc


async def install_sample(registry: Registry, home: Path) -> list[ServiceDefinition]:
    """(Re)create the sample database and register its services.

    Args:
        registry: the adapter's registry.
        home: the instance home; the database goes to ``<home>/sample.db``.

    Returns:
        The registered services.

    Raises:
        StorageError: the sample database cannot be written.
        InvalidRequest: a sample definition fails validation.
    """
    db_path = home / "sample.db"
    _create_database(db_path)
    await registry.save_datasource(
        DataSourceDefinition(SAMPLE_DATASOURCE, f"sqlite:///{db_path}")
    )
    existing = {s.code for s in await registry.list_services()}
    registered = []
    for path in sorted(SAMPLES.glob("*.toml")):
        service = load_service_file(path)
        registered.append(
            await registry.register(service, replace=service.code in existing)
        )
    return registered
