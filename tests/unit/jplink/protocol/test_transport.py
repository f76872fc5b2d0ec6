"""The security-server transport message: wire format, round trips, negatives, interop.

Wire bytes are checked literally for one case (PR-MESSTRANSP §4.2's layout),
and every built message is also split by the standard library's ``email``
parser, an independent MIME implementation. The interop case signs the real
X-Road vector request with the real consumer key and verifies it back.
"""

from __future__ import annotations

import datetime as dt
import email.parser
import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from hypothesis import given, settings
from hypothesis import strategies as st

from jplink.errors import InvalidSignature, MalformedMessage, SoapFault
from jplink.protocol.faults import build_fault
from jplink.protocol.mime import MimePart, build_multipart
from jplink.protocol.soap import MessageRole, parse_soap_message
from jplink.protocol.transport import (
    PartType,
    TransportMessage,
    build_transport_message,
    parse_transport_message,
    signed_parts_of,
)
from jplink.security.signature import sign_batch, sign_message, verify_signature

SOAP = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Envelope>a\xc3\xa4\xc3\xb5</Envelope>\n'
)
SIGNATURE = b"<asic:XAdESSignatures/>"
OCSP = (b"\x30\x03\x0a\x01\x00", b"\x30\x03\x0a\x01\x01")
SWA_TYPE = "multipart/related; charset=UTF-8; boundary=jetty771207119h3h10dty"
MTOM_TYPE = (
    'Multipart/Related; start-info="application/soap+xml"; '
    'type="application/xop+xml"; boundary="jetty771207119h3h10dty"'
)


def _soap_part(body: bytes = SOAP) -> MimePart:
    return MimePart.create([("Content-Type", "text/xml; charset=UTF-8")], body)


def _message(**kwargs: Any) -> TransportMessage:
    kwargs.setdefault("soap_part", _soap_part())
    kwargs.setdefault("signature", SIGNATURE)
    return TransportMessage(**kwargs)


def _attachment(body: bytes, *headers: tuple[str, str]) -> MimePart:
    return MimePart.create(
        headers or [("Content-Type", "application/octet-stream")], body
    )


def _email_parts(content_type: str, body: bytes) -> list[EmailMessage]:
    raw = f"Content-Type: {content_type}\r\n\r\n".encode() + body
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return [p for p in msg.iter_parts() if isinstance(p, EmailMessage)]


# --------------------------------------------------------------------------
# Wire format


def test_simple_request_wire_bytes() -> None:
    message = _message(ocsp_responses=OCSP[:1])
    encoded = build_transport_message(message, boundary_id="0123")
    assert encoded.content_type == "multipart/mixed; charset=UTF-8; boundary=xtop0123"
    assert encoded.body == (
        b"--xtop0123\r\n"
        b"Content-Type: application/ocsp-response\r\n\r\n" + OCSP[0] + b"\r\n"
        b"--xtop0123\r\n"
        b"Content-Type: text/xml; charset=UTF-8\r\n\r\n" + SOAP + b"\r\n"
        b"--xtop0123\r\n"
        b"Content-Type: signature/bdoc-1.0/ts\r\n\r\n" + SIGNATURE + b"\r\n"
        b"--xtop0123--\r\n"
    )
    assert parse_transport_message(encoded.body, encoded.content_type) == message


def test_request_with_attachments_and_hash_chain_in_order() -> None:
    attachments = (
        _attachment(
            b"aGVsbG8=",
            ("Content-Type", "application/octet-stream"),
            ("Content-Transfer-Encoding", "base64"),
            ("Content-Id", "<data.bin>"),
        ),
        _attachment(b"plain\r\ntext", ("Content-Type", "text/plain; charset=UTF-8")),
    )
    message = _message(
        ocsp_responses=OCSP,
        attachments=attachments,
        hash_chain_result=b"<result/>",
        hash_chain=b"<chain/>",
    )
    encoded = build_transport_message(message)
    parts = _email_parts(encoded.content_type, encoded.body)
    # (email reads X-Road's two-slash signature type as invalid: compare text)
    assert [p["Content-Type"].split(";")[0] for p in parts] == [
        PartType.OCSP_RESPONSE.value,
        PartType.OCSP_RESPONSE.value,
        "text/xml",
        "multipart/mixed",
        PartType.HASH_CHAIN_RESULT.value,
        PartType.HASH_CHAIN.value,
        PartType.SIGNATURE.value,
    ]
    nested = parts[3]
    top = encoded.content_type.rsplit("=", 1)[1]
    assert top.startswith("xtop")
    assert nested.get_param("boundary") == "xatt" + top[4:]
    inner = list(nested.iter_parts())
    assert inner[0]["Content-Id"] == "<data.bin>"
    # Not transfer-decoded: the raw base64 text is what is signed.
    assert inner[0].get_payload(decode=False) == "aGVsbG8="
    parsed = parse_transport_message(encoded.body, encoded.content_type)
    assert parsed == message
    assert parsed.attachments[0].raw_headers == attachments[0].raw_headers
    assert parsed.is_batch_signature


