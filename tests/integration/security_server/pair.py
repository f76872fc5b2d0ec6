"""Two security servers, a CA/OCSP app and a stub service, all in one process.

The world of the exchange tests (fixtures and helpers only):

- a real CA/OCSP app (``ca_tsa.app.make_app``) on a loopback port issues
  each server's signing and authentication certificates from CSRs made on
  its software token (the service layer, as ``jplink ss`` does);
- server A (owner COM/1111, server ss1, client subsystem ``client``) and
  server B (owner COM/2222, server ss2, provider subsystem ``data``), each
  with its own home, SQLite database and loopback ports; the global
  configuration (saved into both homes as a download would) lists both with
  their auth-cert hashes and ``host:port`` addresses;
- a stub provider service (aiohttp) that answers ``getTrades`` and records
  what it received; B's service description points at it and A's subsystem
  has an access right to ``getTrades``.

The servers run with :func:`security_server.serve.running`: client proxy,
server proxy (mutual TLS), OCSP for peers and the OCSP refresher, as
``jplink ss serve`` runs them. The CA signs with the wall clock, so these
tests use real time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from ca_tsa.app import make_app, make_tsa_app
from ca_tsa.home import CaMaterial, init_ca_home, load_ca_material, read_api_key
from jplink.clients._confstore import save_configuration
from jplink.clients.globalconf import LoadedConfiguration
from jplink.globalconf import (
    ApprovedCA,
    ApprovedTSA,
    CaInfo,
    ContentIdentifier,
    GlobalSettings,
    Member,
    OcspResponder,
    SecurityServer,
    SharedParameters,
    SharedSource,
    Subsystem,
    auth_cert_hash,
    serialize_shared_parameters,
)
from jplink.identifiers import ClientId, SecurityServerId, ServiceId
from jplink.protocol import XRoadHeader, build_request, build_response_from
from jplink.protocol.faults import parse_fault
from jplink.protocol.soap import MessageRole, parse_soap_message
from jplink.protocol.transport import (
    TransportMessage,
    build_transport_message,
    signed_parts_of,
)
from jplink.security.certs import CertProfile, MemberSubject
from jplink.security.keys import KeyType
from jplink.security.signature import sign_message
from jplink.security.tls import client_ssl_context
from jplink.storage import Database
from security_server import (
    access_rights,
    certificates,
    clients,
    csrs,
    identity,
    keys,
    services,
    softtoken,
)
from security_server.app import ExchangeResources
from security_server.config import CONFIG_FILE, SecurityServerConfig, load_ss_config
from security_server.db import open_database
from security_server.serve import running
from security_server.states import ClientState
from tests.support.ca_api import CaApiClient
from tests.support.ports import free_port

from .helpers import INSTANCE, PIN, make_anchor, make_wsdl

NS_DATA = "http://example.jp/data"
SERVICE_CODE = "getTrades"


def real_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Clock:
    """A node's clock: the wall clock plus an offset a test may move."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return real_now() + self.offset


@dataclass
class CaClient(CaApiClient):
    """The CA's enrolment API, used as an operator would, and its material."""

    material: CaMaterial
    #: The CA's TSA, when started (``start_ca(..., tsa=True)``); the global
    #: configuration then approves it.
    tsa_url: str | None = None


@dataclass
class Node:
    """One security server of the pair."""

    name: str
    owner: ClientId
    owner_name: str
    server_code: str
    subsystem: ClientId
    config: SecurityServerConfig
    clock: Clock = field(default_factory=Clock)
    sign_cert: x509.Certificate | None = None
    auth_cert: x509.Certificate | None = None
    resources: ExchangeResources | None = None

    @property
    def server_id(self) -> SecurityServerId:
        o = self.owner
        return SecurityServerId(
            o.instance, o.member_class, o.member_code, self.server_code
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.config.server_proxy.port}"

    @property
    def client_proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.config.client_proxy.http_port}/"

    @property
    def server_proxy_url(self) -> str:
        return f"https://{self.address}/"

    @property
    def res(self) -> ExchangeResources:
        assert self.resources is not None
        return self.resources

    def db(self) -> Database:
        return self.res.db


