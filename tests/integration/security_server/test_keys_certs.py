"""Keys, CSRs and certificate import against a test CA, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from jplink.errors import (
    CertificateExpired,
    CertificateValidationError,
    Conflict,
    InvalidRequest,
    NotFound,
    Unauthenticated,
)
from jplink.security.certs import (
    CertProfile,
    MemberSubject,
    verify_csr,
    verify_csr_subject,
)
from jplink.security.keys import KeyType
from security_server import certificates, clients, csrs, keys
from security_server.softtoken import UnlockedToken
from security_server.states import CertStatus
from tests.support.pki import build_test_pki

from .conftest import Server
from .helpers import OTHER, OWNER, OWNER_NAME, SERVER_CODE

AUTH_SUBJECT = MemberSubject("JP-TEST", "COM", "1111", OWNER_NAME, SERVER_CODE)
SIGN_SUBJECT = MemberSubject("JP-TEST", "COM", "1111", OWNER_NAME)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


async def test_keys_csrs_and_certificates(server: Server, now: dt.datetime) -> None:
    db, token_dir = server.db, server.config.token_dir
    auth = await keys.generate_key(
        db, token_dir, server.unlocked, "t", usage=CertProfile.AUTH, now=now
    )
    sign = await keys.generate_key(
        db,
        token_dir,
        server.unlocked,
        "t",
        usage=CertProfile.SIGN,
        member=OWNER,
        key_type=KeyType.EC,
        label="signing",
        now=now,
    )
    assert (auth.key_type, sign.key_type) == (KeyType.RSA, KeyType.EC)
    assert [k.key_id for k in await keys.list_keys(db)] == [auth.key_id, sign.key_id]
    files = list(token_dir.iterdir())
    assert len(files) == 2
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)
    assert all(b"ENCRYPTED PRIVATE KEY" in f.read_bytes() for f in files)

    auth_csr = await csrs.create_csr(
        db, token_dir, server.unlocked, "t", auth.key_id[:10], now=now
    )
    sign_csr = await csrs.create_csr(
        db, token_dir, server.unlocked, "t", sign.key_id, now=now
    )
    # The CA's own checks accept both CSRs, with the profile's subjects.
    checked_auth = verify_csr(auth_csr.pem)
    verify_csr_subject(checked_auth.csr, CertProfile.AUTH, AUTH_SUBJECT)
    checked_sign = verify_csr(sign_csr.der)
    verify_csr_subject(checked_sign.csr, CertProfile.SIGN, SIGN_SUBJECT)
    assert "serialNumber=JP-TEST/COM/1111/ss1" in auth_csr.subject.replace(
        "2.5.4.5", "serialNumber"
    )
    assert len(await csrs.list_csrs(db)) == 2

    pki = build_test_pki(now)
    auth_key = await keys.load_private_key(db, token_dir, server.unlocked, auth.key_id)
    sign_key = await keys.load_private_key(db, token_dir, server.unlocked, sign.key_id)
    auth_cert, _ = pki.issue(CertProfile.AUTH, AUTH_SUBJECT, auth_key)
    sign_cert, _ = pki.issue(CertProfile.SIGN, SIGN_SUBJECT, sign_key)

    imported = await certificates.import_certificate(db, "t", _pem(auth_cert), now=now)
    assert (imported.key_id, imported.usage, imported.status, imported.active) == (
        auth.key_id,
        CertProfile.AUTH,
        CertStatus.SAVED,
        True,
    )
    der = sign_cert.public_bytes(serialization.Encoding.DER)
    signed = await certificates.import_certificate(db, "t", der, now=now)
    assert signed.member == OWNER
    with pytest.raises(Conflict):
        await certificates.import_certificate(db, "t", der, now=now)
    listed = {k.key_id: k.certificates for k in await keys.list_keys(db)}
    assert listed == {auth.key_id: (imported.sha256,), sign.key_id: (signed.sha256,)}

    off = await certificates.set_certificate_active(
        db, "t", signed.sha256[:12], active=False, now=now
    )
    assert not off.active
    await certificates.delete_certificate(db, "t", signed.sha256, now=now)
    assert [c.sha256 for c in await certificates.list_certificates(db)] == [
        imported.sha256
    ]

    await keys.delete_key(db, token_dir, "t", auth.key_id, now=now)
    assert await certificates.list_certificates(db) == []
    assert len(list(token_dir.iterdir())) == 1


async def test_certificate_import_refusals(server: Server, now: dt.datetime) -> None:
    db, token_dir = server.db, server.config.token_dir
    auth = await keys.generate_key(
        db, token_dir, server.unlocked, "t", usage=CertProfile.AUTH, now=now
    )
    await clients.add_client(db, "t", OTHER, name="Other Co", now=now)
    sign = await keys.generate_key(
        db,
        token_dir,
        server.unlocked,
        "t",
        usage=CertProfile.SIGN,
        member=OTHER,
        now=now,
    )
    auth_key = await keys.load_private_key(db, token_dir, server.unlocked, auth.key_id)
    sign_key = await keys.load_private_key(db, token_dir, server.unlocked, sign.key_id)
    pki = build_test_pki(now)

    stranger, _ = pki.issue(CertProfile.AUTH, AUTH_SUBJECT)  # a key not on the token
    with pytest.raises(NotFound) as no_key:
        await certificates.import_certificate(db, "t", _pem(stranger), now=now)
    assert no_key.value.code == "KeyNotFound"

    as_sign, _ = pki.issue(CertProfile.SIGN, SIGN_SUBJECT, auth_key)
    with pytest.raises(CertificateValidationError) as usage:
        await certificates.import_certificate(db, "t", _pem(as_sign), now=now)
    assert usage.value.code == "IncorrectCertificate"

    other_server = MemberSubject("JP-TEST", "COM", "1111", OWNER_NAME, "ss2")
    wrong_server, _ = pki.issue(CertProfile.AUTH, other_server, auth_key)
    with pytest.raises(CertificateValidationError, match="server ss2"):
        await certificates.import_certificate(db, "t", _pem(wrong_server), now=now)

    # The sign key belongs to COM/2222; a certificate naming the owner is refused.
    wrong_member, _ = pki.issue(CertProfile.SIGN, SIGN_SUBJECT, sign_key)
    with pytest.raises(CertificateValidationError, match="belongs to MEMBER"):
        await certificates.import_certificate(db, "t", _pem(wrong_member), now=now)

    expired, _ = pki.issue(
        CertProfile.AUTH,
        AUTH_SUBJECT,
        auth_key,
        not_before=now - dt.timedelta(days=10),
        validity=dt.timedelta(days=1),
    )
    with pytest.raises(CertificateExpired):
        await certificates.import_certificate(db, "t", _pem(expired), now=now)

    with pytest.raises(InvalidRequest):
        await certificates.import_certificate(db, "t", b"not a cert", now=now)
    assert await certificates.list_certificates(db) == []

    right = MemberSubject("JP-TEST", "COM", "2222", "Other Co")
    good, _ = pki.issue(CertProfile.SIGN, right, sign_key)
    info = await certificates.import_certificate(db, "t", _pem(good), now=now)
    assert info.member == OTHER


async def test_key_generation_refusals(server: Server, now: dt.datetime) -> None:
    db, token_dir = server.db, server.config.token_dir
    with pytest.raises(InvalidRequest):
        await keys.generate_key(
            db, token_dir, server.unlocked, "t", usage=CertProfile.SIGN, now=now
        )
    with pytest.raises(NotFound) as stranger:
        await keys.generate_key(
            db,
            token_dir,
            server.unlocked,
            "t",
            usage=CertProfile.SIGN,
            member=OTHER,
            now=now,
        )
    assert stranger.value.code == "ClientNotFound"
    with pytest.raises(Unauthenticated):
        await keys.generate_key(
            db,
            token_dir,
            UnlockedToken("not the pin"),
            "t",
            usage=CertProfile.AUTH,
            now=now,
        )
    assert await keys.list_keys(db) == []
    assert not token_dir.exists() or list(token_dir.iterdir()) == []
    with pytest.raises(NotFound):
        await csrs.create_csr(
            db, token_dir, server.unlocked, "t", "deadbeef00", now=now
        )
