"""Read shared and private parameters (untrusted bytes) into the typed model.

One reader serves versions 3 to 6 of shared parameters: V4-V6 only add optional
elements (``subsystemName``, ``inMaintenanceMode``, ``costType``,
``defaultCsrFormat``, ``acmeServer``), which the reader accepts wherever the V6
schema allows them. Certificates may be base64 of DER or of PEM text. Trailing
namespace-qualified extension elements (the schemas' ``xs:any``) are ignored.

Parse the bytes only after :func:`~jplink.globalconf.verify.verify_file`
accepted them: parsing is not a trust decision.
"""

from __future__ import annotations

from typing import TypeVar

from lxml import etree

from ..errors import GlobalConfError, InvalidRequest, MalformedMessage
from ..identifiers import (
    ClientId,
    GlobalGroupId,
    SecurityServerId,
    ServiceId,
    identifier_from_xml,
)
from ..ns import NS_XROAD
from ..xml import parse_xml
from ._xmlutil import (
    Children,
    decode_base64,
    decode_cert,
    parse_bool,
    parse_int,
    text_of,
)
from .anchor import anchor_from_element
from .authorities import (
    AcmeServer,
    ApprovedCA,
    ApprovedTSA,
    CaInfo,
    CostType,
    CsrFormat,
    OcspResponder,
)
from .model import (
    CentralService,
    GlobalGroup,
    GlobalSettings,
    MaintenanceMode,
    ManagementService,
    Member,
    MemberClass,
    PrivateParameters,
    SecurityServer,
    SharedParameters,
    SharedSource,
    Subsystem,
)

__all__ = ["parse_private_parameters", "parse_shared_parameters"]

_CONF = f"{{{NS_XROAD}}}conf"


def _root(data: bytes, what: str) -> etree._Element:
    root = parse_xml(data)
    if root.tag != _CONF:
        raise GlobalConfError(f"Not {what}: root element is {root.tag!r}")
    return root


def _opt_text(el: etree._Element | None) -> str | None:
    return None if el is None else text_of(el)


_E = TypeVar("_E", CostType, CsrFormat)
_I = TypeVar("_I", ClientId, ServiceId)


def _enum_value(kind: type[_E], el: etree._Element) -> _E:
    raw = text_of(el).strip()
    try:
        return kind(raw)
    except ValueError:
        raise GlobalConfError(
            f"<{etree.QName(el).localname}> has the unknown value {raw[:40]!r}"
        ) from None


def _client_id(*parts: str | None) -> ClientId:
    try:
        return ClientId(*parts)  # type: ignore[arg-type]
    except InvalidRequest as exc:
        raise GlobalConfError(f"Invalid identifier: {exc.message}") from exc


def _identifier(el: etree._Element, kind: type[_I]) -> _I:
    try:
        ident = identifier_from_xml(el, kind)
    except MalformedMessage as exc:
        raise GlobalConfError(f"<{etree.QName(el).localname}>: {exc.message}") from exc
    assert isinstance(ident, kind)  # identifier_from_xml checked `expected`
    return ident


def _member_class(el: etree._Element, path: str) -> MemberClass:
    kids = Children(el, path)
    code = text_of(kids.required("code"))
    description = text_of(kids.required("description"))
    kids.end()
    return MemberClass(code, description)


def _ca_info(el: etree._Element, path: str) -> CaInfo:
    kids = Children(el, path)
    cert = decode_cert(kids.required("cert"))
    responders = []
    for oc in kids.many("ocsp"):
        okids = Children(oc, f"{path}/ocsp")
        url = text_of(okids.required("url"))
        ocert = okids.optional("cert")
        cost = okids.optional("costType")
        okids.end()
        responders.append(
            OcspResponder(
                url=url,
                cert=decode_cert(ocert) if ocert is not None else None,
                cost_type=_enum_value(CostType, cost) if cost is not None else None,
            )
        )
    kids.end()
    return CaInfo(cert, tuple(responders))


