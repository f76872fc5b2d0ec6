"""Configuration of an adapter server instance (``<home>/adapter.toml``).

Loaded strictly (unknown keys are errors) by :func:`load_adapter_config`.
Relative paths are relative to the instance home.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jplink.config import from_mapping, load_toml
from jplink.errors import ConfigurationError

__all__ = ["CONFIG_FILE", "AdapterConfig", "load_adapter_config"]

CONFIG_FILE = "adapter.toml"


@dataclass(frozen=True, slots=True)
class AdapterConfig:
    """Everything an adapter server needs; ``home`` is filled in by the loader."""

    #: SQLAlchemy URL of the adapter's own store (services, data sources);
    #: default a SQLite file in the home directory.
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8090
    #: The address written into ``soap:address`` and the OpenAPI ``servers``:
    #: where the provider's security server reaches this adapter.
    public_url: str = "http://127.0.0.1:8090"
    #: Target namespace prefix of generated WSDLs; the subsystem code is appended.
    namespace_base: str = "http://jplink.example/adapter"
    #: Fernet key encrypting data-source passwords (mode 0600). Whoever reads
    #: this file and the database can read the passwords.
    secret_key_file: Path = Path("secrets/datasource.key")
    #: File holding the SHA-256 hashes of the admin API keys (mode 0600; see
    #: :mod:`adapter_server.apikeys`); admin calls send a key as
    #: ``Authorization: Bearer <key>``. Without the file every admin call is
    #: refused.
    admin_api_key_file: Path = Path("secrets/admin-api-keys")
    #: Larger SOAP/REST request bodies are refused before parsing.
    max_request_bytes: int = 1024 * 1024
    #: How often a running server reloads the service catalogue, so changes
    #: made with the CLI take effect without a restart.
    catalog_refresh_seconds: float = 5.0
    home: Path = Path(".")

    def __post_init__(self) -> None:
        # Defaults are relative too: anchor every relative path at the home
        # (the loader only resolves paths that appear in the file).
        for name in ("secret_key_file", "admin_api_key_file"):
            path: Path = getattr(self, name)
            if not path.is_absolute():
                object.__setattr__(self, name, self.home / path)

    @property
    def db_url(self) -> str:
        """The store's URL (the default SQLite file if none is configured)."""
        return self.database_url or f"sqlite:///{self.home / 'adapter.db'}"

    def namespace(self, subsystem: str) -> str:
        """The WSDL target namespace of a provider subsystem."""
        return f"{self.namespace_base.rstrip('/')}/{subsystem}"


def load_adapter_config(home: Path) -> AdapterConfig:
    """Load ``<home>/adapter.toml`` strictly; a missing file means all defaults.

    Raises:
        ConfigurationError: unknown keys, wrong types, invalid TOML.
    """
    path = home / CONFIG_FILE
    data = load_toml(path) if path.exists() else {}
    if "home" in data:
        raise ConfigurationError(f"{path}: 'home' cannot be set in the file")
    data = {**data, "home": str(home)}
    return from_mapping(AdapterConfig, data, where=str(path), base_dir=home)
