"""The client proxy's exchange core: an information system's request to a reply.

PROTOCOLS.md §7.1, in order: parse and check the SOAP request (``Client.*``
faults), refuse everything while the global configuration is outdated, check
that the client is a registered client of this server, find the provider's
security servers, sign the request, send it with the OCSP response of our
authentication certificate over mutual TLS, verify the response (signature by
the provider member, requestHash, the header echo), log request and response
and hand the provider's SOAP response back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable

from jplink.errors import JPLinkError, MalformedMessage, NotFound, RemoteProtocolError
from jplink.globalconf.model import SecurityServer, SharedParameters
from jplink.protocol.mime import build_multipart, make_boundary
from jplink.protocol.request_hash import verify_request_hash
from jplink.protocol.soap import MessageRole, SoapMessage, parse_soap_message
from jplink.protocol.transport import (
    TransportMessage,
    build_transport_message,
    parse_transport_message,
    signed_parts_of,
)

from .exchange import (
    PROXY_VERSION,
    FaultPrefix,
    ProxyReply,
    TransportHeader,
    fault_reply,
    internal_fault,
    verify_transport_signature,
)
from .exchange_access import ServerConfView
from .exchange_is_auth import PLAIN, IsAuthView, IsChannel
from .exchange_ports import CertStatusPort, ConfProvider
from .messagelog import MessageLogWriter
from .messagelog_entry import LogEntry, entry_for, received_entry
from .peer_client import PeerTransport
from .signer import BatchSigner
from .states import LogDirection, LogSide

__all__ = ["ClientProxy", "provider_servers"]


def provider_servers(
    conf: SharedParameters, request: SoapMessage
) -> list[SecurityServer]:
    """The security servers to send ``request`` to.

    PROTOCOLS.md §5.1: every server where the provider is registered; "If the
    securityServer header ... is given, only that server is used; if it is
    not one of the provider's servers the request fails with
    InvalidSecurityServer. Servers in maintenance mode are skipped".

    Raises:
        NotFound: code ``UnknownMember`` (no server), ``InvalidSecurityServer``
            or ``MaintenanceMode``.
    """
    provider = request.service.client
    servers = list(conf.servers_for_client(provider))
    if not servers:
        raise NotFound(
            f"Could not find addresses for service provider '{provider}'",
            code="UnknownMember",
        )
    wanted = request.security_server
    if wanted is not None:
        servers = [s for s in servers if s.id == wanted]
        if not servers:
            raise NotFound(
                f"Security server {wanted} does not host '{provider}'",
                code="InvalidSecurityServer",
            )
    active = [s for s in servers if s.maintenance is None]
    if not active:
        raise NotFound(
            f"The security servers of '{provider}' are in maintenance",
            code="MaintenanceMode",
        )
    return active


class ClientProxy:
    """Processes information-system requests (ports 8080/8443)."""

    def __init__(
        self,
        *,
        conf: ConfProvider,
        serverconf: ServerConfView,
        certstatus: CertStatusPort,
        signer: BatchSigner,
        peers: PeerTransport,
        log: MessageLogWriter,
        clock: Callable[[], dt.datetime],
        is_auth: IsAuthView,
    ) -> None:
        self._conf = conf
        self._is_auth = is_auth
        self._serverconf = serverconf
        self._certstatus = certstatus
        self._signer = signer
        self._peers = peers
        self._log = log
        self._clock = clock

    async def handle(
        self,
        body: bytes,
        content_type: str,
        *,
        soap_action: str | None = None,
        channel: IsChannel = PLAIN,
    ) -> ProxyReply:
        """Process one SOAP request from an information system.

        Args:
            body: the HTTP body as received.
            content_type: its Content-Type.
            soap_action: the SOAPAction header, if any.
            channel: plain HTTP or TLS, with the IS certificate if one was
                sent (checked against the client's connection type).

        Returns:
            The provider's response, or an X-Road fault (HTTP 500).
        """
        try:
            request = parse_soap_message(
                body, content_type=content_type, role=MessageRole.REQUEST
            )
        except RemoteProtocolError as exc:
            return fault_reply(exc, FaultPrefix.CLIENT)
        try:
            return await self._exchange(request, soap_action, channel)
        except JPLinkError as exc:
            return fault_reply(exc, FaultPrefix.CLIENT_PROXY)
        except Exception as exc:  # a bug: a fault, never a traceback to the IS
            return internal_fault(exc, FaultPrefix.CLIENT_PROXY)

    async def _exchange(
        self, request: SoapMessage, soap_action: str | None, channel: IsChannel
    ) -> ProxyReply:
        now = self._clock()
        self._log.check_healthy(now)  # PROTOCOLS.md §12.2 failure period
        conf = self._conf.current(now=now)
        await self._serverconf.check_registered_client(request.client, role="client")
        # PROTOCOLS.md §7.1: "The IS must be authenticated per that client's
        # connection type ... Server.ClientProxy.SslAuthenticationFailed".
        await self._is_auth.verify(request.client, channel)
        servers = provider_servers(conf, request)
        auth = await self._certstatus.auth_material(now=now)
        self._peers.use_identity(
            (auth.cert, *auth.chain),
            auth.key,
            (*conf.trusted_ca_certs(), *conf.intermediate_ca_certs()),
        )
        signed = await self._signer.sign(
            request.client,
            signed_parts_of(TransportMessage.for_soap(request, signature=b"-")),
        )
        outgoing = TransportMessage.for_soap(
            request,
            signature=signed.signature.signature_xml,
            ocsp_responses=(auth.ocsp_der,),
            hash_chain_result=signed.signature.hash_chain_result,
            hash_chain=signed.signature.hash_chain,
        )
        encoded = build_transport_message(outgoing)
        request_id = str(uuid.uuid4())
        headers = {
            "Content-Type": encoded.content_type,
            TransportHeader.REQUEST_ID.value: request_id,
            TransportHeader.HASH_ALGORITHM.value: "SHA-512",
            TransportHeader.ORIGINAL_CONTENT_TYPE.value: request.content_type,
            TransportHeader.PROXY_VERSION.value: PROXY_VERSION,
        }
        if soap_action is not None:
            headers[TransportHeader.ORIGINAL_SOAP_ACTION.value] = soap_action
        request_entry = entry_for(
            signed,
            query_id=request.id,
            client=request.client,
            service=request.service,
            direction=LogDirection.REQUEST,
            side=LogSide.CLIENT_PROXY,
            soap=request.soap,
            mode=self._log.mode,
            fault=False,  # parse_soap_message raises on a Fault
            x_request_id=request_id,
            now=now,
        )
        try:
            answer = await self._peers.send(servers, body=encoded.body, headers=headers)
            response, entry = await self._check_response(
                request, answer.body, answer.content_type, request_id
            )
        except JPLinkError:
            # The request was signed and may have reached the provider: it
            # is part of the record even when the exchange failed.
            await self._log.write([request_entry])
            raise
        await self._log.write([request_entry, entry])
        return self._reply(response)

    async def _check_response(
        self, request: SoapMessage, body: bytes, content_type: str, request_id: str
    ) -> tuple[TransportMessage, LogEntry]:
        # A text/xml answer is a fault of the provider's server: parse_transport_message
        # raises it as a SoapFault, passed on with its own code.
        message = parse_transport_message(body, content_type, role=MessageRole.RESPONSE)
        now = self._clock()
        soap_ctype = message.soap_content_type
        if "xop+xml" in soap_ctype:
            soap_ctype = "text/xml; charset=UTF-8"
        response = parse_soap_message(
            message.soap, content_type=soap_ctype, role=MessageRole.RESPONSE
        )
        verified = verify_transport_signature(message, now=now)
        # PROTOCOLS.md §6.4 step 4 and §14 item 9: "A response signature's
        # signer is the service provider (member of the service id)".
        provider = request.service.client.member
        await self._certstatus.check_signer(
            verified.signer_certificate, verified.ocsp_responses, provider, now=now
        )
        verify_request_hash(response, request.soap)
        # PR-MESS: "The service MUST echo all request header fields in the
        # response ... The client SS checks this".
        echoed = dataclasses.replace(
            response.header, request_hash=None, request_hash_algorithm=None
        )
        if echoed != request.header:
            raise MalformedMessage(
                "The response's header does not echo the request",
                code="InconsistentResponse",
            )
        entry = received_entry(
            message,
            verified,
            query_id=request.id,
            client=request.client,
            service=request.service,
            direction=LogDirection.RESPONSE,
            side=LogSide.CLIENT_PROXY,
            mode=self._log.mode,
            fault=False,  # parse_soap_message raises on a Fault
            x_request_id=request_id,
            now=now,
        )
        return message, entry

    @staticmethod
    def _reply(message: TransportMessage) -> ProxyReply:
        if not message.attachments:
            return ProxyReply(200, message.soap_content_type, message.soap)
        boundary = make_boundary()
        body = build_multipart([message.soap_part, *message.attachments], boundary)
        media = (
            "application/xop+xml"
            if "xop+xml" in message.soap_content_type
            else "text/xml"
        )
        return ProxyReply(
            200, f'multipart/related; type="{media}"; boundary="{boundary}"', body
        )
