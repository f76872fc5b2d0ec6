"""Own certificate status: OCSP refresher with a live CA, fail-closed material."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from jplink.errors import (
    CertificateValidationError,
    GlobalConfExpired,
    NotFound,
    OcspError,
    OcspStale,
    RevokedCertificate,
    Unauthenticated,
)
from jplink.security.ocsp import OcspCertStatus, parse_ocsp_response
from security_server.models import Certificate, OcspResponse
from security_server.ocsp_cache import cert_sha256

from .helpers import OWNER, SUBSYSTEM
from .test_certstatus_world import PIN, World, build_shared, real_now, world

__all__ = ["world"]


async def _cached(world: World, cert_hash: str) -> OcspResponse | None:
    async with world.server.db.transaction() as session:
        return (
            await session.execute(
                select(OcspResponse).where(OcspResponse.cert_sha256 == cert_hash)
            )
        ).scalar_one_or_none()


async def _cert_row(world: World, cert_hash: str) -> Certificate:
    async with world.server.db.transaction() as session:
        return (
            await session.execute(
                select(Certificate).where(Certificate.cert_sha256 == cert_hash)
            )
        ).scalar_one()


async def test_no_material_before_the_first_refresh(world: World) -> None:
    with pytest.raises(OcspError, match="No OCSP response"):
        await world.status.signing_material(OWNER, now=real_now())
    with pytest.raises(OcspError):
        await world.status.auth_material(now=real_now())


async def test_refresh_stores_good_responses_and_material_uses_them(
    world: World,
) -> None:
    now = real_now()
    report = await world.refresher.refresh_now(now=now)
    assert {o.status for o in report.outcomes} == {"good"}
    assert {o.cert_sha256 for o in report.outcomes} == {
        cert_sha256(world.sign_cert),
        cert_sha256(world.auth_cert),
    }
    assert all(o.stored for o in report.outcomes)
    row = await _cert_row(world, cert_sha256(world.sign_cert))
    assert row.ocsp_status == "good" and row.ocsp_this_update is not None

    material = await world.status.signing_material(SUBSYSTEM, now=now)
    assert material.member == OWNER
    assert material.cert == world.sign_cert
    assert material.chain == (world.material.root_cert,)
    assert len(material.ocsp_ders) == 1
    parsed = parse_ocsp_response(material.ocsp_ders[0])
    assert parsed.responses[0].serial_number == world.sign_cert.serial_number
    assert parsed.responses[0].status is OcspCertStatus.GOOD
    # The key is the certificate's key.
    assert material.key.public_key() == world.sign_cert.public_key()

    auth = await world.status.auth_material(now=now)
    assert auth.cert == world.auth_cert
    assert auth.ocsp_ders == (auth.ocsp_der,)
    assert auth.key.public_key() == world.auth_cert.public_key()

    # A second refresh with the same answer does not go backwards.
    again = await world.refresher.refresh_now(now=now)
    assert {o.status for o in again.outcomes} == {"good"}


async def test_revocation_is_seen_on_the_next_refresh(world: World) -> None:
    now = real_now()
    await world.refresher.refresh_now(now=now)
    await world.status.signing_material(OWNER, now=now)
    await world.ca.revoke(world.sign_cert)

    report = await world.refresher.refresh_now(now=real_now())
    by_hash = {o.cert_sha256: o for o in report.outcomes}
    assert by_hash[cert_sha256(world.sign_cert)].status == "revoked"
    assert by_hash[cert_sha256(world.sign_cert)].stored
    assert by_hash[cert_sha256(world.auth_cert)].status == "good"
    row = await _cert_row(world, cert_sha256(world.sign_cert))
    assert row.ocsp_status == "revoked"
    with pytest.raises(RevokedCertificate):
        await world.status.signing_material(OWNER, now=real_now())
    # Authentication is unaffected.
    await world.status.auth_material(now=real_now())


async def test_stale_responses_fail_closed(world: World) -> None:
    now = real_now()
    await world.refresher.refresh_now(now=now)
    await world.status.signing_material(OWNER, now=now)
    later = now + dt.timedelta(seconds=3600 + 120)
    with pytest.raises(OcspStale):
        await world.status.signing_material(OWNER, now=later)
    with pytest.raises(OcspStale):
        await world.status.auth_material(now=later)

    # A stricter freshness in the configuration applies at once.
    world.conf.replace(
        shared=build_shared(
            world.material,
            world.ca.ocsp_url,
            world.auth_cert,
            world.peer_cert,
            freshness=60,
        )
    )
    world.status.invalidate()
    with pytest.raises(OcspStale, match="too old"):
        await world.status.signing_material(OWNER, now=now + dt.timedelta(minutes=5))


async def test_ca_down_keeps_the_old_good_response_until_stale(world: World) -> None:
    now = real_now()
    await world.refresher.refresh_now(now=now)
    before = await _cached(world, cert_sha256(world.sign_cert))
    assert before is not None
    await world.ca.server.close()

    later = now + dt.timedelta(minutes=20)
    report = await world.refresher.refresh_now(now=later)
    assert {o.status for o in report.outcomes} == {"failed"}
    assert all("NetworkError" in (o.error or "") for o in report.outcomes)
    after = await _cached(world, cert_sha256(world.sign_cert))
    assert after is not None and after.response_der == before.response_der
    row = await _cert_row(world, cert_sha256(world.sign_cert))
    assert row.ocsp_status == "good"

    material = await world.status.signing_material(OWNER, now=later)
    assert material.ocsp_ders == (before.response_der,)
    with pytest.raises(OcspStale):
        await world.status.signing_material(OWNER, now=now + dt.timedelta(hours=2))


async def test_material_refusals(world: World) -> None:
    now = real_now()
    await world.refresher.refresh_now(now=now)
    other = OWNER.__class__(OWNER.instance, "COM", "2222")
    with pytest.raises(NotFound) as missing:
        await world.status.signing_material(other, now=now)
    assert missing.value.code == "CertNotFound"

    # An auth certificate the configuration does not register is not used.
    world.conf.replace(
        shared=build_shared(world.material, world.ca.ocsp_url, None, world.peer_cert)
    )
    world.status.invalidate()
    with pytest.raises(CertificateValidationError) as unregistered:
        await world.status.auth_material(now=now)
    assert unregistered.value.code == "CertNotRegistered"

    # A CA approved for authentication only cannot back signatures.
    world.conf.replace(
        shared=build_shared(
            world.material,
            world.ca.ocsp_url,
            world.auth_cert,
            world.peer_cert,
            authentication_only=True,
        )
    )
    with pytest.raises(CertificateValidationError) as auth_only:
        await world.status.signing_material(OWNER, now=now)
    assert auth_only.value.code == "IncorrectCertificate"

    # An expired global configuration stops everything.
    world.conf.replace(expire_date=now - dt.timedelta(seconds=1))
    with pytest.raises(GlobalConfExpired):
        await world.status.auth_material(now=now)

    # Logging the token out stops signing even with reusable material.
    world.conf.replace(expire_date=now + dt.timedelta(days=1))
    world.login.logout()
    with pytest.raises(Unauthenticated):
        await world.status.auth_material(now=now)


async def test_refresher_runs_in_an_app_cleanup_context(
    world: World, aiohttp_client: Any
) -> None:
    app = web.Application()
    app.cleanup_ctx.append(world.refresher.context)
    await aiohttp_client(app)
    digest = cert_sha256(world.auth_cert)
    for _ in range(200):
        if await _cached(world, digest) is not None:
            break
        await asyncio.sleep(0.05)
    assert await _cached(world, digest) is not None
    await world.status.auth_material(now=real_now())


async def test_keys_are_decrypted_once_per_login(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Decrypting a key costs ~0.1 s of PBKDF2: an OCSP refresh (which
    # invalidates the checked material) must not repeat it; a new login must.
    import security_server.certstatus as module

    decrypted: list[str] = []
    real = module.load_private_key

    async def counting(*args: Any) -> Any:
        decrypted.append(args[-1])
        return await real(*args)

    monkeypatch.setattr(module, "load_private_key", counting)
    now = real_now()
    await world.refresher.refresh_now(now=now)
    first = await world.status.signing_material(OWNER, now=now)
    world.status.invalidate()  # what a refresh that stored something does
    again = await world.status.signing_material(OWNER, now=now)
    assert again.key is first.key
    assert len(decrypted) == 1

    world.login.logout()
    with pytest.raises(Unauthenticated):
        await world.status.signing_material(OWNER, now=now)
    await world.login.login(world.server.db, PIN)
    after_login = await world.status.signing_material(OWNER, now=now)
    assert len(decrypted) == 2
    assert after_login.key is not first.key
    assert after_login.key.public_key() == world.sign_cert.public_key()
