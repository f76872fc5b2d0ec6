"""Test material for the security server: anchors, WSDLs, identifiers."""

from __future__ import annotations

import datetime as dt

from jplink.globalconf import (
    AnchorSource,
    ConfigurationAnchor,
    serialize_configuration_anchor,
)
from jplink.identifiers import ClientId
from jplink.security.certs import (
    CertProfile,
    MemberSubject,
    build_ca_certificate,
    build_subject_name,
)
from jplink.security.keys import KeyType, generate_private_key
from wsdl import WsdlField, WsdlOperation, WsdlSpec, XsdType, build_wsdl

INSTANCE = "JP-TEST"
OWNER = ClientId(INSTANCE, "COM", "1111")
OWNER_NAME = "Consumer Ltd"
SERVER_CODE = "ss1"
PIN = "correct horse 1"
SUBSYSTEM = OWNER.subsystem("client")
OTHER = ClientId(INSTANCE, "COM", "2222")
PROVIDER_SUB = OTHER.subsystem("data")


def make_anchor(now: dt.datetime, instance: str = INSTANCE) -> bytes:
    """A configuration anchor with a fresh (throw-away) verification certificate."""
    key = generate_private_key(KeyType.EC)
    subject = build_subject_name(
        CertProfile.SIGN, MemberSubject(instance, "GOV", "0000", "Central")
    )
    cert = build_ca_certificate(subject, key, now=now, validity=dt.timedelta(days=30))
    anchor = ConfigurationAnchor(
        instance_identifier=instance,
        sources=(AnchorSource("http://127.0.0.1:9/internalconf", (cert,)),),
        generated_at=now,
    )
    return serialize_configuration_anchor(anchor)


def make_wsdl(address: str = "http://127.0.0.1:8090/soap") -> bytes:
    """A WSDL with two operations (one titled), as the adapter server makes."""
    return build_wsdl(
        WsdlSpec(
            name="data",
            namespace="http://example.jp/data",
            address=address,
            operations=(
                WsdlOperation(
                    code="getTrades",
                    version="v1",
                    title="Trades of a day",
                    inputs=(WsdlField("day", XsdType.DATE, required=True),),
                    row=(WsdlField("amount", XsdType.DECIMAL),),
                ),
                WsdlOperation(code="getBalance", version="v2"),
            ),
        )
    )
