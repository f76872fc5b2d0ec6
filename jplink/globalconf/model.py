"""The typed model of shared and private parameters (PR-GCONF §9.4-9.5).

Everything is a frozen value object; tuples keep the document order so that
``parse(generate(model)) == model``. IDREFs of the XML (``owner``, ``client``)
are resolved into identifiers here: a :class:`SecurityServer` names its owner
and clients by :class:`~jplink.identifiers.ClientId`, never by ``id3``.

:class:`SharedParameters` also answers the questions a security server asks:
which servers host a client, whose auth certificate this is, which CAs, OCSP
responders and TSAs are trusted, what a member is called, which global groups a
client is in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import CertificateValidationError, NotFound
from ..identifiers import ClientId, GlobalGroupId, SecurityServerId, ServiceId
from .anchor import ConfigurationAnchor
from .authorities import ApprovedCA, ApprovedTSA, OcspResponder

__all__ = [
    "CentralService",
    "GlobalGroup",
    "GlobalSettings",
    "MaintenanceMode",
    "ManagementService",
    "Member",
    "MemberClass",
    "PrivateParameters",
    "SecurityServer",
    "SharedParameters",
    "SharedSource",
    "Subsystem",
    "auth_cert_hash",
]


def auth_cert_hash(cert: x509.Certificate) -> bytes:
    """The ``authCertHash`` of an authentication certificate (V3+: SHA-256 of DER)."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(cert.public_bytes(Encoding.DER))
    return digest.finalize()


@dataclass(frozen=True, slots=True)
class MemberClass:
    """A member class: ``COM`` / ``Commercial``."""

    code: str
    description: str


@dataclass(frozen=True, slots=True)
class Subsystem:
    """A subsystem of a member; ``name`` is the V5+ ``subsystemName``."""

    id: ClientId
    name: str | None = None

    def __post_init__(self) -> None:
        if self.id.subsystem_code is None:
            raise ValueError("a subsystem id needs a subsystem code")


@dataclass(frozen=True, slots=True)
class Member:
    """A registered member with its subsystems.

    Attributes:
        id: the member's ClientId (no subsystem code).
        class_description: the description written with the member class.
        name: the official name shown in user interfaces.
        subsystems: in document order; each id extends ``id``.
    """

    id: ClientId
    class_description: str
    name: str
    subsystems: tuple[Subsystem, ...] = ()

    def __post_init__(self) -> None:
        if self.id.subsystem_code is not None:
            raise ValueError("a member id must not have a subsystem code")
        for sub in self.subsystems:
            if sub.id.member != self.id:
                raise ValueError(f"subsystem {sub.id} does not belong to {self.id}")


@dataclass(frozen=True, slots=True)
class MaintenanceMode:
    """A security server in maintenance mode (V5+), with an optional message."""

    message: str | None = None


@dataclass(frozen=True, slots=True)
class SecurityServer:
    """A registered security server.

    Attributes:
        id: owner member + server code.
        address: host name or IP the peers connect to (port 5500).
        auth_cert_hashes: SHA-256 of each registered auth cert's DER (V3+).
        clients: members and subsystems it hosts, in document order.
        maintenance: set when the server is in maintenance mode.
    """

    id: SecurityServerId
    address: str | None = None
    auth_cert_hashes: tuple[bytes, ...] = ()
    clients: tuple[ClientId, ...] = ()
    maintenance: MaintenanceMode | None = None


@dataclass(frozen=True, slots=True)
class GlobalGroup:
    """A global group and its members (members or subsystems)."""

    id: GlobalGroupId
    description: str
    members: tuple[ClientId, ...] = ()


@dataclass(frozen=True, slots=True)
class CentralService:
    """A (legacy) central service and the service implementing it."""

    service_code: str
    implementing_service: ServiceId | None = None


@dataclass(frozen=True, slots=True)
class GlobalSettings:
    """Instance-wide settings.

    Attributes:
        member_classes: the member classes of the instance.
        ocsp_freshness_seconds: an OCSP response whose ``thisUpdate`` is older
            than this is no longer valid (default 3600).
    """

    member_classes: tuple[MemberClass, ...] = ()
    ocsp_freshness_seconds: int = 3600