def _approved_ca(el: etree._Element) -> ApprovedCA:
    path = "conf/approvedCA"
    kids = Children(el, path)
    name = text_of(kids.required("name"))
    auth_only = kids.optional("authenticationOnly")
    top = _ca_info(kids.required("topCA"), f"{path}/topCA")
    inter = tuple(
        _ca_info(i, f"{path}/intermediateCA") for i in kids.many("intermediateCA")
    )
    profile = text_of(kids.required("certificateProfileInfo"))
    csr = kids.optional("defaultCsrFormat")
    acme_el = kids.optional("acmeServer")
    kids.end()
    acme = None
    if acme_el is not None:
        akids = Children(acme_el, f"{path}/acmeServer")
        acme = AcmeServer(
            directory_url=text_of(akids.required("directoryURL")),
            ip_address=_opt_text(akids.optional("ipAddress")),
            authentication_certificate_profile_id=_opt_text(
                akids.optional("authenticationCertificateProfileId")
            ),
            signing_certificate_profile_id=_opt_text(
                akids.optional("signingCertificateProfileId")
            ),
        )
        akids.end()
    return ApprovedCA(
        name=name,
        top_ca=top,
        certificate_profile_info=profile,
        intermediate_cas=inter,
        authentication_only=parse_bool(auth_only) if auth_only is not None else False,
        default_csr_format=_enum_value(CsrFormat, csr) if csr is not None else None,
        acme_server=acme,
    )


def _approved_tsa(el: etree._Element) -> ApprovedTSA:
    kids = Children(el, "conf/approvedTSA")
    name = text_of(kids.required("name"))
    url = text_of(kids.required("url"))
    cert = decode_cert(kids.required("cert"))
    cost = kids.optional("costType")
    kids.end()
    return ApprovedTSA(
        name, url, cert, _enum_value(CostType, cost) if cost is not None else None
    )


def _xml_id(el: etree._Element, refs: dict[str, ClientId], ident: ClientId) -> None:
    xml_id = el.get("id")
    if xml_id is None:
        return
    if xml_id in refs:
        raise GlobalConfError(f"Duplicate xml id {xml_id[:40]!r} in shared parameters")
    refs[xml_id] = ident


def _member(el: etree._Element, instance: str, refs: dict[str, ClientId]) -> Member:
    path = "conf/member"
    kids = Children(el, path)
    mclass = _member_class(kids.required("memberClass"), f"{path}/memberClass")
    code = text_of(kids.required("memberCode"))
    name = text_of(kids.required("name"))
    member_id = _client_id(instance, mclass.code, code)
    _xml_id(el, refs, member_id)
    subsystems = []
    for sub in kids.many("subsystem"):
        skids = Children(sub, f"{path}/subsystem")
        sub_id = _client_id(
            instance, mclass.code, code, text_of(skids.required("subsystemCode"))
        )
        sub_name = _opt_text(skids.optional("subsystemName"))
        skids.end()
        _xml_id(sub, refs, sub_id)
        subsystems.append(Subsystem(sub_id, sub_name))
    kids.end()
    return Member(member_id, mclass.description, name, tuple(subsystems))


def _resolve(el: etree._Element, refs: dict[str, ClientId]) -> ClientId:
    ref = text_of(el).strip()
    try:
        return refs[ref]
    except KeyError:
        raise GlobalConfError(
            f"<{etree.QName(el).localname}> refers to the unknown id {ref[:40]!r}"
        ) from None


def _security_server(el: etree._Element, refs: dict[str, ClientId]) -> SecurityServer:
    path = "conf/securityServer"
    kids = Children(el, path)
    owner = _resolve(kids.required("owner"), refs)
    if owner.subsystem_code is not None:
        raise GlobalConfError(f"{path}: the owner must be a member, not {owner}")
    code = text_of(kids.required("serverCode"))
    address = _opt_text(kids.optional("address"))
    hashes = tuple(
        decode_base64(text_of(h), f"{path}/authCertHash")
        for h in kids.many("authCertHash")
    )
    clients = tuple(_resolve(c, refs) for c in kids.many("client"))
    maint_el = kids.optional("inMaintenanceMode")
    kids.end()
    maintenance = None
    if maint_el is not None:
        mkids = Children(maint_el, f"{path}/inMaintenanceMode")
        maintenance = MaintenanceMode(_opt_text(mkids.optional("message")))
        mkids.end()
    try:
        server_id = SecurityServerId(
            owner.instance, owner.member_class, owner.member_code, code
        )
    except InvalidRequest as exc:
        raise GlobalConfError(f"{path}: {exc.message}") from exc
    return SecurityServer(server_id, address, hashes, clients, maintenance)


