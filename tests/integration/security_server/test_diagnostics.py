"""Diagnostics: certificate OCSP state and TSA reachability against live services."""

from __future__ import annotations

import dataclasses
from typing import Any

import aiohttp

from ca_tsa.app import make_tsa_app
from jplink.globalconf import ApprovedTSA
from security_server.diagnostics import certificate_diagnostics, tsa_diagnostics
from security_server.ocsp_cache import cert_sha256

from .test_certstatus_world import World, real_now, world

__all__ = ["world"]


async def test_certificate_diagnostics(world: World) -> None:
    before = await certificate_diagnostics(world.server.db, now=real_now())
    assert {d.ocsp_status for d in before} == {None}
    now = real_now()
    await world.refresher.refresh_now(now=now)
    after = await certificate_diagnostics(
        world.server.db, now=now, freshness_seconds=3600
    )
    assert {d.sha256 for d in after} == {
        cert_sha256(world.sign_cert),
        cert_sha256(world.auth_cert),
    }
    for item in after:
        assert item.ocsp_status == "good" and item.fresh is True
        assert item.age_seconds is not None and -300 < item.age_seconds < 60
    await world.ca.revoke(world.sign_cert)
    await world.refresher.refresh_now(now=real_now())
    states = {
        d.sha256: d
        for d in await certificate_diagnostics(
            world.server.db, now=real_now(), freshness_seconds=3600
        )
    }
    assert states[cert_sha256(world.sign_cert)].ocsp_status == "revoked"
    assert states[cert_sha256(world.sign_cert)].fresh is False


async def test_tsa_diagnostics(world: World, aiohttp_server: Any) -> None:
    tsa = await aiohttp_server(make_tsa_app(world.ca_config))
    shared = dataclasses.replace(
        world.conf().shared,
        approved_tsas=(
            ApprovedTSA("Test TSA", str(tsa.make_url("/")), world.material.tsa_cert),
            ApprovedTSA("Gone TSA", "http://127.0.0.1:9/", world.material.tsa_cert),
            # Answers, but with another TSA's certificate than the one approved.
            ApprovedTSA("Wrong cert", str(tsa.make_url("/")), world.material.ocsp_cert),
        ),
    )
    async with aiohttp.ClientSession() as session:
        results = await tsa_diagnostics(shared, now=real_now(), session=session)
    assert [r.name for r in results] == ["Test TSA", "Gone TSA", "Wrong cert"]
    good, gone, wrong = results
    assert good.ok and good.gen_time is not None and good.error is None
    assert not gone.ok and gone.error is not None and "NetworkError" in gone.error
    assert not wrong.ok and wrong.error is not None
