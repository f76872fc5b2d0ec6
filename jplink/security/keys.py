"""Private keys: generation, PEM (de)serialisation and the key-strength policy.

Sans-IO: bytes in, key objects out. Writing a key to disk with mode 0600 is the
caller's job (each component owns its files). JP-LINK accepts RSA keys of at
least 2048 bits (X-Road's default, §1 of PROTOCOLS.md: "RSA 2048 by default
(3k/4k allowed)") and ECDSA keys on P-256, P-384 or P-521; nothing else.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..errors import ConfigurationError, InvalidRequest

__all__ = [
    "ALLOWED_CURVES",
    "KeyStrength",
    "KeyType",
    "PrivateKey",
    "PublicKey",
    "generate_private_key",
    "load_private_key_pem",
    "serialize_private_key_pem",
    "signature_hash",
    "verify_key_strength",
]

#: The private key types JP-LINK signs with.
PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
#: The public key types JP-LINK accepts in certificates and CSRs.
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

#: Named curves accepted for ECDSA keys (P-256 and stronger).
ALLOWED_CURVES: frozenset[str] = frozenset({"secp256r1", "secp384r1", "secp521r1"})

_RSA_PUBLIC_EXPONENT = 65537


class KeyType(enum.Enum):
    """Kinds of key JP-LINK generates; the value is the configuration word."""

    RSA = "rsa"
    EC = "ec"


@dataclass(frozen=True, slots=True)
class KeyStrength:
    """A public key that passed :func:`verify_key_strength`.

    Attributes:
        key_type: RSA or EC.
        bits: the RSA modulus size or the curve's key size.
        curve: the curve name for EC keys, else None.
    """

    key_type: KeyType
    bits: int
    curve: str | None = None


def generate_private_key(key_type: KeyType, *, rsa_bits: int = 2048) -> PrivateKey:
    """Generate a fresh key pair.

    Args:
        key_type: RSA (``rsa_bits`` long, e=65537) or EC (P-256).
        rsa_bits: modulus size for RSA keys; at least 2048.

    Returns:
        The private key.

    Raises:
        ValueError: for an RSA size below 2048 (programmer misuse).
    """
    if key_type is KeyType.RSA:
        if rsa_bits < 2048:
            raise ValueError("RSA keys must be at least 2048 bits")
        return rsa.generate_private_key(_RSA_PUBLIC_EXPONENT, rsa_bits)
    return ec.generate_private_key(ec.SECP256R1())


def serialize_private_key_pem(key: PrivateKey) -> bytes:
    """The unencrypted PKCS#8 PEM form of ``key`` (protect the file, mode 0600)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key_pem(data: bytes, *, where: str = "private key") -> PrivateKey:
    """Load an unencrypted PEM private key from trusted local storage.

    Args:
        data: the PEM bytes (PKCS#8 or traditional).
        where: names the source in error messages (e.g. the file path).

    Returns:
        The RSA or EC private key.

    Raises:
        ConfigurationError: if the data is not a usable RSA/EC private key.
    """
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"{where}: not an unencrypted PEM private key"
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigurationError(f"{where}: only RSA and EC keys are supported")
    return key


def verify_key_strength(key: object, *, min_rsa_bits: int = 2048) -> KeyStrength:
    """Check a public key against JP-LINK's key policy.

    Args:
        key: a public key (typically from a CSR).
        min_rsa_bits: the smallest RSA modulus accepted (never below 2048).

    Returns:
        The verified key description.

    Raises:
        InvalidRequest: for RSA keys below the minimum, EC keys on curves
            weaker than P-256 or unknown curves, and any other key type.
    """
    min_rsa_bits = max(min_rsa_bits, 2048)
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < min_rsa_bits:
            raise InvalidRequest(
                f"RSA key of {key.key_size} bits is too weak; "
                f"at least {min_rsa_bits} bits are required",
                code="WeakKey",
                detail={"key_type": "rsa", "bits": key.key_size},
            )
        return KeyStrength(KeyType.RSA, key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ALLOWED_CURVES:
            raise InvalidRequest(
                f"EC curve {key.curve.name} is not accepted; use P-256, P-384 or P-521",
                code="WeakKey",
                detail={"key_type": "ec", "curve": key.curve.name},
            )
        return KeyStrength(KeyType.EC, key.curve.key_size, key.curve.name)
    raise InvalidRequest(
        f"Key type {type(key).__name__} is not accepted; use RSA or EC",
        code="WeakKey",
    )


def signature_hash(key: PrivateKey) -> hashes.SHA256:
    """The digest JP-LINK signs certificates with: SHA-256 for every key type.

    SHA-1 is never produced (DESIGN.md §6: "no SHA-1 anywhere we produce").
    """
    del key  # one policy for RSA and EC; the parameter keeps call sites explicit
    return hashes.SHA256()