@dataclass
class StubService:
    """The provider's information system: answers getTrades, records requests."""

    received: list[tuple[str, bytes]] = field(default_factory=list)
    #: Returns the response body (bytes) and content type for a request.
    responder: Callable[[bytes, str], tuple[bytes, str]] | None = None
    delay: float = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        ctype = request.headers.get("Content-Type", "")
        self.received.append((ctype, body))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.responder is not None:
            data, rtype = self.responder(body, ctype)
        else:
            data, rtype = answer_trades(body, ctype), "text/xml; charset=UTF-8"
        return web.Response(body=data, headers={"Content-Type": rtype})

    async def wsdl(self, request: web.Request) -> web.Response:
        address = str(request.url.with_path("/soap"))
        return web.Response(body=make_wsdl(address), content_type="text/xml")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/soap", self.handle)
        app.router.add_get("/wsdl", self.wsdl)
        return app


def answer_trades(body: bytes, ctype: str) -> bytes:
    """A getTrades response echoing the request's day."""
    request = parse_soap_message(body, content_type=ctype, role=MessageRole.REQUEST)
    assert request.envelope is not None
    day = request.envelope.findtext(f".//{{{NS_DATA}}}day") or "?"
    wrapper = etree.Element(f"{{{NS_DATA}}}getTradesResponse", nsmap={"d": NS_DATA})
    etree.SubElement(wrapper, f"{{{NS_DATA}}}amount").text = f"42.00 on {day}"
    return build_response_from(request, wrapper)


def trades_request(
    client: ClientId,
    provider: ClientId,
    *,
    day: str = "2024-05-01",
    code: str = SERVICE_CODE,
    query_id: str | None = None,
    extra: str = "",
) -> bytes:
    """An X-Road SOAP request as an information system would send it."""
    header = XRoadHeader(
        client=client,
        service=ServiceId(
            provider.instance,
            provider.member_class,
            provider.member_code,
            provider.subsystem_code,
            code,
            "v1" if code == SERVICE_CODE else None,
        ),
        id=query_id or str(uuid.uuid4()),
        user_id="tester",
    )
    ns = NS_DATA if code == SERVICE_CODE else "http://x-road.eu/xsd/xroad.xsd"
    wrapper = etree.Element(f"{{{ns}}}{code}", nsmap={"d": ns})
    if code == SERVICE_CODE:
        etree.SubElement(wrapper, f"{{{ns}}}day").text = day
    if extra:
        wrapper.append(etree.fromstring(extra))
    return build_request(header, wrapper)


@dataclass
class Pair:
    """Everything an exchange test needs."""

    a: Node
    b: Node
    ca: CaClient
    stub: StubService
    stub_url: str
    http: aiohttp.ClientSession
    shared: SharedParameters
    expire: dt.datetime
    stack: contextlib.AsyncExitStack

    async def post(
        self, body: bytes, content_type: str = "text/xml; charset=UTF-8"
    ) -> tuple[int, str, bytes]:
        """POST a request to A's client proxy."""
        async with self.http.post(
            self.a.client_proxy_url, data=body, headers={"Content-Type": content_type}
        ) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), await resp.read()

    def publish(self, shared: SharedParameters, expire: dt.datetime) -> None:
        """Save a new global configuration into both homes (as a download)."""
        for node in (self.a, self.b):
            save_global_configuration(node.config, shared, expire)
        self.shared, self.expire = shared, expire


def save_global_configuration(
    config: SecurityServerConfig, shared: SharedParameters, expire: dt.datetime
) -> None:
    loaded = LoadedConfiguration(
        instance_identifier=INSTANCE,
        shared=shared,
        private=None,
        expire_date=expire,
        version=6,
        source_url="http://127.0.0.1:9/internalconf",
    )
    save_configuration(
        config.globalconf.directory,
        loaded,
        {ContentIdentifier.SHARED_PARAMETERS: serialize_shared_parameters(shared)},
    )


