"""Write shared parameters (V6) and private parameters (V3) from the model.

The output is deterministic (same model, same bytes), so the central server can
compare a freshly generated file with the previous one and the file hash in the
signed directory changes only when the content does. Like X-Road's generator we
number members and subsystems ``id0``, ``id1``, ... in document order and refer
to them by IDREF from ``securityServer/owner`` and ``client``; identifiers in
``groupMember`` and ``managementRequestServiceProviderId`` use the identifiers
namespace (prefix ``ns2``). The result validates against
``globalconf/v6/shared-parameters.xsd`` and ``v3/private-parameters.xsd``.
"""

from __future__ import annotations

import base64

from lxml import etree

from ..identifiers import ClientId, identifier_to_xml
from ..ns import NS_XROAD
from ..xml import serialize_xml
from ._xmlutil import add_text, encode_cert
from .anchor import NSMAP, anchor_to_element
from .authorities import ApprovedCA, CaInfo
from .model import (
    MemberClass,
    PrivateParameters,
    SharedParameters,
)

__all__ = ["serialize_private_parameters", "serialize_shared_parameters"]

_CONF = f"{{{NS_XROAD}}}conf"


def _finish(root: etree._Element) -> bytes:
    etree.indent(root, space="    ")
    return serialize_xml(root)


def _member_class(parent: etree._Element, mclass: MemberClass) -> None:
    el = etree.SubElement(parent, "memberClass")
    add_text(el, "code", mclass.code)
    add_text(el, "description", mclass.description)


def _ca_info(parent: etree._Element, tag: str, info: CaInfo) -> None:
    el = etree.SubElement(parent, tag)
    add_text(el, "cert", encode_cert(info.cert))
    for responder in info.ocsp:
        oc = etree.SubElement(el, "ocsp")
        add_text(oc, "url", responder.url)
        if responder.cert is not None:
            add_text(oc, "cert", encode_cert(responder.cert))
        if responder.cost_type is not None:
            add_text(oc, "costType", responder.cost_type.value)


def _approved_ca(parent: etree._Element, ca: ApprovedCA) -> None:
    el = etree.SubElement(parent, "approvedCA")
    add_text(el, "name", ca.name)
    add_text(el, "authenticationOnly", "true" if ca.authentication_only else "false")
    _ca_info(el, "topCA", ca.top_ca)
    for inter in ca.intermediate_cas:
        _ca_info(el, "intermediateCA", inter)
    add_text(el, "certificateProfileInfo", ca.certificate_profile_info)
    if ca.default_csr_format is not None:
        add_text(el, "defaultCsrFormat", ca.default_csr_format.value)
    if ca.acme_server is not None:
        acme = etree.SubElement(el, "acmeServer")
        add_text(acme, "directoryURL", ca.acme_server.directory_url)
        optional = (
            ("ipAddress", ca.acme_server.ip_address),
            (
                "authenticationCertificateProfileId",
                ca.acme_server.authentication_certificate_profile_id,
            ),
            (
                "signingCertificateProfileId",
                ca.acme_server.signing_certificate_profile_id,
            ),
        )
        for name, value in optional:
            if value is not None:
                add_text(acme, name, value)


