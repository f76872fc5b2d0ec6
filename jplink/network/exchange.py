"""The network's first exchange, and what an operator needs to make more.

One request from A's side: an X-Road SOAP request of A's subsystem for the
provider's ``municipalityByCode`` service, POSTed to A's client proxy; it is
signed by A, checked and answered by B (which calls the adapter), and the
answer's ``requestHash`` must be the base64 SHA-512 of exactly the bytes
sent (PR-MESS: "the requestHash ... is calculated over the request message").
The request is also written to ``request.xml`` for the printed ``curl``.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass

from jplink.errors import InvalidSignature, RemoteProtocolError
from jplink.ns import NS_XROAD
from jplink.xml import parse_xml

from .context import INSTANCE, SERVERS
from .http import call

__all__ = [
    "DEMO_CODE",
    "DEMO_SERVICE",
    "ExchangeResult",
    "curl_command",
    "demo_request",
    "exchange",
    "sha512_b64",
    "zeep_snippet",
]

DEMO_SERVICE = "municipalityByCode"
DEMO_CODE = "131016"
_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


@dataclass(frozen=True, slots=True)
class ExchangeResult:
    """A verified answer: its requestHash matched what was sent."""

    status: int
    request_hash: str
    body: bytes


def demo_request(namespace: str, *, query_id: str | None = None) -> bytes:
    """The X-Road 4.0 SOAP request of A's subsystem for :data:`DEMO_SERVICE`.

    Args:
        namespace: the service's body namespace (the WSDL target namespace).
        query_id: the message id (default: a new UUID).
    """
    consumer, provider = SERVERS[1], SERVERS[2]
    text = f"""<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="{_SOAP_ENV}"
    xmlns:xroad="{NS_XROAD}" xmlns:id="http://x-road.eu/xsd/identifiers"
    xmlns:m="{namespace}">
  <SOAP-ENV:Header>
    <xroad:client id:objectType="SUBSYSTEM">
      <id:xRoadInstance>{INSTANCE}</id:xRoadInstance>
      <id:memberClass>{consumer.member_class}</id:memberClass>
      <id:memberCode>{consumer.member_code}</id:memberCode>
      <id:subsystemCode>{consumer.subsystem}</id:subsystemCode>
    </xroad:client>
    <xroad:service id:objectType="SERVICE">
      <id:xRoadInstance>{INSTANCE}</id:xRoadInstance>
      <id:memberClass>{provider.member_class}</id:memberClass>
      <id:memberCode>{provider.member_code}</id:memberCode>
      <id:subsystemCode>{provider.subsystem}</id:subsystemCode>
      <id:serviceCode>{DEMO_SERVICE}</id:serviceCode>
      <id:serviceVersion>v1</id:serviceVersion>
    </xroad:service>
    <xroad:id>{query_id or uuid.uuid4()}</xroad:id>
    <xroad:userId>demo</xroad:userId>
    <xroad:protocolVersion>4.0</xroad:protocolVersion>
  </SOAP-ENV:Header>
  <SOAP-ENV:Body>
    <m:{DEMO_SERVICE}>
      <m:code>{DEMO_CODE}</m:code>
    </m:{DEMO_SERVICE}>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>
"""
    return text.encode("utf-8")


def sha512_b64(data: bytes) -> str:
    """Base64 of the SHA-512 digest of ``data``."""
    return base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def exchange(
    client_proxy_url: str, request: bytes, *, timeout: float = 60.0
) -> ExchangeResult:
    """POST ``request`` to a client proxy and check the answer.

    Returns:
        The answer, whose ``requestHash`` equals the SHA-512 of ``request``.

    Raises:
        TransportError: the client proxy is unreachable.
        RemoteProtocolError: the answer is a fault, or not SOAP.
        InvalidSignature: code ``InconsistentResponse``; the requestHash
            does not match what was sent.
    """
    answer = call(
        "POST",
        client_proxy_url,
        body=request,
        headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": '""'},
        timeout=timeout,
    )
    root = parse_xml(answer.body)
    fault = root.find(f"{{{_SOAP_ENV}}}Body/{{{_SOAP_ENV}}}Fault")
    if answer.status != 200 or fault is not None:
        code = fault.findtext("faultcode") if fault is not None else None
        text = fault.findtext("faultstring") if fault is not None else None
        raise RemoteProtocolError(
            f"The exchange failed with HTTP {answer.status}: {code}: {text}",
            code=code or "ExchangeFailed",
        )
    found = root.findtext(f"{{{_SOAP_ENV}}}Header/{{{NS_XROAD}}}requestHash")
    expected = sha512_b64(request)
    if found is None or found.strip() != expected:
        raise InvalidSignature(
            f"requestHash {found!r} is not the SHA-512 of the request ({expected})",
            code="InconsistentResponse",
        )
    return ExchangeResult(answer.status, expected, answer.body)


def curl_command(client_proxy_url: str, request_file: str) -> str:
    """A ready ``curl`` call of the demo service through A."""
    return (
        f"curl -s -H 'Content-Type: text/xml; charset=UTF-8' "
        f"--data-binary @{request_file} {client_proxy_url}"
    )


def zeep_snippet(client_proxy_url: str, wsdl_url: str) -> str:
    """A zeep client calling the demo service through A (X-Road headers)."""
    consumer, provider = SERVERS[1], SERVERS[2]
    return f"""\
import uuid
from zeep import Client

client = Client("{wsdl_url}")
client.service._binding_options["address"] = "{client_proxy_url}"
header = {{
    "client": {{"objectType": "SUBSYSTEM", "xRoadInstance": "{INSTANCE}",
               "memberClass": "{consumer.member_class}",
               "memberCode": "{consumer.member_code}",
               "subsystemCode": "{consumer.subsystem}"}},
    "service": {{"objectType": "SERVICE", "xRoadInstance": "{INSTANCE}",
                "memberClass": "{provider.member_class}",
                "memberCode": "{provider.member_code}",
                "subsystemCode": "{provider.subsystem}",
                "serviceCode": "{DEMO_SERVICE}", "serviceVersion": "v1"}},
    "id": str(uuid.uuid4()), "userId": "demo", "protocolVersion": "4.0",
}}
print(client.service.{DEMO_SERVICE}(code="{DEMO_CODE}", _soapheaders=header))"""