def build_shared(
    ca: CaClient,
    nodes: tuple[Node, ...],
    *,
    freshness: int = 3600,
    extra_servers: tuple[SecurityServer, ...] = (),
    extra_members: tuple[Member, ...] = (),
) -> SharedParameters:
    """The global configuration listing both servers and their auth certs."""
    return SharedParameters(
        instance_identifier=INSTANCE,
        global_settings=GlobalSettings(ocsp_freshness_seconds=freshness),
        sources=(SharedSource("127.0.0.1", (ca.material.root_cert,)),),
        approved_cas=(
            ApprovedCA(
                name="JP-LINK Test CA",
                top_ca=CaInfo(
                    ca.material.root_cert,
                    (OcspResponder(ca.ocsp_url, ca.material.ocsp_cert),),
                ),
                certificate_profile_info="jp.jplink.Profile",
            ),
        ),
        approved_tsas=()
        if ca.tsa_url is None
        else (ApprovedTSA("JP-LINK Test TSA", ca.tsa_url, ca.material.tsa_cert),),
        members=(
            *(
                Member(n.owner, "Commercial", n.owner_name, (Subsystem(n.subsystem),))
                for n in nodes
            ),
            *extra_members,
        ),
        security_servers=(
            *(
                SecurityServer(
                    n.server_id,
                    address=n.address,
                    auth_cert_hashes=(auth_cert_hash(n.auth_cert),)
                    if n.auth_cert
                    else (),
                    clients=(n.owner, n.subsystem),
                )
                for n in nodes
            ),
            *extra_servers,
        ),
    )


#: The ``[exchange]`` table of the test servers: no caching, so a test's
#: change of rights or certificates is seen by the next request.
TEST_EXCHANGE = (
    "serverconf_cache_seconds = 0",
    "peer_cache_seconds = 0",
    "globalconf_check_seconds = 0",
)


def _write_config(
    home: Path,
    ports: dict[str, int],
    peers: list[tuple[str, int]],
    exchange: tuple[str, ...] = TEST_EXCHANGE,
    database_url: str | None = None,
) -> None:
    lines = [f'database_url = "{database_url}"'] if database_url else []
    lines += [
        "[client_proxy]",
        'host = "127.0.0.1"',
        f"http_port = {ports['client']}",
        # Not used by the pair itself; set so that two `jplink ss serve`
        # processes of a pair (the benchmark) do not both take 8443 and 4000.
        f"https_port = {free_port()}",
        "[admin]",
        'host = "127.0.0.1"',
        f"port = {free_port()}",
        "[server_proxy]",
        'host = "127.0.0.1"',
        f"port = {ports['server']}",
        "[ocsp_responder]",
        'host = "127.0.0.1"',
        f"port = {ports['ocsp']}",
        "[exchange]",
        *exchange,
        "[timeouts]",
        "connect_seconds = 5",
        "read_seconds = 10",
    ]
    for address, port in peers:
        lines += ["[[peer_ocsp_ports]]", f'address = "{address}"', f"port = {port}"]
    (home / CONFIG_FILE).write_text("\n".join(lines) + "\n")


async def issue_own(
    db: Database,
    node: Node,
    ca: CaClient,
    usage: CertProfile,
    unlocked: softtoken.UnlockedToken,
) -> x509.Certificate:
    """Generate a key on the node's token, get it certified, import it."""
    now = real_now()
    key = await keys.generate_key(
        db,
        node.config.token_dir,
        unlocked,
        "test",
        usage=usage,
        member=node.owner if usage is CertProfile.SIGN else None,
        key_type=KeyType.EC,
        now=now,
    )
    csr = await csrs.create_csr(
        db, node.config.token_dir, unlocked, "test", key.key_id, now=now
    )
    o = node.owner
    subject = MemberSubject(
        o.instance,
        o.member_class,
        o.member_code,
        node.owner_name,
        node.server_code if usage is CertProfile.AUTH else None,
    )
    cert = await ca.issue(usage, subject, csr.pem)
    delay = (cert.not_valid_before_utc - real_now()).total_seconds()
    if delay > 0:  # the CA writes whole seconds
        await asyncio.sleep(delay + 0.01)
    await certificates.import_certificate(
        db, "test", cert.public_bytes(Encoding.PEM), now=real_now()
    )
    return cert


