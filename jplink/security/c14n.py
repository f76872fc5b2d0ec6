"""The XML-DSig algorithm suite: canonicalisation, digests, signature methods.

This module decides *which bytes get hashed and how they are signed*: the
digest and signature algorithms (enums keyed by the wire URI, as signxml
does), the canonicalisation methods X-Road uses, the raw sign/verify of
canonical octets, and the base64 text found in ``ds:DigestValue`` /
``ds:SignatureValue`` elements.

Canonicalisation is lxml's C14N 1.0 (``etree.tostring(method="c14n")``), never
the standard library's ``canonicalize`` (that is C14N 2.0 and drops the
namespace declarations inherited from ancestors, so it gives other bytes).
Applied to an element of a larger document, lxml emits every in-scope
namespace declaration on the apex element, which is exactly XML-DSig's
"document subset" rule and reproduces X-Road's signatures byte for byte.
"""

from __future__ import annotations

import binascii
import enum
import hashlib

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from lxml import etree

from jplink.errors import InvalidSignature, MalformedMessage

__all__ = [
    "MALFORMED_SIGNATURE",
    "CanonicalizationMethod",
    "DigestAlgorithm",
    "SignatureMethod",
    "b64decode_text",
    "b64encode_wrapped",
    "canonicalize",
    "sign_octets",
    "verify_octets",
]

#: X-Road's error code for a signature document that breaks the profile.
MALFORMED_SIGNATURE = "MalformedSignature"

# Santuario (X-Road's XML-DSig engine) wraps base64 at 76 characters.
_B64_LINE = 76


class DigestAlgorithm(enum.Enum):
    """XML-DSig digest algorithms accepted by JP-LINK (SHA-1 is not one)."""

    SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
    SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
    SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"

    # Members are singletons that compare by identity, so an identity hash
    # is consistent; Enum's own (the hash of the name, computed in Python)
    # was a tenth of a hash chain's verification, which looks the algorithm
    # up in sets and dicts for every value of every step.
    __hash__ = object.__hash__

    @classmethod
    def from_uri(cls, uri: str | None) -> DigestAlgorithm:
        """The algorithm for a wire URI.

        Raises:
            MalformedMessage: code ``MalformedSignature`` for a missing or
                unknown URI (SHA-1 included).
        """
        found = _DIGESTS_BY_URI.get(uri) if isinstance(uri, str) else None
        if found is None:
            raise MalformedMessage(
                f"Unsupported digest algorithm {uri!r}",
                code=MALFORMED_SIGNATURE,
                detail={"algorithm": uri},
            )
        return found

    @property
    def hash_algorithm(self) -> hashes.HashAlgorithm:
        """The matching ``cryptography`` hash object."""
        return _HASHES[self]()

    def digest(self, data: bytes) -> bytes:
        """Hash ``data`` with this algorithm."""
        return _HASHLIB[self](data).digest()


_HASHES: dict[DigestAlgorithm, type[hashes.HashAlgorithm]] = {
    DigestAlgorithm.SHA256: hashes.SHA256,
    DigestAlgorithm.SHA384: hashes.SHA384,
    DigestAlgorithm.SHA512: hashes.SHA512,
}
# Direct constructors: hashlib.new(name) looks the name up on every call.
_HASHLIB = {
    DigestAlgorithm.SHA256: hashlib.sha256,
    DigestAlgorithm.SHA384: hashlib.sha384,
    DigestAlgorithm.SHA512: hashlib.sha512,
}
_DIGESTS_BY_URI = {a.value: a for a in DigestAlgorithm}


class SignatureMethod(enum.Enum):
    """XML-DSig signature methods seen in X-Road (PROTOCOLS.md §6.2)."""

    RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
    RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
    RSA_PSS_SHA256 = "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1"
    RSA_PSS_SHA384 = "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1"
    RSA_PSS_SHA512 = "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1"
    ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
    ECDSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
    ECDSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"

    @classmethod
    def from_uri(cls, uri: str | None) -> SignatureMethod:
        """The method for a wire URI.

        Raises:
            MalformedMessage: code ``MalformedSignature`` for an unknown URI
                (rsa-sha1 and dsa included).
        """
        try:
            return cls(uri)
        except ValueError:
            raise MalformedMessage(
                f"Unsupported signature method {uri!r}",
                code=MALFORMED_SIGNATURE,
                detail={"algorithm": uri},
            ) from None

    @classmethod
    def for_key(
        cls,
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
        digest: DigestAlgorithm,
    ) -> SignatureMethod:
        """The PKCS#1 v1.5 or ECDSA method for a key type and digest."""
        family = "ECDSA" if isinstance(key, ec.EllipticCurvePrivateKey) else "RSA"
        return cls[f"{family}_{digest.name}"]

    @property
    def digest(self) -> DigestAlgorithm:
        """The digest the method hashes with."""
        return DigestAlgorithm[self.name.rsplit("_", 1)[1]]


def _pss(digest: DigestAlgorithm) -> padding.PSS:
    # XML-DSig 1.1 RSASSA-PSS default: MGF1 with the same hash, salt length =
    # hash length (RFC 6931 §2.3.10).
    algorithm = digest.hash_algorithm
    return padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)


