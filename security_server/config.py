"""Configuration of a security-server instance (``<home>/ss.toml``).

Loaded strictly (unknown keys are errors) by :func:`load_ss_config`. Relative
paths are resolved against the instance home, so a home can be moved as a
whole. Every table is optional; an empty file gives the defaults. Example::

    database_url = "postgresql://ss@db/ss"   # default: SQLite ss.db in the home

    [client_proxy]
    http_port = 8080
    https_port = 8443

    [server_proxy]
    port = 5500

    [message_log]
    mode = "full"            # full | metadata | none
    keep_records_for_days = 30
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

from jplink.config import from_mapping, load_toml
from jplink.errors import ConfigurationError

__all__ = [
    "CONFIG_FILE",
    "AdminSettings",
    "ClientProxySettings",
    "ExchangeSettings",
    "GlobalConfSettings",
    "MessageLogMode",
    "MessageLogSettings",
    "OcspFetchSettings",
    "OcspResponderSettings",
    "PeerOcspPort",
    "SecurityServerConfig",
    "ServerProxySettings",
    "TimeoutSettings",
    "load_ss_config",
]

CONFIG_FILE = "ss.toml"


class MessageLogMode(enum.Enum):
    """What the message log keeps of each message; the value is the TOML word."""

    #: The whole SOAP message (or REST header part and body).
    FULL = "full"
    #: The record without the body (X-Road ``message-body-logging=false``).
    METADATA = "metadata"
    #: Nothing is logged.
    NONE = "none"


@dataclass(frozen=True, slots=True)
class ClientProxySettings:
    """Where the information systems of this server's clients connect."""

    #: Listen address. Information systems should reach it over a trusted
    #: network only: it accepts unsigned requests on the clients' behalf.
    host: str = "127.0.0.1"
    http_port: int = 8080
    https_port: int = 8443


@dataclass(frozen=True, slots=True)
class ServerProxySettings:
    """Where peer security servers connect (mutual TLS)."""

    host: str = "0.0.0.0"
    port: int = 5500


@dataclass(frozen=True, slots=True)
class OcspResponderSettings:
    """OCSP responses for this server's own certificates, served to peers."""

    host: str = "0.0.0.0"
    port: int = 5577


@dataclass(frozen=True, slots=True)
class PeerOcspPort:
    """Where one peer's OCSP-for-peers listener is, when it is not port 5577.

    For test and demo networks only, where several security servers share one
    host: X-Road's global configuration carries a server's address without
    ports, so every peer listens on 5500 and 5577. Our peers may give their
    server-proxy port in the address (``127.0.0.1:25500``); this table maps
    such an address to the port of that peer's OCSP-for-peers listener.
    """

    #: The server's address exactly as the global configuration lists it.
    address: str
    #: That server's OCSP-for-peers port.
    port: int

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError("port must be 1-65535")


@dataclass(frozen=True, slots=True)
class OcspFetchSettings:
    """Fetching OCSP responses for this server's own certificates from the CA."""

    #: X-Road's ``ocspFetchInterval`` (default 1200 s); capped at half of the
    #: global configuration's ``ocspFreshnessSeconds``.
    fetch_interval_seconds: int = 1200
    #: Wait before the next attempt after a failed fetch.
    retry_seconds: int = 60
    #: Send a nonce (X-Road sends none, so CAs may pre-produce responses).
    nonce: bool = False

    def __post_init__(self) -> None:
        if self.fetch_interval_seconds < 1 or self.retry_seconds < 1:
            raise ValueError("OCSP fetch intervals must be positive")


@dataclass(frozen=True, slots=True)
class ExchangeSettings:
    """The message exchange (``jplink ss serve``)."""

    #: Sign messages that wait for the same key together (hash chains).
    batch_signing: bool = True
    #: How long the proxies reuse a snapshot of clients, services and access
    #: rights (X-Road ``server-conf-cache-period``); 0 reads every time.
    serverconf_cache_seconds: float = 5.0
    #: How long a verified peer certificate is trusted without re-checking;
    #: a revoked peer is refused at the latest this much later.
    peer_cache_seconds: float = 60.0
    #: File whose first line is the token PIN (mode 0600); ``--pin-file``
    #: overrides it. Without a PIN the proxies cannot sign.
    pin_file: Path | None = None

    def __post_init__(self) -> None:
        if self.serverconf_cache_seconds < 0 or self.peer_cache_seconds < 0:
            raise ValueError("cache periods must not be negative")


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """The admin REST API."""

    #: Keep it on loopback or a management network: it manages keys and rights.
    host: str = "127.0.0.1"
    port: int = 4000