@dataclass(frozen=True, slots=True)
class SharedSource:
    """A configuration source as listed in shared params (key rotation, V3+)."""

    address: str
    internal_verification_certs: tuple[x509.Certificate, ...] = ()
    external_verification_certs: tuple[x509.Certificate, ...] = ()


def _index_error(what: str) -> ValueError:
    return ValueError(f"shared parameters are inconsistent: {what}")


@dataclass(frozen=True, slots=True)
class SharedParameters:
    """The shared parameters of one X-Road instance (V6 structure).

    Construction checks referential integrity (unique members, subsystems and
    servers; owners and clients registered) and raises ``ValueError`` otherwise.
    """

    instance_identifier: str
    global_settings: GlobalSettings
    sources: tuple[SharedSource, ...] = ()
    approved_cas: tuple[ApprovedCA, ...] = ()
    approved_tsas: tuple[ApprovedTSA, ...] = ()
    members: tuple[Member, ...] = ()
    security_servers: tuple[SecurityServer, ...] = ()
    global_groups: tuple[GlobalGroup, ...] = ()
    central_services: tuple[CentralService, ...] = ()
    _members: dict[ClientId, Member] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _by_hash: dict[bytes, SecurityServer] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        members: dict[ClientId, Member] = {}
        clients: set[ClientId] = set()
        for member in self.members:
            if member.id in members:
                raise _index_error(f"member {member.id} listed twice")
            members[member.id] = member
            clients.add(member.id)
            for sub in member.subsystems:
                if sub.id in clients:
                    raise _index_error(f"subsystem {sub.id} listed twice")
                clients.add(sub.id)
        by_hash: dict[bytes, SecurityServer] = {}
        seen_servers: set[SecurityServerId] = set()
        for server in self.security_servers:
            if server.id in seen_servers:
                raise _index_error(f"server {server.id} listed twice")
            seen_servers.add(server.id)
            if server.id.owner not in members:
                raise _index_error(f"owner of {server.id} is not a member")
            for client in server.clients:
                if client not in clients:
                    raise _index_error(f"client {client} of {server.id} is unknown")
            for digest in server.auth_cert_hashes:
                if by_hash.setdefault(digest, server) is not server:
                    raise _index_error("an auth cert hash is used by two servers")
        object.__setattr__(self, "_members", members)
        object.__setattr__(self, "_by_hash", by_hash)

    # -- members -------------------------------------------------------------

    def member(self, client_id: ClientId) -> Member:
        """The member of a member or subsystem id.

        Raises:
            NotFound: the member is not registered.
        """
        try:
            return self._members[client_id.member]
        except KeyError:
            raise NotFound(f"{client_id.member} is not a registered member") from None

    def member_name(self, client_id: ClientId) -> str:
        """The official name of the member (of a subsystem's member).

        Raises:
            NotFound: the member is not registered.
        """
        return self.member(client_id).name

    def is_registered(self, client_id: ClientId) -> bool:
        """Whether a member or subsystem is registered in this instance."""
        member = self._members.get(client_id.member)
        if member is None:
            return False
        if client_id.subsystem_code is None:
            return True
        return any(sub.id == client_id for sub in member.subsystems)

    # -- security servers ----------------------------------------------------

    def server(self, server_id: SecurityServerId) -> SecurityServer:
        """A security server by id.

        Raises:
            NotFound: it is not registered.
        """
        for server in self.security_servers:
            if server.id == server_id:
                return server
        raise NotFound(f"{server_id} is not a registered security server")

    def servers_for_client(self, client_id: ClientId) -> tuple[SecurityServer, ...]:
        """The security servers that host a client (where to send a request)."""
        return tuple(s for s in self.security_servers if client_id in s.clients)

    def server_for_auth_cert(self, cert: x509.Certificate) -> SecurityServer:
        """The security server whose registered auth cert this is.

        Args:
            cert: the peer's TLS certificate.

        Returns:
            The server that registered it.

        Raises:
            CertificateValidationError: no server registered this certificate
                (fail closed: an unregistered key cannot speak for anyone).
        """
        server = self._by_hash.get(auth_cert_hash(cert))
        if server is None:
            raise CertificateValidationError(
                "Authentication certificate is not registered to any security server",
                code="SslAuthenticationFailed",
            )
        return server

    # -- trust material ------------------------------------------------------

    def trusted_ca_certs(self) -> tuple[x509.Certificate, ...]:
        """Top CA certificates: the trust anchors for chain building."""
        return tuple(ca.top_ca.cert for ca in self.approved_cas)

    def intermediate_ca_certs(self) -> tuple[x509.Certificate, ...]:
        """Intermediate CA certificates (path building only, not anchors)."""
        return tuple(i.cert for ca in self.approved_cas for i in ca.intermediate_cas)

    def approved_ca_for_issuer(self, issuer: x509.Certificate) -> ApprovedCA:
        """The approved CA that lists ``issuer`` as its top or intermediate CA.

        Raises:
            CertificateValidationError: the issuer is not an approved CA.
        """
        for ca in self.approved_cas:
            if any(info.cert == issuer for info in ca.ca_infos):
                return ca
        raise CertificateValidationError(
            f"{issuer.subject.rfc4514_string()} is not an approved CA"
        )

    def ocsp_responders(self, issuer: x509.Certificate) -> tuple[OcspResponder, ...]:
        """The OCSP responders for certificates issued by ``issuer``.

        Raises:
            CertificateValidationError: the issuer is not an approved CA.
        """
        for ca in self.approved_cas:
            for info in ca.ca_infos:
                if info.cert == issuer:
                    return info.ocsp
        raise CertificateValidationError(
            f"{issuer.subject.rfc4514_string()} is not an approved CA"
        )

    def ocsp_responder_certs(self) -> tuple[x509.Certificate, ...]:
        """Every OCSP responder certificate named in the configuration."""
        return tuple(
            r.cert
            for ca in self.approved_cas
            for info in ca.ca_infos
            for r in info.ocsp
            if r.cert is not None
        )

    def tsa_certs(self) -> tuple[x509.Certificate, ...]:
        """Certificates of the approved time-stamping authorities."""
        return tuple(tsa.cert for tsa in self.approved_tsas)

    def verification_certs(self, *, external: bool) -> tuple[x509.Certificate, ...]:
        """Configuration-signing certs published for key rotation.

        Args:
            external: the ``externalconf`` certs (federation) instead of internal.
        """
        return tuple(
            cert
            for src in self.sources
            for cert in (
                src.external_verification_certs
                if external
                else src.internal_verification_certs
            )
        )

    # -- global groups ---------------------------------------------------------

    def global_group(self, group_id: GlobalGroupId) -> GlobalGroup:
        """A global group by id.

        Raises:
            NotFound: no such group in this instance.
        """
        for group in self.global_groups:
            if group.id == group_id:
                return group
        raise NotFound(f"{group_id} is not a global group")

    def global_groups_of(self, client_id: ClientId) -> tuple[GlobalGroupId, ...]:
        """The groups that list exactly this member or subsystem."""
        return tuple(g.id for g in self.global_groups if client_id in g.members)


@dataclass(frozen=True, slots=True)
class ManagementService:
    """Where security servers send management requests.

    Attributes:
        auth_cert_reg_service_address: URL of ``authCertReg`` (direct HTTPS).
        auth_cert_reg_service_cert: the TLS certificate that URL must present.
        provider_id: ``managementRequestServiceProviderId``.
    """

    auth_cert_reg_service_address: str
    provider_id: ClientId
    auth_cert_reg_service_cert: x509.Certificate | None = None


@dataclass(frozen=True, slots=True)
class PrivateParameters:
    """The private parameters of one instance (V3 structure)."""

    instance_identifier: str
    management_service: ManagementService
    time_stamping_interval_seconds: int
    configuration_anchors: tuple[ConfigurationAnchor, ...] = ()
