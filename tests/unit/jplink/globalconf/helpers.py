"""Test helpers: a throw-away PKI, vector loading and the XSD resolver."""

from __future__ import annotations

import base64
import datetime as dt
import functools
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from jplink.globalconf import ConfigurationAnchor, parse_configuration_anchor

Key = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def make_cert(key: Key, common_name: str) -> x509.Certificate:
    """A self-signed certificate for ``key``."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * 30))
        .sign(key, hashes.SHA256())
    )


@functools.cache
def rsa_pair(label: str = "signer") -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A cached RSA-2048 key and self-signed cert, one per label."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key, make_cert(key, label)


@functools.cache
def ec_pair(
    label: str = "ec-signer",
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A cached P-256 key and self-signed cert, one per label."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key, make_cert(key, label)


def split_http(raw: bytes) -> tuple[str, bytes]:
    """Split a ``.mime`` vector into its Content-Type value and its body."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, "vector lacks the header/body separator"
    name, _, value = head.decode("ascii").partition(":")
    assert name.lower() == "content-type"
    return value.strip(), body


def signature_line(body: bytes) -> bytes:
    """The base64 signature line of a signed directory body."""
    lines = body.split(b"\r\n")
    return lines[-3]  # ..., <b64 signature>, --B1--, ""


def resign(body: bytes, key: rsa.RSAPrivateKey) -> bytes:
    """Re-sign a (modified) directory with RSA-SHA512, independently of jplink.

    The signed bytes are found by hand: from the line after the part-1 header
    block up to and including the inner closing delimiter and its CRLF.
    """
    start = body.index(b"\r\n\r\n") + 4
    inner = body[start : body.index(b"\r\n", start)]  # "--B2"
    end = body.index(inner + b"--\r\n", start) + len(inner) + 4
    signature = key.sign(body[start:end], padding.PKCS1v15(), hashes.SHA512())
    return body.replace(signature_line(body), base64.b64encode(signature))


def dev_anchor(vectors: Path) -> ConfigurationAnchor:
    return parse_configuration_anchor(
        (vectors / "gconf-anchor-DEV-internal.xml").read_bytes()
    )


_XSD_FILES = {
    "identifiers.xsd": "xsd-identifiers.xsd",
    "shared-parameters.xsd": "xsd-shared-parameters-common.xsd",
    "private-parameters.xsd": "xsd-private-parameters-common.xsd",
}


class _VectorResolver(etree.Resolver):
    """Maps the XSDs' relative schemaLocations onto the shared vector files."""

    def __init__(self, vectors: Path) -> None:
        super().__init__()
        self._vectors = vectors

    def resolve(self, system_url, public_id, context):  # type: ignore[no-untyped-def]
        name = system_url.rsplit("/", 1)[-1]
        if name in _XSD_FILES:
            return self.resolve_filename(str(self._vectors / _XSD_FILES[name]), context)
        return None


def load_schema(vectors: Path, main: str) -> etree.XMLSchema:
    """Compile ``xsd-shared-parameters-v6.xsd`` or ``xsd-private-parameters-v3.xsd``.

    The base URL mimics X-Road's folder layout (``globalconf/v6/``) so the
    relative includes resolve to names the resolver knows.
    """
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_VectorResolver(vectors))
    doc = etree.parse(str(vectors / main), parser, base_url=f"globalconf/vN/{main}")
    return etree.XMLSchema(doc)
