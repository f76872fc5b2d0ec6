"""ca_tsa storage on SQLite and PostgreSQL: issued certificates, status, TSA serials."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import AsyncIterator

import pytest
from cryptography import x509

from ca_tsa import repositories
from ca_tsa.models import MIGRATIONS, CertStatus, serial_to_key
from ca_tsa.repositories import CertificateRecord
from jplink.errors import Conflict, NotFound, StorageError
from jplink.security.certs import CertProfile
from jplink.storage import Database, create_database, upgrade_database

NOW = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = create_database(db_url)
    await upgrade_database(database, MIGRATIONS)
    yield database
    await database.dispose()


def _record(
    serial: int,
    member: str = "JP/COM/1",
    profile: CertProfile = CertProfile.SIGN,
    at: dt.datetime = NOW,
) -> CertificateRecord:
    der = serial.to_bytes(20, "big") + member.encode()
    return CertificateRecord(
        serial=serial,
        subject=f"CN={member}",
        profile=profile,
        member_id=member,
        server_code="ss1" if profile is CertProfile.AUTH else None,
        not_before=at,
        not_after=at + dt.timedelta(days=730),
        issued_at=at,
        status=CertStatus.GOOD,
        revoked_at=None,
        reason=None,
        sha256=hashlib.sha256(der).hexdigest(),
        der=der,
    )


async def test_store_get_list_and_status(db: Database) -> None:
    big = (1 << 159) - 1  # the largest serial the CA issues fits
    small = 1 << 64
    async with db.transaction() as s:
        await repositories.add_certificate(s, _record(big, "JP/COM/1"))
        await repositories.add_certificate(
            s, _record(small, "JP/GOV/2", CertProfile.AUTH, NOW + dt.timedelta(hours=1))
        )
    async with db.transaction() as s:
        got = await repositories.get_certificate(s, big)
        assert got == _record(big, "JP/COM/1")
        assert got.not_after.tzinfo is not None
        listed = await repositories.list_certificates(s)
        assert [r.serial for r in listed] == [small, big]  # newest first
        only = await repositories.list_certificates(s, member_id="JP/GOV/2")
        assert [r.serial for r in only] == [small]
        assert only[0].server_code == "ss1"
        assert [
            r.serial for r in await repositories.list_certificates(s, limit=1, offset=1)
        ] == [big]
        status = await repositories.lookup_status(s, big)
        assert status == repositories.CertStatusRecord(
            serial=big,
            revoked=False,
            revoked_at=None,
            reason=None,
            not_after=NOW + dt.timedelta(days=730),
        )
        for unknown in (12345, 0, -1, 1 << 200):
            assert await repositories.lookup_status(s, unknown) is None
        with pytest.raises(NotFound):
            await repositories.get_certificate(s, 12345)


async def test_duplicate_serial_rolls_back(db: Database) -> None:
    async with db.transaction() as s:
        await repositories.add_certificate(s, _record(1 << 70))
    with pytest.raises(StorageError):
        async with db.transaction() as s:
            await repositories.add_certificate(s, _record(1 << 71, "JP/COM/2"))
            other = _record(1 << 70, "JP/COM/3")
            await repositories.add_certificate(s, other)
    async with db.transaction() as s:
        # Nothing of the failed transaction was kept.
        assert [r.serial for r in await repositories.list_certificates(s)] == [1 << 70]


async def test_revocation_is_recorded_once(db: Database) -> None:
    serial = 0xABCDEF << 80
    async with db.transaction() as s:
        await repositories.add_certificate(s, _record(serial))
    at = NOW + dt.timedelta(days=3, microseconds=123456)
    async with db.transaction() as s:
        rec = await repositories.mark_revoked(
            s, serial, reason=x509.ReasonFlags.key_compromise, revoked_at=at
        )
    assert rec.status is CertStatus.REVOKED
    assert rec.revoked_at == at
    async with db.transaction() as s:
        status = await repositories.lookup_status(s, serial)
    assert status is not None and status.revoked
    assert status.reason is x509.ReasonFlags.key_compromise
    assert status.revoked_at == at
    with pytest.raises(Conflict, match="already revoked"):
        async with db.transaction() as s:
            await repositories.mark_revoked(
                s, serial, reason=x509.ReasonFlags.superseded, revoked_at=NOW
            )
    with pytest.raises(NotFound):
        async with db.transaction() as s:
            await repositories.mark_revoked(
                s, 777, reason=x509.ReasonFlags.superseded, revoked_at=NOW
            )


async def test_serial_key_is_fixed_width() -> None:
    assert serial_to_key(1) == "0" * 39 + "1"
    assert len(serial_to_key((1 << 160) - 1)) == 40
    with pytest.raises(ValueError):
        serial_to_key(0)


async def test_reserve_tsa_serials_concurrently_gives_disjoint_ranges(
    db: Database, db_url: str
) -> None:
    sizes = [1 + (i % 7) for i in range(60)]
    ranges = await asyncio.gather(
        *(repositories.reserve_tsa_serials(db, n) for n in sizes)
    )
    assert sorted(len(r) for r in ranges) == sorted(sizes)
    seen: set[int] = set()
    for r in ranges:
        assert r.step == 1 and r.start >= 1
        assert seen.isdisjoint(r)
        seen.update(r)
    assert seen == set(range(1, sum(sizes) + 1))  # no gaps, no overlaps

    # A second Database object (a restart, or another worker) continues after them.
    other = create_database(db_url)
    try:
        await upgrade_database(other, MIGRATIONS)  # already at head: a no-op
        both = await asyncio.gather(
            repositories.reserve_tsa_serials(other, 100),
            repositories.reserve_tsa_serials(db, 100),
        )
    finally:
        await other.dispose()
    assert sorted(r.start for r in both) == [sum(sizes) + 1, sum(sizes) + 101]
    with pytest.raises(ValueError):
        await repositories.reserve_tsa_serials(db, 0)
