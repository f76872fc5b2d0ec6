"""Metadata services answered by the provider's security server (PROTOCOLS.md §11).

- ``listClients``: every member and subsystem of the global configuration
  (also served as the plain ``GET /listClients`` document,
  :func:`build_client_list`);
- ``listMethods``: the services of the provider client on this server;
- ``allowedMethods``: those the requesting client has an access right to
  (directly, through a local group or a global group);
- ``getWsdl``: the WSDL of a service's description, downloaded from the
  description URL as X-Road does, with every ``soap:address location``
  rewritten to ``http://example.org/xroad-endpoint``, returned as a
  ``multipart/related`` attachment after the SOAP part (vector
  ``soap-getWsdl-response.mime``). Only a client with an access right to the
  service gets its WSDL.

"Metaservices themselves are not listed." The responses are built with
:func:`jplink.protocol.build_response_from`; the provider's server proxy adds
``requestHash`` and signs them like any service response.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from lxml import etree
from sqlalchemy import select

from jplink.clients.globalconf import LoadedConfiguration
from jplink.errors import AccessDenied, MalformedMessage, NotFound
from jplink.globalconf import SharedParameters
from jplink.identifiers import ClientId, ServiceId, identifier_to_xml
from jplink.ns import NS_IDENTIFIERS, NS_XROAD
from jplink.protocol import MimePart, SoapMessage, build_multipart, build_response_from
from jplink.protocol.mime import make_boundary
from jplink.storage import Database
from jplink.xml import parse_xml, serialize_xml

from .clients import find_client
from .fetch import fetch_description
from .models import AccessRight, LocalGroup, LocalGroupMember, Service
from .services import find_service

__all__ = [
    "METASERVICES",
    "WSDL_ENDPOINT",
    "MetaserviceResponse",
    "WsdlFetcher",
    "answer_metaservice",
    "build_client_list",
    "is_metaservice",
    "rewrite_wsdl_addresses",
]

#: The SOAP metaservice codes (PR-META).
METASERVICES = frozenset({"listClients", "listMethods", "allowedMethods", "getWsdl"})
#: What X-Road writes into every ``soap:address location`` of a served WSDL.
WSDL_ENDPOINT = "http://example.org/xroad-endpoint"
_SOAP_TYPE = "text/xml; charset=UTF-8"
_WSDL_SOAP_NS = (
    "http://schemas.xmlsoap.org/wsdl/soap/",
    "http://schemas.xmlsoap.org/wsdl/soap12/",
)

#: Downloads a service description by URL.
WsdlFetcher = Callable[[str], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class MetaserviceResponse:
    """A metaservice answer, ready to be signed and returned.

    Attributes:
        content_type: ``text/xml; charset=UTF-8``, or for ``getWsdl``
            ``multipart/related; type="text/xml"; charset=UTF-8; boundary=...``.
        body: the HTTP body (the SOAP envelope, or the multipart).
        soap: the SOAP envelope alone.
        attachments: the WSDL part of ``getWsdl``.
    """

    content_type: str
    body: bytes
    soap: bytes = field(repr=False)
    attachments: tuple[MimePart, ...] = ()


def is_metaservice(service: ServiceId) -> bool:
    """Whether a request's service is a metaservice this server answers itself."""
    return service.service_code in METASERVICES


def _x(name: str) -> str:
    return f"{{{NS_XROAD}}}{name}"


def _wrapper(name: str) -> etree._Element:
    return etree.Element(_x(name), nsmap={"xroad": NS_XROAD, "id": NS_IDENTIFIERS})


def _add_members(
    parent: etree._Element, conf: SharedParameters, instance: str | None
) -> None:
    for member in conf.members:
        if instance is not None and member.id.instance != instance:
            continue
        entries: list[tuple[ClientId, str | None]] = [(member.id, None)]
        entries += [(s.id, s.name) for s in member.subsystems]
        for client_id, subsystem_name in entries:
            element = etree.SubElement(parent, _x("member"))
            identifier_to_xml(client_id, _x("id"), parent=element)
            etree.SubElement(element, _x("name")).text = member.name
            if subsystem_name:
                etree.SubElement(element, _x("subsystemName")).text = subsystem_name


def build_client_list(conf: SharedParameters, *, instance: str | None = None) -> bytes:
    """The ``GET /listClients`` document (root ``xroad:clientList``).

    Args:
        conf: the current shared parameters.
        instance: only this ``xRoadInstance`` (the optional query parameter).

    Returns:
        UTF-8 XML: one ``member`` (``id``, ``name``, ``subsystemName``?) per
        member and subsystem, in configuration order.
    """
    root = _wrapper("clientList")
    _add_members(root, conf, instance)
    return serialize_xml(root)


def _shared(conf: SharedParameters | LoadedConfiguration) -> SharedParameters:
    return conf.shared if isinstance(conf, LoadedConfiguration) else conf


async def _services(db: Database, provider: ClientId) -> list[tuple[str, str | None]]:
    async with db.transaction() as session:
        client = await find_client(session, provider)
        rows = await session.execute(
            select(Service.service_code, Service.service_version)
            .where(Service.client_id == client.id)
            .order_by(Service.service_code)
        )
        return [(code, version) for code, version in rows if code not in METASERVICES]


