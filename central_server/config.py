"""Configuration of a central-server instance (``<home>/central.toml``).

Loaded strictly (unknown keys are errors) by :func:`load_central_config`.
Relative paths are resolved against the instance home. Example::

    database_url = "postgresql://central@db/central"   # default: SQLite in home

    [admin]
    port = 4000

    [registration]
    port = 4001

    [ca]
    url = "http://127.0.0.1:8888"
    api_key_file = "secrets/ca-api-key"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jplink.config import from_mapping, load_toml
from jplink.errors import ConfigurationError

__all__ = [
    "CONFIG_FILE",
    "AdminSettings",
    "CaSettings",
    "CentralConfig",
    "PublisherSettings",
    "RegistrationSettings",
    "load_central_config",
]

CONFIG_FILE = "central.toml"


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """The admin REST API (API keys with roles)."""

    #: Listen address. Keep it on loopback or a management network: the admin
    #: API changes who belongs to the network.
    host: str = "127.0.0.1"
    port: int = 4000
    #: Larger request bodies are refused with 413 before being parsed.
    max_request_bytes: int = 262144


@dataclass(frozen=True, slots=True)
class RegistrationSettings:
    """The public registration endpoint (member-code and CSR requests)."""

    host: str = "127.0.0.1"
    port: int = 4001
    #: A CSR and a few fields; anything larger is refused with 413.
    max_request_bytes: int = 65536
    #: Seconds allowed for asking a CA's OCSP responder about the auth
    #: certificate of an ``authCertReg`` that carries no status for it (the
    #: request is refused when no fresh GOOD status arrives in time).
    ocsp_timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class CaSettings:
    """Where approved CSRs are sent for issuance (the CA's enrolment API)."""

    #: The CA's API root; empty means certificate requests cannot be approved.
    url: str = ""
    #: File holding the CA's enrolment API key (mode 0600); never the key itself.
    api_key_file: Path = Path("secrets/ca-api-key")
    #: Seconds allowed for one enrolment call.
    timeout_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class PublisherSettings:
    """The global-configuration publisher (PR-GCONF download, plain HTTP).

    The configuration is signed, so HTTP is enough; security servers trust it
    through the anchor's verification certificates, never through the channel.
    """

    #: Listen address; security servers must reach it.
    host: str = "127.0.0.1"
    #: PR-GCONF serves configuration on port 80.
    port: int = 80
    #: Base URLs security servers download from (``<url>/internalconf``); each
    #: becomes an anchor ``source``. Default: ``http://<host>:<port>``.
    source_urls: tuple[str, ...] = ()
    #: ``authCertRegServiceAddress`` in private parameters; default
    #: ``https://<first source host>:<registration port>/managementservice/``.
    management_service_url: str = ""
    #: PEM file with the TLS certificate that address presents (optional).
    management_service_cert_file: Path | None = None
    #: Regenerate at least this often; PR-GCONF: "Generated every 60 s".
    refresh_seconds: float = 60.0
    #: How often the registry is checked for changes (audit log).
    poll_seconds: float = 2.0
    #: Generations whose files stay downloadable (a client that fetched an
    #: older directory can still fetch the files it lists).
    keep_versions: int = 5


@dataclass(frozen=True, slots=True)
class CentralConfig:
    """Everything a central-server instance needs; ``home`` is set by the loader."""

    #: SQLAlchemy URL; default a SQLite file ``central.db`` in the home.
    database_url: str = ""
    admin: AdminSettings = field(default_factory=AdminSettings)
    registration: RegistrationSettings = field(default_factory=RegistrationSettings)
    ca: CaSettings = field(default_factory=CaSettings)
    publisher: PublisherSettings = field(default_factory=PublisherSettings)
    home: Path = Path(".")

    @property
    def db_url(self) -> str:
        """The database URL in force."""
        return self.database_url or f"sqlite:///{self.home / 'central.db'}"


def load_central_config(home: Path) -> CentralConfig:
    """Load ``<home>/central.toml`` strictly.

    Raises:
        ConfigurationError: missing file, unknown keys, wrong types, or a
            ``home`` key in the file.
    """
    path = home / CONFIG_FILE
    data = load_toml(path)
    if "home" in data:
        raise ConfigurationError(f"{path}: 'home' cannot be set in the file")
    return from_mapping(
        CentralConfig, {**data, "home": str(home)}, where=str(path), base_dir=home
    )