def sign_octets(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    method: SignatureMethod,
    data: bytes,
) -> bytes:
    """Sign canonical octets; ECDSA values are XML-DSig raw ``r || s``."""
    algorithm = method.digest.hash_algorithm
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if not method.name.startswith("ECDSA"):
            raise ValueError(f"{method.name} needs an RSA key")
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(algorithm)))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if method.name.startswith("ECDSA"):
        raise ValueError(f"{method.name} needs an EC key")
    if method.name.startswith("RSA_PSS"):
        return key.sign(data, _pss(method.digest), algorithm)
    return key.sign(data, padding.PKCS1v15(), algorithm)


def verify_octets(
    public_key: PublicKeyTypes, method: SignatureMethod, signature: bytes, data: bytes
) -> None:
    """Verify a signature value over canonical octets.

    Raises:
        InvalidSignature: the value does not verify, or the key type does not
            fit the method (code ``InvalidSignatureValue``).
    """
    algorithm = method.digest.hash_algorithm
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey) and method.name.startswith(
            "ECDSA"
        ):
            size = (public_key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                raise _CryptoInvalidSignature
            der = encode_dss_signature(
                int.from_bytes(signature[:size], "big"),
                int.from_bytes(signature[size:], "big"),
            )
            public_key.verify(der, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey) and method.name.startswith("RSA"):
            pad: padding.AsymmetricPadding = (
                _pss(method.digest)
                if method.name.startswith("RSA_PSS")
                else padding.PKCS1v15()
            )
            public_key.verify(signature, data, pad, algorithm)
        else:
            raise InvalidSignature(
                f"Signature method {method.value} does not fit the signer's key type"
            )
    except _CryptoInvalidSignature:
        raise InvalidSignature("Signature value does not verify") from None


class CanonicalizationMethod(enum.Enum):
    """Canonicalisation algorithms for SignedInfo and same-document references."""

    C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
    C14N_10_WITH_COMMENTS = (
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"
    )
    EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
    EXC_C14N_WITH_COMMENTS = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"

    @classmethod
    def from_uri(cls, uri: str | None) -> CanonicalizationMethod:
        """The method for a wire URI.

        Raises:
            MalformedMessage: code ``MalformedSignature`` for an unknown URI.
        """
        try:
            return cls(uri)
        except ValueError:
            raise MalformedMessage(
                f"Unsupported canonicalization or transform {uri!r}",
                code=MALFORMED_SIGNATURE,
                detail={"algorithm": uri},
            ) from None

    @property
    def exclusive(self) -> bool:
        """Whether this is Exclusive XML Canonicalization."""
        return self in (self.EXC_C14N, self.EXC_C14N_WITH_COMMENTS)

    @property
    def with_comments(self) -> bool:
        """Whether comments are kept."""
        return self in (self.C14N_10_WITH_COMMENTS, self.EXC_C14N_WITH_COMMENTS)


def canonicalize(
    element: etree._Element,
    method: CanonicalizationMethod = CanonicalizationMethod.C14N_10,
    *,
    inclusive_prefixes: tuple[str, ...] = (),
) -> bytes:
    """Canonicalise ``element`` and its descendants as a document subset.

    Args:
        element: the apex element (it may sit deep inside a document).
        method: the canonicalisation algorithm.
        inclusive_prefixes: the exclusive C14N ``InclusiveNamespaces``
            PrefixList; ignored for inclusive C14N.

    Returns:
        The canonical octets.

    Raises:
        MalformedMessage: code ``MalformedSignature`` when the subset has no
            canonical form, e.g. a relative namespace URI (C14N 1.0 makes
            processors fail on those rather than guess a base URI).
    """
    try:
        octets = etree.tostring(
            element,
            method="c14n",
            exclusive=method.exclusive,
            with_comments=method.with_comments,
            inclusive_ns_prefixes=(
                list(inclusive_prefixes)
                if method.exclusive and inclusive_prefixes
                else None
            ),
        )
    except etree.C14NError:
        raise MalformedMessage(
            "Signed XML cannot be canonicalised (C14N failed)",
            code=MALFORMED_SIGNATURE,
        ) from None
    return bytes(octets)


def b64encode_wrapped(data: bytes) -> str:
    """Base64 as X-Road's Santuario writes it in SignedInfo: 76-column lines.

    Lines are joined with CRLF (serialised as ``&#13;`` + LF), as in
    ``sign-0.xml``. The line breaks are part of the canonical SignedInfo, so
    they matter for reproducing a signature value byte for byte.
    """
    text = binascii.b2a_base64(data, newline=False).decode("ascii")
    return "\r\n".join(text[i : i + _B64_LINE] for i in range(0, len(text), _B64_LINE))


def b64decode_text(text: str | None, what: str) -> bytes:
    """Decode base64 element text, ignoring all whitespace (line wraps, CRs).

    Args:
        text: the element text.
        what: what the value is, for the error message.

    Returns:
        The decoded bytes (never empty).

    Raises:
        MalformedMessage: code ``MalformedSignature`` for missing, empty or
            invalid base64.
    """
    # str.split() drops the same characters as r"\s+" (str.isspace), faster.
    compact = "".join((text or "").split())
    try:
        data = binascii.a2b_base64(compact.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise MalformedMessage(
            f"{what} is not valid base64", code=MALFORMED_SIGNATURE
        ) from None
    if not data:
        raise MalformedMessage(f"{what} is empty", code=MALFORMED_SIGNATURE)
    return data