async def _allowed_codes(
    db: Database, conf: SharedParameters, provider: ClientId, caller: ClientId
) -> set[str]:
    # The subjects a right may name for ``caller``: itself, the provider's
    # local groups it is in, and the global groups listing it.
    async with db.transaction() as session:
        client = await find_client(session, provider)
        groups = (
            await session.execute(
                select(LocalGroup.id)
                .join(LocalGroupMember, LocalGroupMember.group_id == LocalGroup.id)
                .where(
                    LocalGroup.client_id == client.id,
                    LocalGroupMember.member == str(caller),
                )
            )
        ).scalars()
        group_ids = list(groups)
        subjects = [str(caller), *(str(g) for g in conf.global_groups_of(caller))]
        query = select(AccessRight.service_code).where(
            AccessRight.client_id == client.id,
            AccessRight.subject.in_(subjects)
            | AccessRight.local_group_id.in_(group_ids or [-1]),
        )
        return set((await session.execute(query)).scalars())


def _service_list(
    name: str, provider: ClientId, services: list[tuple[str, str | None]]
) -> etree._Element:
    body = _wrapper(name + "Response")
    for code, version in services:
        service = ServiceId(
            provider.instance,
            provider.member_class,
            provider.member_code,
            provider.subsystem_code,
            code,
            version,
        )
        identifier_to_xml(service, _x("service"), parent=body)
    return body


def _text_response(request: SoapMessage, body: etree._Element) -> MetaserviceResponse:
    soap = build_response_from(request, body)
    return MetaserviceResponse(_SOAP_TYPE, soap, soap)


def _request_field(request: SoapMessage, name: str) -> str | None:
    if request.envelope is None:
        raise ValueError("the request has no parsed envelope")
    found = request.envelope.findall(f".//{_x('getWsdl')}/{_x(name)}")
    if len(found) > 1:
        raise MalformedMessage(f"getWsdl has more than one {name}", code="InvalidBody")
    text = (found[0].text or "").strip() if found else ""
    return text or None


def rewrite_wsdl_addresses(wsdl: bytes) -> bytes:
    """The WSDL with every ``soap:address location`` set to :data:`WSDL_ENDPOINT`.

    Raises:
        XmlSecurityError: the document is not acceptable XML.
    """
    root = parse_xml(wsdl)
    for ns in _WSDL_SOAP_NS:
        for address in root.iter(f"{{{ns}}}address"):
            address.set("location", WSDL_ENDPOINT)
    return serialize_xml(root)


async def _get_wsdl(
    db: Database,
    conf: SharedParameters,
    request: SoapMessage,
    fetch: WsdlFetcher,
) -> MetaserviceResponse:
    provider = request.service.client
    code = _request_field(request, "serviceCode")
    version = _request_field(request, "serviceVersion")
    if code is None:
        raise MalformedMessage("getWsdl names no serviceCode", code="InvalidBody")
    async with db.transaction() as session:
        service, description = await find_service(session, provider, code)
        stored_version, url = service.service_version, description.url
    if version is not None and version != stored_version:
        raise NotFound(
            f"{provider} has no service {code} version {version}",
            code="ServiceNotFound",
        )
    if code not in await _allowed_codes(db, conf, provider, request.client):
        raise AccessDenied(
            f"{request.client} may not read the WSDL of {code}",
            code="AccessDenied",
        )
    wsdl = rewrite_wsdl_addresses(await fetch(url))
    body = _wrapper("getWsdlResponse")
    etree.SubElement(body, _x("serviceCode")).text = code
    if version is not None:
        etree.SubElement(body, _x("serviceVersion")).text = version
    soap = build_response_from(request, body)
    boundary = make_boundary("xroad")
    parts = [
        MimePart.create([("content-type", _SOAP_TYPE)], soap),
        MimePart.create([("content-type", "text/xml")], wsdl),
    ]
    return MetaserviceResponse(
        content_type=(
            f'multipart/related; type="text/xml"; charset=UTF-8; boundary={boundary}'
        ),
        body=build_multipart(parts, boundary),
        soap=soap,
        attachments=(parts[1],),
    )


async def answer_metaservice(
    db: Database,
    conf: SharedParameters | LoadedConfiguration,
    request: SoapMessage,
    *,
    now: dt.datetime,
    fetch: WsdlFetcher | None = None,
) -> MetaserviceResponse:
    """Answer a metaservice request addressed to a client of this server.

    Args:
        db: the server's database.
        conf: the current verified global configuration.
        request: the checked request (``is_metaservice(request.service)``).
        now: the time of the request (kept for the handlers' signature; the
            answers do not depend on it).
        fetch: downloads a service description (default: HTTP(S) with
            :func:`security_server.fetch.fetch_description`).

    Returns:
        The response to sign and send back.

    Raises:
        ValueError: ``request`` is not a metaservice request.
        NotFound: code ``ClientNotFound`` (the provider is not a client of
            this server) or ``ServiceNotFound``.
        AccessDenied: ``getWsdl`` of a service the client may not call.
        MalformedMessage: code ``InvalidBody`` for a bad ``getWsdl`` body.
        TransportError, XmlSecurityError: the WSDL could not be downloaded
            or is not acceptable XML.
    """
    del now
    shared = _shared(conf)
    code = request.service.service_code
    provider = request.service.client
    if code == "listClients":
        body = _wrapper("listClientsResponse")
        _add_members(body, shared, None)
        return _text_response(request, body)
    if code == "listMethods":
        services = await _services(db, provider)
        return _text_response(request, _service_list(code, provider, services))
    if code == "allowedMethods":
        allowed = await _allowed_codes(db, shared, provider, request.client)
        services = [s for s in await _services(db, provider) if s[0] in allowed]
        return _text_response(request, _service_list(code, provider, services))
    if code == "getWsdl":
        return await _get_wsdl(db, shared, request, fetch or fetch_description)
    raise ValueError(f"{code} is not a metaservice")
