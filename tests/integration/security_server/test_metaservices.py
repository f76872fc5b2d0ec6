"""Metaservices answered from the database and the global configuration."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from lxml import etree

from jplink.errors import AccessDenied, NotFound
from jplink.globalconf import (
    GlobalGroup,
    GlobalSettings,
    Member,
    SharedParameters,
    Subsystem,
)
from jplink.identifiers import (
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    ServiceId,
    identifier_from_xml,
)
from jplink.ns import NS_XROAD
from jplink.protocol import (
    MessageRole,
    SoapMessage,
    XRoadHeader,
    build_request,
    parse_content_type,
    parse_multipart,
    parse_soap_message,
)
from jplink.xml import parse_xml
from security_server import access_rights, clients, local_groups, services
from security_server.metaservices import (
    WSDL_ENDPOINT,
    answer_metaservice,
    build_client_list,
    is_metaservice,
)

from .conftest import Server
from .helpers import INSTANCE, OTHER, OWNER, OWNER_NAME, SUBSYSTEM, make_wsdl

PROVIDER = OWNER.subsystem("data")
STRANGER = OTHER.subsystem("nobody")
GROUP = GlobalGroupId(INSTANCE, "friends")


def _shared() -> SharedParameters:
    return SharedParameters(
        instance_identifier=INSTANCE,
        global_settings=GlobalSettings(),
        members=(
            Member(
                OWNER,
                "Commercial",
                OWNER_NAME,
                (Subsystem(SUBSYSTEM), Subsystem(PROVIDER, "Data")),
            ),
            Member(OTHER, "Commercial", "Provider Ltd", (Subsystem(STRANGER),)),
        ),
        global_groups=(GlobalGroup(GROUP, "friends", (OTHER,)),),
    )


def _request(client: ClientId, code: str, body_xml: str = "") -> SoapMessage:
    header = XRoadHeader(
        client=client,
        service=ServiceId(
            PROVIDER.instance, PROVIDER.member_class, PROVIDER.member_code,
            PROVIDER.subsystem_code, code,
        ),
        id="4a6f1d2e-meta",
        protocol_version="4.0",
    )  # fmt: skip
    body = parse_xml(
        f'<xroad:{code} xmlns:xroad="{NS_XROAD}">{body_xml}</xroad:{code}>'.encode()
    )
    data = build_request(header, body)
    return parse_soap_message(data, content_type="text/xml; charset=UTF-8")


def _services(soap: bytes, wrapper: str) -> list[str]:
    message = parse_soap_message(
        soap, content_type="text/xml; charset=UTF-8", role=MessageRole.RESPONSE
    )
    assert message.envelope is not None
    found = message.envelope.findall(
        f".//{{{NS_XROAD}}}{wrapper}/{{{NS_XROAD}}}service"
    )
    ids = [identifier_from_xml(e, ServiceId) for e in found]
    return [i.service_code for i in ids if isinstance(i, ServiceId)]


@pytest.fixture
async def provider(server: Server, now: dt.datetime) -> Server:
    db = server.db
    await clients.add_client(db, "t", PROVIDER, now=now)
    await services.add_wsdl_description(
        db, "t", PROVIDER, url="http://127.0.0.1:8090/wsdl", wsdl=make_wsdl(), now=now
    )
    group = LocalGroupId("team")
    await local_groups.add_local_group(db, "t", PROVIDER, group, now=now)
    await local_groups.add_group_member(db, "t", PROVIDER, group, SUBSYSTEM, now=now)
    await access_rights.grant_access(db, "t", PROVIDER, "getTrades", group, now=now)
    await access_rights.grant_access(db, "t", PROVIDER, "getBalance", GROUP, now=now)
    return server


async def test_list_and_allowed_methods(provider: Server, now: dt.datetime) -> None:
    shared = _shared()
    listed = await answer_metaservice(
        provider.db, shared, _request(STRANGER, "listMethods"), now=now
    )
    assert listed.content_type == "text/xml; charset=UTF-8"
    assert _services(listed.body, "listMethodsResponse") == ["getBalance", "getTrades"]

    # Through the local group only getTrades; the global group gives OTHER
    # (a member, not its subsystem) getBalance.
    mine = await answer_metaservice(
        provider.db, shared, _request(SUBSYSTEM, "allowedMethods"), now=now
    )
    assert _services(mine.body, "allowedMethodsResponse") == ["getTrades"]
    theirs = await answer_metaservice(
        provider.db, shared, _request(OTHER, "allowedMethods"), now=now
    )
    assert _services(theirs.body, "allowedMethodsResponse") == ["getBalance"]
    nobody = await answer_metaservice(
        provider.db, shared, _request(STRANGER, "allowedMethods"), now=now
    )
    assert _services(nobody.body, "allowedMethodsResponse") == []


async def test_list_clients(provider: Server, now: dt.datetime) -> None:
    shared = _shared()
    answer = await answer_metaservice(
        provider.db, shared, _request(SUBSYSTEM, "listClients"), now=now
    )
    root = parse_xml(answer.body)
    members = root.findall(f".//{{{NS_XROAD}}}member/{{{NS_XROAD}}}id")
    ids = [identifier_from_xml(e, ClientId) for e in members]
    assert ids == [OWNER, SUBSYSTEM, PROVIDER, OTHER, STRANGER]
    document = parse_xml(build_client_list(shared))
    assert etree.QName(document).localname == "clientList"
    names = [e.text for e in document.iter(f"{{{NS_XROAD}}}subsystemName")]
    assert names == ["Data"]
    assert is_metaservice(_request(SUBSYSTEM, "getWsdl").service)
    assert not is_metaservice(_request(SUBSYSTEM, "getTrades").service)


async def test_get_wsdl_has_the_vector_shape(
    provider: Server, now: dt.datetime, xroad_vectors: Path
) -> None:
    fetched: list[str] = []

    async def fetch(url: str) -> bytes:
        fetched.append(url)
        return make_wsdl()

    request = _request(
        SUBSYSTEM, "getWsdl", "<xroad:serviceCode>getTrades</xroad:serviceCode>"
    )
    answer = await answer_metaservice(
        provider.db, _shared(), request, now=now, fetch=fetch
    )
    assert fetched == ["http://127.0.0.1:8090/wsdl"]

    vector = (xroad_vectors / "soap-getWsdl-response.mime").read_bytes()
    vector_parts = parse_multipart(vector, "xroadZTLLyIMMYnAYliBumWCqHJYAhutxNf")
    ctype = parse_content_type(answer.content_type)
    assert ctype.media_type == "multipart/related"
    assert ctype.param("type") == "text/xml"
    parts = parse_multipart(answer.body, ctype.param("boundary") or "")
    assert [p.content_type.media_type for p in parts] == [
        p.content_type.media_type for p in vector_parts
    ]
    for ours, theirs in zip(parts, vector_parts, strict=True):
        assert (
            etree.QName(parse_xml(ours.body)).localname
            == etree.QName(parse_xml(theirs.body)).localname
        )
    response = parse_soap_message(
        answer.body, content_type=answer.content_type, role=MessageRole.RESPONSE
    )
    assert response.envelope is not None
    code = response.envelope.find(
        f".//{{{NS_XROAD}}}getWsdlResponse/{{{NS_XROAD}}}serviceCode"
    )
    assert code is not None and code.text == "getTrades"
    wsdl = parse_xml(parts[1].body)
    locations = [e.get("location") for e in wsdl.iter("{*}address")]
    assert locations and set(locations) == {WSDL_ENDPOINT}

    # No access right, no WSDL; an unknown service is not found.
    with pytest.raises(AccessDenied):
        await answer_metaservice(provider.db, _shared(), _request(
            STRANGER, "getWsdl", "<xroad:serviceCode>getTrades</xroad:serviceCode>"
        ), now=now, fetch=fetch)  # fmt: skip
    with pytest.raises(NotFound) as missing:
        await answer_metaservice(provider.db, _shared(), _request(
            SUBSYSTEM, "getWsdl", "<xroad:serviceCode>nothing</xroad:serviceCode>"
        ), now=now, fetch=fetch)  # fmt: skip
    assert missing.value.code == "ServiceNotFound"