def serialize_shared_parameters(params: SharedParameters) -> bytes:
    """Write ``shared-params.xml`` in the V6 format.

    Args:
        params: the model (its constructor already checked referential integrity).

    Returns:
        UTF-8 XML bytes, deterministic for a given model.

    Raises:
        ValueError: the model has no ``source`` (V3+ requires at least one).
    """
    if not params.sources:
        raise ValueError("shared parameters V6 need at least one configuration source")
    root = etree.Element(_CONF, nsmap=NSMAP)
    add_text(root, "instanceIdentifier", params.instance_identifier)
    for source in params.sources:
        src = etree.SubElement(root, "source")
        add_text(src, "address", source.address)
        for cert in source.internal_verification_certs:
            add_text(src, "internalVerificationCert", encode_cert(cert))
        for cert in source.external_verification_certs:
            add_text(src, "externalVerificationCert", encode_cert(cert))
    for ca in params.approved_cas:
        _approved_ca(root, ca)
    for tsa in params.approved_tsas:
        el = etree.SubElement(root, "approvedTSA")
        add_text(el, "name", tsa.name)
        add_text(el, "url", tsa.url)
        add_text(el, "cert", encode_cert(tsa.cert))
        if tsa.cost_type is not None:
            add_text(el, "costType", tsa.cost_type.value)
    xml_ids: dict[ClientId, str] = {}
    for member in params.members:
        el = etree.SubElement(root, "member", id=f"id{len(xml_ids)}")
        xml_ids[member.id] = el.get("id", "")
        _member_class(el, MemberClass(member.id.member_class, member.class_description))
        add_text(el, "memberCode", member.id.member_code)
        add_text(el, "name", member.name)
        for sub in member.subsystems:
            sub_el = etree.SubElement(el, "subsystem", id=f"id{len(xml_ids)}")
            xml_ids[sub.id] = sub_el.get("id", "")
            add_text(sub_el, "subsystemCode", sub.id.subsystem_code or "")
            if sub.name is not None:
                add_text(sub_el, "subsystemName", sub.name)
    for server in params.security_servers:
        el = etree.SubElement(root, "securityServer")
        add_text(el, "owner", xml_ids[server.id.owner])
        add_text(el, "serverCode", server.id.server_code)
        if server.address is not None:
            add_text(el, "address", server.address)
        for digest in server.auth_cert_hashes:
            add_text(el, "authCertHash", base64.b64encode(digest).decode("ascii"))
        for client in server.clients:
            add_text(el, "client", xml_ids[client])
        if server.maintenance is not None:
            maint = etree.SubElement(el, "inMaintenanceMode")
            if server.maintenance.message is not None:
                add_text(maint, "message", server.maintenance.message)
    for group in params.global_groups:
        el = etree.SubElement(root, "globalGroup")
        add_text(el, "groupCode", group.id.group_code)
        add_text(el, "description", group.description)
        for member_id in group.members:
            identifier_to_xml(member_id, "groupMember", parent=el)
    for service in params.central_services:
        el = etree.SubElement(root, "centralService")
        add_text(el, "serviceCode", service.service_code)
        if service.implementing_service is not None:
            identifier_to_xml(
                service.implementing_service, "implementingService", parent=el
            )
    settings = etree.SubElement(root, "globalSettings")
    for mclass in params.global_settings.member_classes:
        _member_class(settings, mclass)
    add_text(
        settings,
        "ocspFreshnessSeconds",
        str(params.global_settings.ocsp_freshness_seconds),
    )
    return _finish(root)


def serialize_private_parameters(params: PrivateParameters) -> bytes:
    """Write ``private-params.xml`` in the V3 format.

    Args:
        params: the model.

    Returns:
        UTF-8 XML bytes, deterministic for a given model.
    """
    root = etree.Element(_CONF, nsmap=NSMAP)
    add_text(root, "instanceIdentifier", params.instance_identifier)
    for anchor in params.configuration_anchors:
        anchor_to_element(anchor, "configurationAnchor", parent=root)
    ms = params.management_service
    el = etree.SubElement(root, "managementService")
    add_text(el, "authCertRegServiceAddress", ms.auth_cert_reg_service_address)
    if ms.auth_cert_reg_service_cert is not None:
        add_text(
            el, "authCertRegServiceCert", encode_cert(ms.auth_cert_reg_service_cert)
        )
    identifier_to_xml(ms.provider_id, "managementRequestServiceProviderId", parent=el)
    add_text(
        root, "timeStampingIntervalSeconds", str(params.time_stamping_interval_seconds)
    )
    return _finish(root)
