"""The server proxy's exchange core: a peer's transport message to a reply.

PROTOCOLS.md §7.2, in order: parse the transport message; check an optional
``securityServer`` header names us; the provider (the ``service``'s client)
is a registered client here; the peer's TLS certificate is a registered
authentication certificate of a server hosting the ``client`` (fresh OCSP);
the service exists, the client has an access right, the service is enabled;
the signature verifies and its signer is the ``client`` member. Then call the
service at its address with its timeout, insert ``requestHash``, sign with
the provider member's key (a failure to sign fails closed), log request and
response, and answer. Every refusal is a ``Server.ServerProxy.*`` fault.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from lxml import etree

from jplink.clients.http11 import Http11Pool, tls_context
from jplink.errors import (
    CertificateValidationError,
    JPLinkError,
    MalformedMessage,
    NotFound,
    SoapFault,
)
from jplink.identifiers import ClientId, GlobalGroupId, SecurityServerId
from jplink.protocol.headers import REQUEST_HASH_SHA512
from jplink.protocol.mime import (
    ContentType,
    MimePart,
    build_multipart,
    make_boundary,
    parse_content_type,
)
from jplink.protocol.request_hash import add_request_hash, compute_request_hash
from jplink.protocol.soap import MessageRole, SoapMessage, parse_soap_message
from jplink.protocol.transport import (
    TransportMessage,
    build_transport_message,
    parse_transport_message,
    signed_parts_of,
)
from jplink.security.tls import PeerIdentity

from .exchange import (
    FaultPrefix,
    ProxyReply,
    TransportHeader,
    fault_reply,
    internal_fault,
    verify_transport_signature,
)
from .exchange_access import ServerConfView, ServiceTarget
from .exchange_ports import CertStatusPort, ConfProvider
from .messagelog import MessageLogWriter
from .messagelog_entry import entry_for, received_entry
from .signer import BatchSigner
from .states import LogDirection, LogSide

__all__ = [
    "MAX_PEER_ENTRIES",
    "MAX_SERVICE_RESPONSE_BYTES",
    "MetaserviceHandler",
    "ServerProxy",
    "ServiceAnswer",
]

#: Largest service response read (the same bound as a transport message).
MAX_SERVICE_RESPONSE_BYTES = 50 * 1024 * 1024

#: Verified (peer certificate, client) pairs remembered at most; the memo is
#: emptied when full (a live peer is simply verified again).
MAX_PEER_ENTRIES = 1024


@dataclass(frozen=True, slots=True)
class ServiceAnswer:
    """A service's (or a metaservice's) response, before requestHash and signing.

    Attributes:
        soap: the SOAP envelope bytes as the service sent them.
        soap_content_type: the Content-Type of the SOAP part (``text/xml`` or
            MTOM's ``application/xop+xml``).
        attachments: SwA/MTOM parts, headers and bodies untouched.
        envelope: the tree ``soap`` was parsed into, when it was (then
            ``requestHash`` is inserted without parsing the bytes again).
    """

    soap: bytes
    soap_content_type: str = "text/xml; charset=UTF-8"
    attachments: tuple[MimePart, ...] = ()
    envelope: etree._Element | None = field(default=None, repr=False, compare=False)


class MetaserviceHandler(Protocol):
    """Answers listMethods, allowedMethods and getWsdl (PROTOCOLS.md §11)."""

    def handles(self, request: SoapMessage) -> bool:
        """Whether ``request`` calls a metaservice."""
        ...

    async def answer(self, request: SoapMessage, *, now: dt.datetime) -> ServiceAnswer:
        """The response (raises a JPLinkError to refuse)."""
        ...


class ServerProxy:
    """Processes transport messages from peer security servers (port 5500).

    Args:
        server_id: this security server.
        conf, serverconf, certstatus, signer, log: the ports.
        http: the kept-alive connections to services.
        clock: the current time (aware).
        peer_cache_seconds: how long a verified peer certificate is trusted
            without asking the certificate-status service again.
        metaservices: answers listMethods, allowedMethods, getWsdl.
    """

    def __init__(
        self,
        *,
        server_id: SecurityServerId,
        conf: ConfProvider,
        serverconf: ServerConfView,
        certstatus: CertStatusPort,
        signer: BatchSigner,
        log: MessageLogWriter,
        http: Http11Pool,
        clock: Callable[[], dt.datetime],
        peer_cache_seconds: float = 60.0,
        metaservices: MetaserviceHandler | None = None,
    ) -> None:
        self._server_id = server_id
        self._conf = conf
        self._serverconf = serverconf
        self._certstatus = certstatus
        self._signer = signer
        self._log = log
        self._http = http
        self._clock = clock
        self._peer_ttl = peer_cache_seconds
        self._peers: dict[tuple[bytes, ClientId | None], tuple[float, PeerIdentity]]
        self._peers = {}
        self._metaservices = metaservices

    async def handle(
        self, body: bytes, headers: Mapping[str, str], *, peer_cert_der: bytes | None
    ) -> ProxyReply:
        """Process one transport message.

        Args:
            body: the HTTP body.
            headers: the HTTP headers (lower-case names).
            peer_cert_der: the TLS client certificate of the peer.

        Returns:
            The signed transport response, or a fault (``text/xml``).
        """
        try:
            return await self._exchange(body, headers, peer_cert_der)
        except JPLinkError as exc:
            return fault_reply(exc, FaultPrefix.SERVER_PROXY)
        except Exception as exc:  # a bug: a fault, never a traceback to the peer
            return internal_fault(exc, FaultPrefix.SERVER_PROXY)

    async def _verify_peer(
        self, cert_der: bytes | None, client: ClientId | None
    ) -> None:
        if not cert_der:
            raise CertificateValidationError(
                "The peer presented no TLS certificate", code="SslAuthenticationFailed"
            )
        key = (cert_der, client)  # the exact bytes
        cached = self._peers.get(key)
        if cached is not None and time.monotonic() - cached[0] < self._peer_ttl:
            return
        identity = await self._certstatus.verify_peer(
            cert_der, now=self._clock(), expected_client=client
        )
        if self._peer_ttl > 0:
            if len(self._peers) >= MAX_PEER_ENTRIES:
                self._peers.clear()
            self._peers[key] = (time.monotonic(), identity)

    async def _exchange(
        self, body: bytes, headers: Mapping[str, str], peer_cert_der: bytes | None
    ) -> ProxyReply:
        now = self._clock()
        self._log.check_healthy(now)  # PROTOCOLS.md §12.2 failure period
        # PROTOCOLS.md §5.1: the peer must be a registered security server
        # before anything it sends is looked at; which member it may speak
        # for is checked once the message names the client.
        await self._verify_peer(peer_cert_der, None)
        message = parse_transport_message(
            body, headers.get("content-type", ""), role=MessageRole.REQUEST
        )
        request = parse_soap_message(
            message.soap, content_type=_soap_type(message), role=MessageRole.REQUEST
        )
        conf = self._conf.current(now=now)
        # PROTOCOLS.md §7.2 step 2: "If securityServer is present, it must
        # equal the local server id: InvalidSecurityServer".
        if request.security_server not in (None, self._server_id):
            raise NotFound(
                f"Request for {request.security_server}, not {self._server_id}",
                code="InvalidSecurityServer",
            )
        provider = request.service.client
        await self._serverconf.check_registered_client(provider, role="provider")
        await self._verify_peer(peer_cert_der, request.client)
        target = await self._target(request, conf.global_groups_of(request.client))
        verified = verify_transport_signature(message, now=now)
        # PROTOCOLS.md §6.4 step 4: the signer "must equal the expected
        # signer: the SOAP client member for requests".
        await self._certstatus.check_signer(
            verified.signer_certificate,
            verified.ocsp_responses,
            request.client,
            now=now,
        )
        request_id = headers.get(TransportHeader.REQUEST_ID.value)
        request_entry = received_entry(
            message,
            verified,
            query_id=request.id,
            client=request.client,
            service=request.service,
            direction=LogDirection.REQUEST,
            side=LogSide.SERVER_PROXY,
            mode=self._log.mode,
            fault=False,  # parse_soap_message raises on a Fault
            x_request_id=request_id,
            now=now,
        )
        try:
            answer = await self._answer(request, message, headers, target, now)
            # "inserts a new element, right after the id header element"
            # (PROTOCOLS.md §3.1).
            soap = add_request_hash(
                answer.soap,
                compute_request_hash(message.soap),
                REQUEST_HASH_SHA512,
                parsed=answer.envelope,
            )
            part = MimePart.create([("Content-Type", answer.soap_content_type)], soap)
            response = TransportMessage(
                soap_part=part, signature=b"-", attachments=answer.attachments
            )
            signed = await self._signer.sign(provider, signed_parts_of(response))
        except JPLinkError:
            await self._log.write([request_entry])
            raise
        response = TransportMessage(
            soap_part=part,
            signature=signed.signature.signature_xml,
            attachments=answer.attachments,
            hash_chain_result=signed.signature.hash_chain_result,
            hash_chain=signed.signature.hash_chain,
        )
        await self._log.write(
            [
                request_entry,
                entry_for(
                    signed,
                    query_id=request.id,
                    client=request.client,
                    service=request.service,
                    direction=LogDirection.RESPONSE,
                    side=LogSide.SERVER_PROXY,
                    soap=soap,
                    mode=self._log.mode,
                    fault=False,  # a Fault from the service raised
                    x_request_id=request_id,
                    now=self._clock(),
                ),
            ]
        )
        encoded = build_transport_message(response)
        return ProxyReply(
            200,
            encoded.content_type,
            encoded.body,
            {
                TransportHeader.HASH_ALGORITHM.value: "SHA-512",
                TransportHeader.ORIGINAL_CONTENT_TYPE.value: answer.soap_content_type,
            },
        )

    async def _target(
        self, request: SoapMessage, groups: Iterable[GlobalGroupId]
    ) -> ServiceTarget | None:
        if self._metaservices is not None and self._metaservices.handles(request):
            return None  # answered here; allowedMethods filters by the ACL
        return await self._serverconf.check_access(
            request.service, request.client, global_groups=groups
        )

    async def _answer(
        self,
        request: SoapMessage,
        message: TransportMessage,
        headers: Mapping[str, str],
        target: ServiceTarget | None,
        now: dt.datetime,
    ) -> ServiceAnswer:
        if target is None:
            assert self._metaservices is not None  # _target returned None for it
            return await self._metaservices.answer(request, now=now)
        return await self._call_service(message, headers, target)

    async def _call_service(
        self,
        message: TransportMessage,
        headers: Mapping[str, str],
        target: ServiceTarget,
    ) -> ServiceAnswer:
        body, ctype = _service_request(message, headers)
        out = {"Content-Type": ctype}
        action = headers.get(TransportHeader.ORIGINAL_SOAP_ACTION.value)
        if action is not None:
            out["SOAPAction"] = action
        url = target.url
        resp = await self._http.post(
            url,
            body,
            out,
            timeout=target.timeout_seconds,
            limit=MAX_SERVICE_RESPONSE_BYTES,
            tls=tls_context(target.tls_verify),
        )
        data = resp.body
        ctype = resp.headers.get("Content-Type", "text/xml")
        try:
            response = parse_soap_message(
                data, content_type=ctype, role=MessageRole.RESPONSE
            )
        except SoapFault:
            raise
        except JPLinkError as exc:
            raise MalformedMessage(
                f"The service sent an invalid response: {exc.message}",
                code=f"ServiceFailed.{exc.code}",
            ) from exc
        return ServiceAnswer(
            response.soap,
            response.soap_content_type,
            response.attachments,
            envelope=response.envelope,
        )


def _service_request(
    message: TransportMessage, headers: Mapping[str, str]
) -> tuple[bytes, str]:
    """The HTTP body and Content-Type to send to the service.

    The information system's message is restored as it was sent: the SOAP
    part alone, or for SwA/MTOM a multipart whose parts keep their MIME
    headers and bytes (PR-MESS: attachments are passed through unchanged);
    only the multipart boundary is new.
    """
    original = headers.get(TransportHeader.ORIGINAL_CONTENT_TYPE.value)
    if not message.attachments:
        return message.soap, original or message.soap_content_type
    boundary = make_boundary()
    body = build_multipart([message.soap_part, *message.attachments], boundary)
    params: list[tuple[str, str]] = []
    media = "multipart/related"
    if original:
        try:
            parsed = parse_content_type(original)
        except MalformedMessage:
            parsed = None
        if parsed is not None and parsed.is_multipart:
            media = parsed.media_type
            params = [(n, v) for n, v in parsed.params if n != "boundary"]
    if not params:
        soap_media = message.soap_part.content_type.media_type
        params = [("type", soap_media)]
    return body, str(ContentType(media, (*params, ("boundary", boundary))))


def _soap_type(message: TransportMessage) -> str:
    ctype = message.soap_content_type
    return "text/xml; charset=UTF-8" if "xop+xml" in ctype else ctype