def _global_group(el: etree._Element, instance: str) -> GlobalGroup:
    path = "conf/globalGroup"
    kids = Children(el, path)
    code = text_of(kids.required("groupCode"))
    description = text_of(kids.required("description"))
    members = tuple(_identifier(m, ClientId) for m in kids.many("groupMember"))
    kids.end()
    try:
        group_id = GlobalGroupId(instance, code)
    except InvalidRequest as exc:
        raise GlobalConfError(f"{path}: {exc.message}") from exc
    return GlobalGroup(group_id, description, members)


def _central_service(el: etree._Element) -> CentralService:
    kids = Children(el, "conf/centralService")
    code = text_of(kids.required("serviceCode"))
    impl = kids.optional("implementingService")
    kids.end()
    return CentralService(
        code, _identifier(impl, ServiceId) if impl is not None else None
    )


def _source(el: etree._Element) -> SharedSource:
    kids = Children(el, "conf/source")
    address = text_of(kids.required("address"))
    internal = tuple(decode_cert(c) for c in kids.many("internalVerificationCert"))
    external = tuple(decode_cert(c) for c in kids.many("externalVerificationCert"))
    kids.end()
    return SharedSource(address, internal, external)


def parse_shared_parameters(data: bytes) -> SharedParameters:
    """Parse ``shared-params.xml`` (V3 to V6).

    Args:
        data: the file as downloaded (its hash already verified).

    Returns:
        The model, with IDREFs resolved to identifiers.

    Raises:
        XmlSecurityError: malformed XML, a DTD or an entity.
        GlobalConfError: wrong root, missing/misordered/malformed elements,
            dangling or duplicate ids, invalid identifiers or certificates.
    """
    root = _root(data, "shared parameters")
    kids = Children(root, "conf")
    instance = text_of(kids.required("instanceIdentifier")).strip()
    sources = tuple(_source(s) for s in kids.many("source"))
    cas = tuple(_approved_ca(c) for c in kids.many("approvedCA"))
    tsas = tuple(_approved_tsa(t) for t in kids.many("approvedTSA"))
    refs: dict[str, ClientId] = {}
    members = tuple(_member(m, instance, refs) for m in kids.many("member"))
    servers = tuple(_security_server(s, refs) for s in kids.many("securityServer"))
    groups = tuple(_global_group(g, instance) for g in kids.many("globalGroup"))
    central = tuple(_central_service(c) for c in kids.many("centralService"))
    settings_el = kids.required("globalSettings")
    kids.end(allow_extension=True)
    skids = Children(settings_el, "conf/globalSettings")
    classes = tuple(
        _member_class(c, "conf/globalSettings/memberClass")
        for c in skids.many("memberClass")
    )
    freshness = parse_int(skids.required("ocspFreshnessSeconds"))
    skids.end()
    try:
        return SharedParameters(
            instance_identifier=instance,
            global_settings=GlobalSettings(classes, freshness),
            sources=sources,
            approved_cas=cas,
            approved_tsas=tsas,
            members=members,
            security_servers=servers,
            global_groups=groups,
            central_services=central,
        )
    except ValueError as exc:
        raise GlobalConfError(str(exc)) from exc


def parse_private_parameters(data: bytes) -> PrivateParameters:
    """Parse ``private-params.xml`` (V2/V3 structure).

    Args:
        data: the file as downloaded (its hash already verified).

    Returns:
        The model.

    Raises:
        XmlSecurityError: malformed XML, a DTD or an entity.
        GlobalConfError: wrong root, missing/misordered/malformed elements.
    """
    root = _root(data, "private parameters")
    kids = Children(root, "conf")
    instance = text_of(kids.required("instanceIdentifier")).strip()
    anchors = tuple(
        anchor_from_element(a, "conf/configurationAnchor")
        for a in kids.many("configurationAnchor")
    )
    ms_el = kids.required("managementService")
    interval = parse_int(kids.required("timeStampingIntervalSeconds"))
    kids.end(allow_extension=True)
    mkids = Children(ms_el, "conf/managementService")
    address = text_of(mkids.required("authCertRegServiceAddress"))
    cert_el = mkids.optional("authCertRegServiceCert")
    provider = _identifier(
        mkids.required("managementRequestServiceProviderId"), ClientId
    )
    mkids.end()
    return PrivateParameters(
        instance_identifier=instance,
        management_service=ManagementService(
            auth_cert_reg_service_address=address,
            provider_id=provider,
            auth_cert_reg_service_cert=(
                decode_cert(cert_el) if cert_el is not None else None
            ),
        ),
        time_stamping_interval_seconds=interval,
        configuration_anchors=anchors,
    )