async def _init_node(node: Node, ca: CaClient) -> None:
    now = real_now()
    db = await open_database(node.config.db_url)
    try:
        await identity.initialize(
            db,
            node.config,
            "test",
            anchor=make_anchor(now),
            owner=node.owner,
            owner_name=node.owner_name,
            server_code=node.server_code,
            now=now,
        )
        await softtoken.init_token(db, "test", pin=PIN, now=now)
        unlocked = await softtoken.login(db, PIN)
        await clients.add_client(
            db, "test", node.subsystem, name=node.owner_name, now=now
        )
        for client in (node.owner, node.subsystem):
            await clients.set_client_state(
                db, "test", client, ClientState.REGISTERED, now=now
            )
        node.sign_cert = await issue_own(db, node, ca, CertProfile.SIGN, unlocked)
        node.auth_cert = await issue_own(db, node, ca, CertProfile.AUTH, unlocked)
    finally:
        await db.dispose()


async def _publish_service(node: Node, stub_url: str, consumer: ClientId) -> None:
    now = real_now()
    db = await open_database(node.config.db_url)
    try:
        wsdl_url = stub_url.replace("/soap", "/wsdl")
        await services.add_wsdl_description(
            db, "test", node.subsystem, url=wsdl_url, wsdl=make_wsdl(stub_url), now=now
        )
        await services.update_service(
            db, "test", node.subsystem, SERVICE_CODE, timeout_seconds=5, now=now
        )
        await services.set_description_enabled(
            db, "test", node.subsystem, wsdl_url, enabled=True, now=now
        )
        await access_rights.grant_access(
            db, "test", node.subsystem, SERVICE_CODE, consumer, now=now
        )
    finally:
        await db.dispose()


def make_node(
    tmp_path: Path,
    name: str,
    owner: ClientId,
    owner_name: str,
    server_code: str,
    subsystem: str,
    ports: dict[str, int],
    peers: list[tuple[str, int]],
    exchange: tuple[str, ...] = TEST_EXCHANGE,
    database_url: str | None = None,
) -> Node:
    home = tmp_path / name
    home.mkdir()
    _write_config(home, ports, peers, exchange, database_url)
    return Node(
        name,
        owner,
        owner_name,
        server_code,
        owner.subsystem(subsystem),
        load_ss_config(home),
    )


async def prepare_pair(
    tmp_path: Path,
    ca: CaClient,
    stub_url: str,
    *,
    exchange: tuple[str, ...] = TEST_EXCHANGE,
    provider_database_url: str | None = None,
) -> tuple[Node, Node, SharedParameters, dt.datetime]:
    """Initialise both homes (token, keys, certificates, clients, service,
    access right) and save the global configuration into them; B's
    database is ``provider_database_url`` when given (else SQLite)."""
    pa = {k: free_port() for k in ("client", "server", "ocsp")}
    pb = {k: free_port() for k in ("client", "server", "ocsp")}
    a = make_node(
        tmp_path, "ss-a", ClientId(INSTANCE, "COM", "1111"), "Consumer Ltd",
        "ss1", "client", pa, [(f"127.0.0.1:{pb['server']}", pb["ocsp"])], exchange,
    )  # fmt: skip
    b = make_node(
        tmp_path, "ss-b", ClientId(INSTANCE, "COM", "2222"), "Provider Ltd",
        "ss2", "data", pb, [(f"127.0.0.1:{pa['server']}", pa["ocsp"])], exchange,
        provider_database_url,
    )  # fmt: skip
    for node in (a, b):  # alembic migrations are not concurrency-safe
        await _init_node(node, ca)
    await _publish_service(b, stub_url, a.subsystem)
    shared = build_shared(ca, (a, b))
    expire = real_now() + dt.timedelta(days=1)
    for node in (a, b):
        save_global_configuration(node.config, shared, expire)
    return a, b, shared, expire


