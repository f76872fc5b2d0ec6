"""Signers shared by the signature tests: (key, self-signed certificate)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.unit.jplink.security.test_signature_roundtrip import _make_signer


@pytest.fixture(scope="module")
def rsa_signer() -> Any:
    # RSA PKCS#1 v1.5 is deterministic: whole documents can be compared.
    return _make_signer(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def ec_signer() -> Any:
    return _make_signer(ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(params=["rsa", "ec"])
def signer(request: pytest.FixtureRequest, rsa_signer: Any, ec_signer: Any) -> Any:
    return rsa_signer if request.param == "rsa" else ec_signer