@dataclass(frozen=True, slots=True)
class TimeoutSettings:
    """Network timeouts, in seconds."""

    #: Establishing a connection to a peer security server.
    connect_seconds: float = 30.0
    #: Waiting for a peer's (or a service's) response when a service has no
    #: timeout of its own.
    read_seconds: float = 60.0
    #: Downloading a WSDL or a global-configuration file.
    download_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class GlobalConfSettings:
    """The downloaded global configuration."""

    #: Where verified configuration files are saved.
    directory: Path = Path("globalconf")
    #: How often the configuration is downloaded again (X-Road: 60 s).
    refresh_interval_seconds: int = 60


@dataclass(frozen=True, slots=True)
class MessageLogSettings:
    """The message log (issue 6 builds time-stamping and archives on it)."""

    mode: str = MessageLogMode.FULL.value
    #: Archived records older than this are deleted; unarchived ones never are.
    keep_records_for_days: int = 30
    #: Once the oldest record without a time-stamp is older than this, the
    #: proxies refuse every exchange; 0 disables the check.
    acceptable_timestamp_failure_period_seconds: int = 14400
    #: Overrides the global configuration's ``timeStampingIntervalSeconds``.
    timestamping_interval_seconds: int | None = None
    #: Where archive ZIP files are written.
    archive_dir: Path = Path("archive")

    def __post_init__(self) -> None:
        MessageLogMode(self.mode)  # ValueError -> ConfigurationError in the loader
        if self.keep_records_for_days < 1:
            raise ValueError("keep_records_for_days must be at least 1")
        if self.acceptable_timestamp_failure_period_seconds < 0:
            raise ValueError("acceptable_timestamp_failure_period_seconds >= 0")
        interval = self.timestamping_interval_seconds
        if interval is not None and interval < 1:
            raise ValueError("timestamping_interval_seconds must be positive")

    @property
    def log_mode(self) -> MessageLogMode:
        """The mode as an enum."""
        return MessageLogMode(self.mode)


@dataclass(frozen=True, slots=True)
class SecurityServerConfig:
    """Everything a security-server instance needs; ``home`` is set by the loader."""

    #: SQLAlchemy URL; default a SQLite file ``ss.db`` in the home.
    database_url: str = ""
    #: The software token's encrypted key files (mode 0600, directory 0700).
    token_dir: Path = Path("token")
    client_proxy: ClientProxySettings = field(default_factory=ClientProxySettings)
    server_proxy: ServerProxySettings = field(default_factory=ServerProxySettings)
    ocsp_responder: OcspResponderSettings = field(default_factory=OcspResponderSettings)
    ocsp: OcspFetchSettings = field(default_factory=OcspFetchSettings)
    exchange: ExchangeSettings = field(default_factory=ExchangeSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    timeouts: TimeoutSettings = field(default_factory=TimeoutSettings)
    globalconf: GlobalConfSettings = field(default_factory=GlobalConfSettings)
    message_log: MessageLogSettings = field(default_factory=MessageLogSettings)
    #: Test networks only: peers whose OCSP-for-peers port is not 5577
    #: (``[[peer_ocsp_ports]]`` tables with ``address`` and ``port``).
    peer_ocsp_ports: tuple[PeerOcspPort, ...] = ()
    home: Path = Path(".")

    @property
    def db_url(self) -> str:
        """The database URL in force."""
        return self.database_url or f"sqlite:///{self.home / 'ss.db'}"

    @property
    def anchor_path(self) -> Path:
        """Where ``jplink ss init`` keeps the configuration anchor."""
        return self.home / "configuration-anchor.xml"


def load_ss_config(home: Path) -> SecurityServerConfig:
    """Load ``<home>/ss.toml`` strictly.

    Args:
        home: the instance home directory.

    Returns:
        The configuration, with relative paths anchored at ``home``.

    Raises:
        ConfigurationError: missing file, unknown keys, wrong types or values,
            or a ``home`` key in the file.
    """
    path = home / CONFIG_FILE
    data = load_toml(path)
    if "home" in data:
        raise ConfigurationError(f"{path}: 'home' cannot be set in the file")
    return from_mapping(
        SecurityServerConfig,
        {**data, "home": str(home)},
        where=str(path),
        base_dir=home,
    )