async def start_ca(
    tmp_path: Path,
    aiohttp_server: Any,
    http: aiohttp.ClientSession,
    *,
    tsa: bool = False,
) -> CaClient:
    """The CA and OCSP responder; with ``tsa``, its time-stamping service too."""
    ca_config = init_ca_home(
        tmp_path / "ca", key_type="ec", now=real_now() - dt.timedelta(hours=1)
    )
    server = await aiohttp_server(make_app(ca_config))
    tsa_url = None
    if tsa:
        tsa_url = str((await aiohttp_server(make_tsa_app(ca_config))).make_url("/"))
    material = load_ca_material(ca_config)
    return CaClient(server, http, read_api_key(ca_config), material, tsa_url)


@contextlib.asynccontextmanager
async def open_pair(tmp_path: Path, aiohttp_server: Any) -> AsyncIterator[Pair]:
    """Build and start the pair; everything is stopped on exit."""
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        ca = await start_ca(tmp_path, aiohttp_server, http)
        stub = StubService()
        stub_server = await aiohttp_server(stub.app())
        stub_url = str(stub_server.make_url("/soap"))
        a, b, shared, expire = await prepare_pair(tmp_path, ca, stub_url)
        for node in (a, b):
            node.resources = await stack.enter_async_context(
                running(node.config, pin=PIN, clock=node.clock)
            )
        yield Pair(a, b, ca, stub, stub_url, http, shared, expire, stack)


@dataclass(frozen=True)
class PeerIdentityMaterial:
    """What a (possibly rogue) sending security server uses."""

    auth_chain: tuple[x509.Certificate, ...]
    auth_key: Any
    auth_ocsp: bytes
    sign_key: Any
    sign_cert: x509.Certificate
    sign_chain: tuple[x509.Certificate, ...]
    sign_ocsp: tuple[bytes, ...]


async def material_of(node: Node) -> PeerIdentityMaterial:
    """A node's own auth and sign material, as its proxies use it."""
    now = real_now()
    auth = await node.res.certstatus.auth_material(now=now)
    sign = await node.res.certstatus.signing_material(node.owner, now=now)
    return PeerIdentityMaterial(
        (auth.cert, *auth.chain),
        auth.key,
        auth.ocsp_der,
        sign.key,
        sign.cert,
        sign.chain,
        sign.ocsp_ders,
    )


async def send_as_peer(
    pair: Pair,
    soap: bytes,
    material: PeerIdentityMaterial,
    *,
    tamper: Callable[[bytes], bytes] | None = None,
) -> tuple[int, str, bytes]:
    """Sign ``soap`` and POST it to B's server proxy as a peer would.

    ``tamper`` changes the encoded transport message after signing (a
    man in the middle that the TLS channel would otherwise stop).
    """
    request = parse_soap_message(
        soap, content_type="text/xml; charset=UTF-8", role=MessageRole.REQUEST
    )
    parts = signed_parts_of(TransportMessage.for_soap(request, signature=b"-"))
    signature = sign_message(
        parts,
        key=material.sign_key,
        cert=material.sign_cert,
        ocsp_responses=material.sign_ocsp,
        signing_time=real_now(),
        extra_certificates=material.sign_chain,
    )
    encoded = build_transport_message(
        TransportMessage.for_soap(
            request, signature=signature, ocsp_responses=(material.auth_ocsp,)
        )
    )
    body = tamper(encoded.body) if tamper else encoded.body
    context = client_ssl_context(
        material.auth_chain,
        material.auth_key,
        server_ca_certs=(pair.ca.material.root_cert,),
    )
    async with pair.http.post(
        pair.b.server_proxy_url,
        data=body,
        headers={
            "Content-Type": encoded.content_type,
            "x-original-content-type": "text/xml; charset=UTF-8",
        },
        ssl=context,
    ) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


def fault_code(body: bytes) -> str:
    """The faultcode of a SOAP fault body."""
    return parse_fault(body).faultcode
