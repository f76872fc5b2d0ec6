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

    [exchange]
    batch_signing = true
    globalconf_check_seconds = 1.0   # look for a newly saved global conf this often
    workers = 1                      # proxy processes (one core each), SO_REUSEPORT

    [message_log]
    mode = "full"            # full | metadata | none
    keep_records_for_days = 30
    timestamp_immediately = false     # stamp each record before acknowledging
    timestamping_batch_size = 10000   # records per time-stamp (one TSA request)
    encryption_keystore = "logkeys.json"   # AES-GCM keys; absent: no encryption
    retention_interval_seconds = 3600

    [[message_log.subsystems]]        # per-subsystem override of ``mode``
    client = "SUBSYSTEM:JP/COM/1111/client"
    mode = "metadata"

    [archive]                # message-log archives, written to message_log.archive_dir
    interval_seconds = 21600
    group_by_member = false  # true: one hash-linked chain per member
    encrypt = false          # gpg-encrypt each archive file (.zip.gpg)
    gpg_home = "gpg"         # keyring with the recipients' public keys
    default_recipients = []  # key ids for members without their own
    transfer_command = []    # argv, run with the new file's path appended

    [[archive.member_keys]]  # needs group_by_member = true
    member = "MEMBER:JP/COM/1111"
    recipients = ["0123456789ABCDEF"]

    [admin]                  # the admin REST API (docs/security-server.md)
    host = "127.0.0.1"
    port = 4000
    exchange_check_seconds = 5   # how often serve re-checks the proxies can start
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
    "ArchiveMemberKeys",
    "ArchiveSettings",
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
    "SubsystemLogMode",
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
    #: How often the proxies look whether a new global configuration was
    #: saved (one ``stat`` per period instead of several per message); a new
    #: copy is taken up at most this much later. The expiry of the copy in
    #: use is still checked on every message. 0 looks every time.
    globalconf_check_seconds: float = 1.0
    #: File whose first line is the token PIN (mode 0600); ``--pin-file``
    #: overrides it. Without a PIN the proxies cannot sign.
    pin_file: Path | None = None
    #: Processes that serve the proxies (client proxy, server proxy); each
    #: is one Python interpreter, so one core. 1 keeps everything in the
    #: ``serve`` process; N starts N - 1 worker processes beside it, all
    #: accepting on the same ports (SO_REUSEPORT). Background work
    #: (time-stamping, archiving, OCSP refresh, downloads, admin API) stays
    #: in the ``serve`` process.
    workers: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.workers <= 64:
            raise ValueError("workers must be between 1 and 64")
        periods = (
            self.serverconf_cache_seconds,
            self.peer_cache_seconds,
            self.globalconf_check_seconds,
        )
        if min(periods) < 0:
            raise ValueError("cache periods must not be negative")


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """The admin REST API."""

    #: Keep it on loopback or a management network: it manages keys and rights.
    host: str = "127.0.0.1"
    port: int = 4000
    #: How often ``jplink ss serve`` checks whether the exchange listeners
    #: can start (token logged in, registered auth certificate, fresh OCSP);
    #: admin API changes trigger a check at once.
    exchange_check_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.exchange_check_seconds <= 3600:
            raise ValueError("exchange_check_seconds must be in (0, 3600]")


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
class SubsystemLogMode:
    """A message-log mode for one client of this server (overrides ``mode``).

    The client is the local one: the consumer on the client proxy, the
    service provider on the server proxy (X-Road's per-subsystem
    ``message-body-logging`` lists work the same way).
    """

    #: The client's text form, e.g. ``SUBSYSTEM:JP/COM/1111/client``.
    client: str
    #: ``full``, ``metadata`` (no message bytes) or ``none`` (no record).
    mode: str

    def __post_init__(self) -> None:
        MessageLogMode(self.mode)  # ValueError -> ConfigurationError


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
    #: Time-stamp every record before the exchange is acknowledged (X-Road
    #: ``timestamp-immediately``); an exchange fails when its stamp fails.
    timestamp_immediately: bool = False
    #: Most records covered by one time-stamp (one TSA request per batch).
    timestamping_batch_size: int = 10000
    #: Per-client overrides of ``mode`` (``[[message_log.subsystems]]``).
    subsystems: tuple[SubsystemLogMode, ...] = ()
    #: AES-GCM keystore (mode 0600) for message bodies at rest; None keeps
    #: bodies in clear. Anyone with the database and this file reads bodies.
    encryption_keystore: Path | None = None
    #: How often archived records past ``keep_records_for_days`` are deleted.
    retention_interval_seconds: int = 3600

    def __post_init__(self) -> None:
        MessageLogMode(self.mode)  # ValueError -> ConfigurationError in the loader
        if not 1 <= self.timestamping_batch_size <= 100_000:
            raise ValueError("timestamping_batch_size must be 1-100000")
        if self.retention_interval_seconds < 1:
            raise ValueError("retention_interval_seconds must be positive")
        clients = [s.client for s in self.subsystems]
        if len(set(clients)) != len(clients):
            raise ValueError("message_log.subsystems lists a client twice")
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
class ArchiveMemberKeys:
    """GPG recipients for one member's archives (``[[archive.member_keys]]``)."""

    #: The member, e.g. ``MEMBER:JP/COM/1111``; its subsystems' records too.
    member: str
    #: GPG key ids or fingerprints the member's archives are encrypted to.
    recipients: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.recipients:
            raise ValueError("recipients must not be empty")


@dataclass(frozen=True, slots=True)
class ArchiveSettings:
    """Message-log archives (``[archive]``; files go to ``message_log.archive_dir``)."""

    #: How often ``jplink ss serve`` archives (X-Road: every 6 hours).
    interval_seconds: int = 21600
    #: Most records in one archive file.
    max_records_per_archive: int = 10000
    #: One archive chain per member (``mlog-<member>-...``) instead of one for
    #: all; needed for per-member encryption.
    group_by_member: bool = False
    #: Encrypt archives with ``gpg`` (X-Road ``archive-encryption-enabled``).
    #: Members without their own keys use ``default_recipients``.
    encrypt: bool = False
    #: GPG home (keyring) holding the recipients' public keys.
    gpg_home: Path | None = None
    #: Recipients of archives of members without their own keys.
    default_recipients: tuple[str, ...] = ()
    member_keys: tuple[ArchiveMemberKeys, ...] = ()
    #: Run after each new archive file with its path as the last argument
    #: (argv, no shell). A failure is logged and retried on the next pass;
    #: the file is never removed.
    transfer_command: tuple[str, ...] = ()
    #: How long the transfer command may run.
    transfer_timeout_seconds: float = 600.0

    def __post_init__(self) -> None:
        if self.interval_seconds < 1 or self.max_records_per_archive < 1:
            raise ValueError("archive interval and size must be positive")
        if self.encrypt and not (self.default_recipients or self.member_keys):
            raise ValueError("encrypt needs default_recipients or member_keys")
        if self.member_keys and not self.group_by_member:
            raise ValueError("member_keys need group_by_member = true")


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
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    #: Test networks only: peers whose OCSP-for-peers port is not 5577
    #: (``[[peer_ocsp_ports]]`` tables with ``address`` and ``port``).
    peer_ocsp_ports: tuple[PeerOcspPort, ...] = ()
    home: Path = Path(".")

    def __post_init__(self) -> None:
        if self.exchange.workers > 1 and self.message_log.timestamp_immediately:
            # The worker processes have no time-stamper of their own.
            raise ValueError(
                "[exchange] workers > 1 cannot be combined with "
                "[message_log] timestamp_immediately"
            )

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