def test_response_has_no_ocsp_parts() -> None:
    encoded = build_transport_message(_message())
    parsed = parse_transport_message(
        encoded.body, encoded.content_type, role=MessageRole.RESPONSE
    )
    assert parsed.ocsp_responses == ()
    with_ocsp = build_transport_message(_message(ocsp_responses=OCSP))
    with pytest.raises(MalformedMessage) as info:
        parse_transport_message(
            with_ocsp.body, with_ocsp.content_type, role=MessageRole.RESPONSE
        )
    assert info.value.code == "InvalidMessage"


def test_signed_parts_name_message_and_attachments() -> None:
    message = _message(
        attachments=(
            _attachment(b"one", ("Content-Type", "text/plain")),
            _attachment(b"two"),
        )
    )
    parts = signed_parts_of(message)
    assert [(p.uri, p.data, p.mime_type) for p in parts] == [
        ("/message.xml", SOAP, "text/xml"),
        ("/attachment1", b"one", "text/plain"),
        ("/attachment2", b"two", "application/octet-stream"),
    ]


def test_constructor_refuses_inconsistent_messages() -> None:
    with pytest.raises(ValueError):
        _message(soap_part=_attachment(SOAP))
    with pytest.raises(ValueError):
        _message(signature=b"")
    with pytest.raises(ValueError):
        _message(hash_chain_result=b"<r/>")
    with pytest.raises(ValueError):
        _message(ocsp_responses=(b"",))


# --------------------------------------------------------------------------
# X-Road vectors: SwA and MTOM pass-through, and a signed request


@pytest.mark.parametrize(
    ("vector", "content_type", "soap_type"),
    [
        ("soap-swa-attachment-request.mime", SWA_TYPE, "text/xml"),
        ("soap-mtom-request.mime", MTOM_TYPE, "application/xop+xml"),
    ],
)
def test_vector_attachments_pass_through(
    xroad_vectors: Path, vector: str, content_type: str, soap_type: str
) -> None:
    soap = parse_soap_message(
        (xroad_vectors / vector).read_bytes(), content_type=content_type
    )
    assert soap.attachments
    message = TransportMessage.for_soap(
        soap, signature=SIGNATURE, ocsp_responses=OCSP[:1]
    )
    encoded = build_transport_message(message)
    parsed = parse_transport_message(
        encoded.body, encoded.content_type, role=MessageRole.REQUEST
    )
    assert parsed.soap == soap.soap
    assert soap.soap_part is not None
    assert parsed.soap_part.raw_headers == soap.soap_part.raw_headers
    assert parsed.soap_part.content_type.media_type == soap_type
    assert [a.raw_headers for a in parsed.attachments] == [
        a.raw_headers for a in soap.attachments
    ]
    assert [a.body for a in parsed.attachments] == [a.body for a in soap.attachments]
    if vector.startswith("soap-swa"):
        assert parsed.attachments[0].header("Client-Header") == "FooBar"


def _consumer(xroad_vectors: Path) -> tuple[Any, x509.Certificate]:
    key = load_pem_private_key(
        (xroad_vectors / "pki-cyber-consumer.key").read_bytes(), password=None
    )
    cert = x509.load_pem_x509_certificate(
        (xroad_vectors / "pki-cyber-consumer.pem").read_bytes()
    )
    return key, cert


def test_signed_vector_request_verifies_after_transport(xroad_vectors: Path) -> None:
    soap = parse_soap_message(
        (xroad_vectors / "soap-getstate-request.xml").read_bytes(),
        content_type="text/xml; charset=utf-8",
    )
    key, cert = _consumer(xroad_vectors)
    unsigned = TransportMessage.for_soap(soap, signature=b"-")
    signed_at = dt.datetime(2020, 1, 1, 12, 0, tzinfo=dt.UTC)
    signature = sign_message(
        signed_parts_of(unsigned), key=key, cert=cert, signing_time=signed_at
    )
    message = TransportMessage.for_soap(soap, signature=signature, ocsp_responses=OCSP)
    encoded = build_transport_message(message)
    parsed = parse_transport_message(
        encoded.body, encoded.content_type, role=MessageRole.REQUEST
    )
    parts = {p.uri: p.data for p in signed_parts_of(parsed)}
    verified = verify_signature(parsed.signature, parts=parts, now=signed_at)
    assert verified.signer_certificate == cert
    assert verified.signed_uris == {"/message.xml"}
    assert parsed.soap == (xroad_vectors / "soap-getstate-request.xml").read_bytes()
    # One flipped byte in the SOAP part on the wire breaks the signature.
    index = encoded.body.index(b"getState")
    tampered = encoded.body[:index] + b"G" + encoded.body[index + 1 :]
    bad = parse_transport_message(tampered, encoded.content_type)
    with pytest.raises(InvalidSignature):
        verify_signature(
            bad.signature,
            parts={p.uri: p.data for p in signed_parts_of(bad)},
            now=signed_at,
        )


