"""Digest and signature algorithm identifiers used by the global configuration.

PR-GCONF names its algorithms with XML-DSig / XML-Enc URIs: the file hashes and
the verification-certificate hash carry ``Hash-algorithm-id`` /
``hash-algorithm-id``, the directory signature carries ``Signature-Algorithm-Id``.
The enum values are the wire URIs. SHA-1 is deliberately absent: we neither
produce nor accept it (an old V2 directory signed with SHA-1 is refused).
"""

from __future__ import annotations

import enum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..errors import GlobalConfError

__all__ = [
    "DigestAlgorithm",
    "KeyKind",
    "SignatureAlgorithm",
    "signature_algorithm_for_key",
]


class DigestAlgorithm(enum.Enum):
    """A digest algorithm, valued by its XML-Enc / XML-DSig URI."""

    SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
    SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
    SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"

    @classmethod
    def from_uri(cls, uri: str) -> DigestAlgorithm:
        """The algorithm for a wire URI.

        Args:
            uri: the value of a ``Hash-algorithm-id`` header or parameter.

        Returns:
            The matching member.

        Raises:
            GlobalConfError: the URI is unknown or not allowed (fail closed).
        """
        try:
            return cls(uri.strip())
        except ValueError:
            raise GlobalConfError(
                f"Unsupported hash algorithm {uri!r} in global configuration",
                code="InvalidGlobalConf",
                detail={"algorithm": uri},
            ) from None

    def hash_algorithm(self) -> hashes.HashAlgorithm:
        """The ``cryptography`` hash object for this algorithm."""
        return _HASHES[self]()

    def digest(self, data: bytes) -> bytes:
        """Hash ``data`` with this algorithm.

        Args:
            data: the bytes to hash.

        Returns:
            The raw digest.
        """
        h = hashes.Hash(self.hash_algorithm())
        h.update(data)
        return h.finalize()


_HASHES: dict[DigestAlgorithm, type[hashes.HashAlgorithm]] = {
    DigestAlgorithm.SHA256: hashes.SHA256,
    DigestAlgorithm.SHA384: hashes.SHA384,
    DigestAlgorithm.SHA512: hashes.SHA512,
}


class KeyKind(enum.Enum):
    """The public-key family a signature algorithm belongs to."""

    RSA = "RSA"
    EC = "EC"


class SignatureAlgorithm(enum.Enum):
    """A signature algorithm, valued by its XML-DSig URI (RFC 6931)."""

    RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
    RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
    ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
    ECDSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
    ECDSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"

    @classmethod
    def from_uri(cls, uri: str) -> SignatureAlgorithm:
        """The algorithm for a ``Signature-Algorithm-Id`` value.

        Args:
            uri: the header value.

        Returns:
            The matching member.

        Raises:
            GlobalConfError: the URI is unknown (fail closed).
        """
        try:
            return cls(uri.strip())
        except ValueError:
            raise GlobalConfError(
                f"Unsupported signature algorithm {uri!r} in global configuration",
                code="InvalidGlobalConf",
                detail={"algorithm": uri},
            ) from None

    @property
    def key_kind(self) -> KeyKind:
        """Whether the algorithm needs an RSA or an EC key."""
        return KeyKind.RSA if self.name.startswith("RSA") else KeyKind.EC

    @property
    def digest(self) -> DigestAlgorithm:
        """The digest the algorithm signs with."""
        return DigestAlgorithm[self.name.rsplit("_", 1)[1]]


def signature_algorithm_for_key(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    digest: DigestAlgorithm = DigestAlgorithm.SHA512,
) -> SignatureAlgorithm:
    """The signature algorithm to use with a private key.

    Args:
        key: an RSA or EC private key.
        digest: the digest to sign with (SHA-512 by default, as X-Road does).

    Returns:
        ``RSA_<digest>`` or ``ECDSA_<digest>``.

    Raises:
        TypeError: the key is neither RSA nor EC.
    """
    if isinstance(key, rsa.RSAPrivateKey):
        return SignatureAlgorithm[f"RSA_{digest.name}"]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return SignatureAlgorithm[f"ECDSA_{digest.name}"]
    raise TypeError("signing key must be an RSA or EC private key")
