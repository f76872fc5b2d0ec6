"""Property: parse(serialize(model)) == model for small random models."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from jplink.globalconf import (
    AcmeServer,
    AnchorSource,
    ApprovedCA,
    ApprovedTSA,
    CaInfo,
    CentralService,
    ConfigurationAnchor,
    CostType,
    CsrFormat,
    GlobalGroup,
    GlobalSettings,
    MaintenanceMode,
    ManagementService,
    Member,
    MemberClass,
    OcspResponder,
    PrivateParameters,
    SecurityServer,
    SharedParameters,
    SharedSource,
    Subsystem,
    parse_configuration_anchor,
    parse_private_parameters,
    parse_shared_parameters,
    serialize_configuration_anchor,
    serialize_private_parameters,
    serialize_shared_parameters,
)
from jplink.identifiers import ClientId, GlobalGroupId, SecurityServerId, ServiceId

from .helpers import ec_pair, load_schema

CERTS = [ec_pair(f"pool-{i}")[1] for i in range(3)]

codes = st.text(alphabet="ABCxyz019'()+,-.=?", min_size=1, max_size=6)
# Any text XML 1.0 can carry as element content (no controls, no surrogates).
texts = st.text(
    alphabet=st.characters(exclude_categories=("Cc", "Cs", "Cn")), max_size=12
)
certs = st.sampled_from(CERTS)
maybe = st.none
hashes = st.binary(min_size=32, max_size=32)
ints = st.integers(min_value=0, max_value=10**9)

client_ids = st.builds(ClientId, codes, codes, codes, st.none() | codes)
service_ids = st.builds(
    ServiceId, codes, codes, codes, st.none() | codes, codes, st.none() | codes
)
responders = st.builds(
    OcspResponder, texts, st.none() | certs, st.none() | st.sampled_from(CostType)
)
ca_infos = st.builds(CaInfo, certs, st.lists(responders, max_size=2).map(tuple))
acme = st.builds(
    AcmeServer, texts, st.none() | texts, st.none() | texts, st.none() | texts
)
cas = st.builds(
    ApprovedCA,
    name=texts,
    top_ca=ca_infos,
    certificate_profile_info=texts,
    intermediate_cas=st.lists(ca_infos, max_size=2).map(tuple),
    authentication_only=st.booleans(),
    default_csr_format=st.none() | st.sampled_from(CsrFormat),
    acme_server=st.none() | acme,
)
tsas = st.builds(
    ApprovedTSA, texts, texts, certs, st.none() | st.sampled_from(CostType)
)
sources = st.builds(
    SharedSource,
    texts,
    st.lists(certs, max_size=2).map(tuple),
    st.lists(certs, max_size=2).map(tuple),
)
member_classes = st.builds(MemberClass, codes, texts)


@st.composite
def shared_parameters(draw: st.DrawFn) -> SharedParameters:
    instance = draw(codes)
    member_keys = draw(st.lists(st.tuples(codes, codes), max_size=3, unique=True))
    members = []
    for member_class, member_code in member_keys:
        member_id = ClientId(instance, member_class, member_code)
        sub_codes = draw(st.lists(codes, max_size=2, unique=True))
        subsystems = tuple(
            Subsystem(member_id.subsystem(c), draw(st.none() | texts))
            for c in sub_codes
        )
        members.append(Member(member_id, draw(texts), draw(texts), subsystems))
    all_clients = [m.id for m in members] + [
        s.id for m in members for s in m.subsystems
    ]
    servers = []
    if members:
        server_keys = draw(
            st.lists(
                st.tuples(st.sampled_from(members), codes),
                max_size=3,
                unique_by=lambda t: (t[0].id, t[1]),
            )
        )
        used_hashes: set[bytes] = set()
        for owner, server_code in server_keys:
            own_hashes = tuple(
                h
                for h in draw(st.lists(hashes, max_size=2, unique=True))
                if h not in used_hashes
            )
            used_hashes.update(own_hashes)
            servers.append(
                SecurityServer(
                    SecurityServerId(
                        instance,
                        owner.id.member_class,
                        owner.id.member_code,
                        server_code,
                    ),
                    address=draw(st.none() | texts),
                    auth_cert_hashes=own_hashes,
                    clients=tuple(
                        draw(st.lists(st.sampled_from(all_clients), max_size=3))
                    ),
                    maintenance=draw(
                        st.none() | st.builds(MaintenanceMode, st.none() | texts)
                    ),
                )
            )
    groups = tuple(
        GlobalGroup(
            GlobalGroupId(instance, code),
            draw(texts),
            tuple(draw(st.lists(client_ids, max_size=2))),
        )
        for code in draw(st.lists(codes, max_size=2, unique=True))
    )
    return SharedParameters(
        instance_identifier=instance,
        global_settings=GlobalSettings(
            tuple(draw(st.lists(member_classes, max_size=2))), draw(ints)
        ),
        sources=tuple(draw(st.lists(sources, min_size=1, max_size=2))),
        approved_cas=tuple(draw(st.lists(cas, max_size=2))),
        approved_tsas=tuple(draw(st.lists(tsas, max_size=2))),
        members=tuple(members),
        security_servers=tuple(servers),
        global_groups=groups,
        central_services=tuple(
            draw(
                st.lists(
                    st.builds(CentralService, texts, st.none() | service_ids),
                    max_size=2,
                )
            )
        ),
    )


datetimes = st.datetimes(
    min_value=dt.datetime(2000, 1, 1),
    max_value=dt.datetime(2100, 1, 1),
    timezones=st.just(dt.UTC),
)
anchors = st.builds(
    ConfigurationAnchor,
    codes,
    st.lists(
        st.builds(
            AnchorSource, texts, st.lists(certs, min_size=1, max_size=2).map(tuple)
        ),
        min_size=1,
        max_size=2,
    ).map(tuple),
    st.none() | datetimes,
)
private_parameters = st.builds(
    PrivateParameters,
    codes,
    st.builds(ManagementService, texts, client_ids, st.none() | certs),
    ints,
    st.lists(anchors, max_size=2).map(tuple),
)


@pytest.fixture(scope="module")
def shared_schema(xroad_vectors):
    return load_schema(xroad_vectors, "xsd-shared-parameters-v6.xsd")


@pytest.fixture(scope="module")
def private_schema(xroad_vectors):
    return load_schema(xroad_vectors, "xsd-private-parameters-v3.xsd")


@settings(max_examples=60, deadline=None)
@given(params=shared_parameters())
def test_shared_parameters_round_trip(shared_schema, params):
    out = serialize_shared_parameters(params)
    shared_schema.assertValid(etree.fromstring(out).getroottree())
    assert parse_shared_parameters(out) == params
    assert serialize_shared_parameters(params) == out


@settings(max_examples=60, deadline=None)
@given(params=private_parameters)
def test_private_parameters_round_trip(private_schema, params):
    out = serialize_private_parameters(params)
    private_schema.assertValid(etree.fromstring(out).getroottree())
    assert parse_private_parameters(out) == params


@settings(max_examples=40, deadline=None)
@given(anchors)
def test_anchor_round_trip(anchor):
    assert parse_configuration_anchor(serialize_configuration_anchor(anchor)) == anchor