def test_batch_signed_swa_request_verifies_after_transport(xroad_vectors: Path) -> None:
    soap = parse_soap_message(
        (xroad_vectors / "soap-swa-attachment-request.mime").read_bytes(),
        content_type=SWA_TYPE,
    )
    key, cert = _consumer(xroad_vectors)
    parts = signed_parts_of(TransportMessage.for_soap(soap, signature=b"-"))
    signed_at = dt.datetime(2020, 1, 1, 12, 0, tzinfo=dt.UTC)
    [batch] = sign_batch([parts], key=key, cert=cert, signing_time=signed_at)
    assert batch.hash_chain is not None  # attachments force a hash chain
    message = TransportMessage.for_soap(
        soap,
        signature=batch.signature_xml,
        ocsp_responses=OCSP,
        hash_chain_result=batch.hash_chain_result,
        hash_chain=batch.hash_chain,
    )
    encoded = build_transport_message(message)
    parsed = parse_transport_message(encoded.body, encoded.content_type)
    verified = verify_signature(
        parsed.signature,
        parts={p.uri: p.data for p in signed_parts_of(parsed)},
        hash_chain_result=parsed.hash_chain_result,
        hash_chain=parsed.hash_chain,
        now=signed_at,
    )
    assert verified.signed_uris == {p.uri for p in parts}


# --------------------------------------------------------------------------
# Negatives: every defect gives a clear error with X-Road's code


def _wire(*parts: tuple[str, bytes], boundary: str = "xtopB") -> tuple[bytes, str]:
    mime = [MimePart.create([("Content-Type", ct)], body) for ct, body in parts]
    return build_multipart(mime, boundary), f"multipart/mixed; boundary={boundary}"


_OCSP = ("application/ocsp-response", OCSP[0])
_SOAP = ("text/xml; charset=UTF-8", SOAP)
_SIG = ("signature/bdoc-1.0/ts", SIGNATURE)
_HCR = ("application/hash-chain-result", b"<r/>")
_HC = ("application/hash-chain", b"<c/>")
_ATT = ("multipart/mixed; boundary=xattB", b"--xattB\r\n\r\nx\r\n--xattB--\r\n")

NEGATIVES = [
    pytest.param([_OCSP, _SIG], "MissingSoap", id="no-soap"),
    pytest.param([_OCSP], "MissingSoap", id="only-ocsp"),
    pytest.param([_OCSP, _SOAP], "MissingSignature", id="no-signature"),
    pytest.param([_SOAP, _ATT], "MissingSignature", id="attachments-no-signature"),
    pytest.param(
        [_SOAP, ("signature/bdoc-1.0/ts", b" ")],
        "MissingSignature",
        id="empty-signature",
    ),
    pytest.param([_SOAP, _SIG, _SIG], "InvalidMessage", id="two-signatures"),
    pytest.param([_SOAP, _SIG, _OCSP], "InvalidMessage", id="content-after-signature"),
    pytest.param([_SOAP, _SOAP, _SIG], "InvalidContentType", id="two-soap-parts"),
    pytest.param(
        [_SOAP, ("application/xop+xml", SOAP), _SIG],
        "InvalidMessage",
        id="soap-then-xop",
    ),
    pytest.param([_SOAP, _OCSP, _SIG], "InvalidMessage", id="ocsp-after-soap"),
    pytest.param([_SOAP, _HC, _SIG], "InvalidMessage", id="chain-without-result"),
    pytest.param([_SOAP, _HCR, _SIG], "InvalidMessage", id="result-without-chain"),
    pytest.param([_SOAP, _HCR], "InvalidMessage", id="ends-after-result"),
    pytest.param([_SOAP, _HCR, _HC, _HCR, _SIG], "InvalidMessage", id="two-results"),
    pytest.param(
        [_SOAP, _ATT, _ATT, _SIG], "InvalidMessage", id="two-attachment-parts"
    ),
    pytest.param(
        [_SOAP, _HCR, _HC, _ATT, _SIG], "InvalidMessage", id="attachments-late"
    ),
    pytest.param(
        [("application/json", b"{}"), _SIG], "InvalidContentType", id="soap-json"
    ),
    pytest.param(
        [_SOAP, ("application/pdf", b"%PDF"), _SIG],
        "InvalidContentType",
        id="unknown-part",
    ),
    pytest.param(
        [_SOAP, ("text/xml", b"<notAFault/>")],
        "InvalidContentType",
        id="xml-instead-of-signature",
    ),
    pytest.param(
        [_SOAP, ("application/ocsp-response", b""), _SIG],
        "InvalidMessage",
        id="ocsp-late-and-empty",
    ),
    pytest.param(
        [("application/ocsp-response", b""), _SOAP, _SIG],
        "InvalidMessage",
        id="empty-ocsp",
    ),
]


