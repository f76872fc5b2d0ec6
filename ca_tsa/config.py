"""Configuration of a CA/OCSP/TSA instance (``<home>/ca.toml``).

Loaded strictly (unknown keys are errors) by :func:`load_ca_config`. Every
path is relative to the instance home unless absolute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from jplink.config import from_mapping, load_toml

__all__ = [
    "ApiSettings",
    "CaTsaConfig",
    "IssuanceSettings",
    "OcspSettings",
    "TsaSettings",
    "load_ca_config",
]

CONFIG_FILE = "ca.toml"


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """The CA enrolment API and OCSP responder share one HTTP listener."""

    host: str = "127.0.0.1"
    port: int = 8888
    #: File holding the enrolment API key (mode 0600). Callers send it as
    #: ``Authorization: Bearer <key>``; without it enrolment is refused.
    api_key_file: Path = Path("secrets/api-key")
    #: Largest CSR/enrolment request body accepted, in bytes.
    max_request_bytes: int = 65536


@dataclass(frozen=True, slots=True)
class OcspSettings:
    #: Public URL written into every issued certificate's AIA extension.
    url: str = "http://127.0.0.1:8888/ocsp"
    #: nextUpdate = thisUpdate + this many seconds.
    next_update_seconds: int = 3600
    #: Larger OCSP request bodies are refused (RFC 6960 requests are small).
    max_request_bytes: int = 16384


@dataclass(frozen=True, slots=True)
class TsaSettings:
    host: str = "127.0.0.1"
    port: int = 8899
    #: The TSA policy OID put into every TSTInfo.
    policy_oid: str = "1.3.6.1.4.1.57264.1.1"
    #: Declared accuracy of genTime, in milliseconds.
    accuracy_ms: int = 1000
    max_request_bytes: int = 16384


@dataclass(frozen=True, slots=True)
class IssuanceSettings:
    #: Validity of issued end-entity certificates, in days.
    validity_days: int = 730
    #: Smallest RSA modulus accepted in a CSR.
    min_rsa_bits: int = 2048
    #: True when an intermediate CA (``certs/intermediate.pem``) issues the
    #: end-entity certificates; written by ``jplink ca init --intermediate``.
    #: Stated explicitly so a missing file can never silently make the root
    #: the issuer.
    intermediate: bool = False


@dataclass(frozen=True, slots=True)
class CaTsaConfig:
    """Everything a CA/OCSP/TSA instance needs; ``home`` is filled by the loader."""

    name: str = "JP-LINK Test CA"
    #: SQLAlchemy URL; default a SQLite file in the home directory.
    database_url: str = ""
    api: ApiSettings = field(default_factory=ApiSettings)
    ocsp: OcspSettings = field(default_factory=OcspSettings)
    tsa: TsaSettings = field(default_factory=TsaSettings)
    issuance: IssuanceSettings = field(default_factory=IssuanceSettings)
    home: Path = Path(".")

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'ca.db'}"


def load_ca_config(home: Path) -> CaTsaConfig:
    """Load ``<home>/ca.toml`` strictly.

    Raises:
        ConfigurationError: unknown keys, wrong types, missing file.
    """
    data = load_toml(home / CONFIG_FILE)
    if "home" in data:
        from jplink.errors import ConfigurationError

        raise ConfigurationError(
            f"{home / CONFIG_FILE}: 'home' cannot be set in the file"
        )
    data = {**data, "home": str(home)}
    return from_mapping(CaTsaConfig, data, where=str(home / CONFIG_FILE), base_dir=home)
