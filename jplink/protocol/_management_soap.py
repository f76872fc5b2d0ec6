"""Management requests as SOAP messages: the envelope around a body.

The header names the management service (PROTOCOLS.md §10)::

    client  = the security server's owner member
    service = managementRequestServiceProviderId + serviceCode = operation

Re-exported by :mod:`jplink.protocol.management`.
"""

from __future__ import annotations

from ..errors import MalformedMessage
from ..identifiers import ClientId, ServiceId
from ._management_body import (
    ManagementRequest,
    body_element,
    build_management_body,
    parse_management_body,
)
from .headers import XRoadHeader
from .soap import MessageRole, SoapMessage, build_request, build_response_from

__all__ = [
    "build_management_request",
    "build_management_response",
    "parse_management_request",
    "parse_management_response",
]

_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


def build_management_request(
    request: ManagementRequest,
    *,
    service_provider: ClientId,
    message_id: str,
    client: ClientId | None = None,
) -> bytes:
    """The ``text/xml`` SOAP request for ``request``.

    Args:
        request: the body.
        service_provider: ``managementRequestServiceProviderId`` (private params).
        message_id: the X-Road message id (a fresh UUID).
        client: the header client; default the server's owner (PR-MSERV:
            X-Road refuses "Sender does not match server owner").

    Returns:
        The SOAP envelope bytes: these exact bytes are what gets signed.
    """
    service = ServiceId(
        service_provider.instance,
        service_provider.member_class,
        service_provider.member_code,
        service_provider.subsystem_code,
        request.type.value,
    )
    header = XRoadHeader(
        client=client or request.server.owner, service=service, id=message_id
    )
    return build_request(header, build_management_body(request))


def parse_management_request(message: SoapMessage) -> ManagementRequest:
    """The management body of a parsed SOAP request.

    Raises:
        MalformedMessage: not a request, or the body is not a management body.
    """
    if message.role is not MessageRole.REQUEST or message.envelope is None:
        raise MalformedMessage("Not a management request", code="InvalidBody")
    body = message.envelope.find(f"{{{_SOAP}}}Body")
    assert body is not None  # parse_soap_message checked the envelope
    return parse_management_body(next(c for c in body if isinstance(c.tag, str)))


def build_management_response(message: SoapMessage, request_id: int | None) -> bytes:
    """The central server's answer: the request's fields echoed plus requestId.

    Args:
        message: the parsed request.
        request_id: the stored request's number (None for a dry run).

    Returns:
        The ``text/xml`` response envelope.

    Raises:
        MalformedMessage: ``message`` does not hold a management body.
    """
    request = parse_management_request(message)
    return build_response_from(
        message, body_element(request, request.type.value + "Response", request_id)
    )


def parse_management_response(message: SoapMessage) -> ManagementRequest:
    """The body of a parsed management response, with its ``request_id``.

    Raises:
        MalformedMessage: not a response, or a malformed body.
    """
    if message.role is not MessageRole.RESPONSE or message.envelope is None:
        raise MalformedMessage("Not a management response", code="InvalidBody")
    body = message.envelope.find(f"{{{_SOAP}}}Body")
    assert body is not None
    return parse_management_body(
        next(c for c in body if isinstance(c.tag, str)), response=True
    )