@pytest.mark.parametrize(("parts", "code"), NEGATIVES)
def test_malformed_messages(parts: list[tuple[str, bytes]], code: str) -> None:
    body, content_type = _wire(*parts)
    with pytest.raises(MalformedMessage) as info:
        parse_transport_message(body, content_type)
    assert info.value.code == code, info.value.message


@pytest.mark.parametrize(
    ("content_type", "body", "code"),
    [
        ("application/json", b"{}", "InvalidContentType"),
        ("multipart/mixed", b"--x\r\n\r\n--x--", "InvalidContentType"),
        (
            "multipart/mixed; boundary=xtopB",
            b"--xtopB\r\n\r\nno close",
            "InvalidMessage",
        ),
        ("multipart/related; boundary=xtopB", b"", "InvalidContentType"),
    ],
)
def test_bad_envelopes(content_type: str, body: bytes, code: str) -> None:
    with pytest.raises(MalformedMessage) as info:
        parse_transport_message(body, content_type)
    assert info.value.code == code


def test_size_limit() -> None:
    encoded = build_transport_message(_message())
    with pytest.raises(MalformedMessage) as info:
        parse_transport_message(
            encoded.body, encoded.content_type, max_bytes=len(encoded.body) - 1
        )
    assert info.value.code == "InvalidMessage"
    assert info.value.detail["max_bytes"] == len(encoded.body) - 1


def test_fault_instead_of_signature_is_raised() -> None:
    fault = build_fault("Server.ServerProxy.CannotCreateSignature", "signer is down")
    body, content_type = _wire(_SOAP, ("text/xml; charset=UTF-8", fault))
    with pytest.raises(SoapFault) as info:
        parse_transport_message(body, content_type, role=MessageRole.RESPONSE)
    assert info.value.faultcode == "Server.ServerProxy.CannotCreateSignature"


def test_plain_fault_response_is_raised_but_not_accepted_as_request() -> None:
    fault = build_fault("Server.ServerProxy.AccessDenied", "no")
    with pytest.raises(SoapFault) as info:
        parse_transport_message(fault, "text/xml; charset=UTF-8")
    assert info.value.faultcode == "Server.ServerProxy.AccessDenied"
    with pytest.raises(MalformedMessage) as refused:
        parse_transport_message(
            fault, "text/xml; charset=UTF-8", role=MessageRole.REQUEST
        )
    assert refused.value.code == "InvalidContentType"


# --------------------------------------------------------------------------
# Property: whatever we build parses back to the same message

_token = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
_header = st.tuples(
    st.sampled_from(
        ["Content-Id", "Content-Location", "X-Custom", "Content-Transfer-Encoding"]
    ),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20),
)
_attachments = st.lists(
    st.builds(
        lambda sub, extra, body: MimePart.create(
            [("Content-Type", f"application/{sub}"), *extra], body
        ),
        _token,
        st.lists(_header, max_size=3),
        st.binary(max_size=200),
    ),
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(
    soap=st.binary(min_size=1, max_size=300),
    attachments=_attachments,
    ocsp=st.lists(st.binary(min_size=1, max_size=40), max_size=3),
    chain=st.one_of(st.none(), st.tuples(st.binary(min_size=1), st.binary(min_size=1))),
    signature=st.binary(min_size=1, max_size=100).filter(lambda b: b.strip()),
)
def test_round_trip_property(
    soap: bytes,
    attachments: list[MimePart],
    ocsp: list[bytes],
    chain: tuple[bytes, bytes] | None,
    signature: bytes,
) -> None:
    message = TransportMessage(
        soap_part=_soap_part(soap),
        signature=signature,
        attachments=tuple(attachments),
        ocsp_responses=tuple(ocsp),
        hash_chain_result=chain[0] if chain else None,
        hash_chain=chain[1] if chain else None,
    )
    encoded = build_transport_message(message)
    assert parse_transport_message(encoded.body, encoded.content_type) == message
