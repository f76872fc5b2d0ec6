"""Per-message work of a security server: fast paths vs their references.

Measured in the same run, in one process, with an ECDSA P-256 signer (as the
exchange benchmark's members): for each step, the path the servers take and
the general path it stands in for, and their ratio.

- ``sign lone message``: a single-part signature document filled into the
  signer's template vs built as a tree (``signature_tree`` then
  ``finish_document``).
- ``verify lone message``: a document recognised by its shape vs the full
  verifier.
- ``insert requestHash``: straight after ``id`` vs the header scan with the
  result parsed again.

Each figure is the best of 5 rounds (microseconds per call): the least
disturbed by whatever else the machine runs.

Run: ``.venv/bin/python -m bench.bench_message_work [--number 2000]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import timeit
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jplink.ns import NS_SOAP_ENV, NS_XROAD
from jplink.protocol import request_hash
from jplink.protocol.headers import REQUEST_HASH_SHA512
from jplink.security._signature_build import finish_document, signature_tree
from jplink.security.signature import (
    DEFAULT_POLICY,
    SignatureShapes,
    SignedPart,
    sign_message,
    verify_signature,
)
from jplink.xml import parse_xml

NOW = dt.datetime.now(dt.UTC)
OCSP = (b"\x30" + b"\x00" * 1500,)  # an OCSP response's size, opaque here


def _signer() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    usage = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _response() -> bytes:
    fields = "".join(
        f"\n    <xrd:{name}>{value}</xrd:{name}>"
        for name, value in (
            ("protocolVersion", "4.0"),
            ("id", "4894e35d-bf0f-44a6-867a-8e51f1daa7e0"),
            ("userId", "bench"),
        )
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<SOAP-ENV:Envelope xmlns:SOAP-ENV="{NS_SOAP_ENV}" xmlns:xrd="{NS_XROAD}">'
        f"\n  <SOAP-ENV:Header>{fields}\n  </SOAP-ENV:Header>\n  <SOAP-ENV:Body>"
        + "<t:trade xmlns:t='urn:t'><t:id>1</t:id></t:trade>" * 20
        + "</SOAP-ENV:Body>\n</SOAP-ENV:Envelope>\n"
    ).encode()


def _best(call: Callable[[], object], number: int) -> float:
    call()
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--number", type=int, default=2000, help="calls per round")
    number = parser.parse_args().number
    key, cert = _signer()
    message = _response()
    parts = [SignedPart("/message.xml", message)]
    args = {
        "key": key,
        "cert": cert,
        "ocsp_responses": OCSP,
        "extra_certificates": (),
        "signing_time": NOW,
        "policy": DEFAULT_POLICY,
    }
    document = sign_message(
        parts, key=key, cert=cert, ocsp_responses=OCSP, signing_time=NOW
    )
    given = {"/message.xml": message}
    shapes = SignatureShapes()
    verify_signature(document, parts=given, now=NOW, shapes=shapes)
    root = parse_xml(message)
    header = root.find(f"{{{NS_SOAP_ENV}}}Header")
    assert header is not None
    id_el = header.find(f"{{{NS_XROAD}}}id")
    assert id_el is not None
    value = request_hash.compute_request_hash(b"the request")
    element = request_hash._hash_element(header, id_el, value, REQUEST_HASH_SHA512)
    cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
        (
            "sign lone message",
            lambda: sign_message(
                parts, key=key, cert=cert, ocsp_responses=OCSP, signing_time=NOW
            ),
            lambda: finish_document(
                signature_tree(parts, **args),  # type: ignore[arg-type]
                key,
            ),
        ),
        (
            "verify lone message",
            lambda: verify_signature(document, parts=given, now=NOW, shapes=shapes),
            lambda: verify_signature(document, parts=given, now=NOW),
        ),
        (
            "insert requestHash",
            lambda: request_hash.add_request_hash(
                message, value, REQUEST_HASH_SHA512, parsed=root
            ),
            lambda: request_hash._insert_by_scan(
                message, 0, 1, [], element, (value, REQUEST_HASH_SHA512)
            ),
        ),
    ]
    # The two paths must agree before they are timed (ECDSA values are
    # randomised: a signed document is checked by verifying it).
    signed = sign_message(
        parts, key=key, cert=cert, ocsp_responses=OCSP, signing_time=NOW
    )
    verify_signature(signed, parts=given, now=NOW)
    if cases[1][1]() != cases[1][2]() or cases[2][1]() != cases[2][2]():
        raise SystemExit("a fast path disagrees with its general path")
    print(f"{'step':24} {'fast path us':>13} {'general us':>11} {'ratio':>6}")
    for label, fast, general in cases:
        a, b = _best(fast, number), _best(general, number)
        print(f"{label:24} {a:13.1f} {b:11.1f} {a / b:6.2f}")


if __name__ == "__main__":
    main()
