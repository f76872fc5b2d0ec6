"""Concurrent approvals of one certificate request: the CA issues once.

The CA call happens outside any database transaction, so approval first
claims the request (``pending`` -> ``issuing``); the loser of the race gets
Conflict and never reaches the CA. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import update

from central_server import cert_requests as cr
from central_server import registry
from central_server.member_requests import RequestStatus
from central_server.models import CertificateRequest
from jplink.clients.ca import (
    EnrolmentRequest,
    FakeCaEnrolmentClient,
    IssuedCertificate,
)
from jplink.errors import Conflict
from jplink.security.certs import CertProfile

from .test_requests import ACME, _sign_csr


class GatedCa:
    """A fake CA that holds every call until the test opens the gate."""

    def __init__(self, now: dt.datetime) -> None:
        self.inner = FakeCaEnrolmentClient(now=now)
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self.calls = 0

    async def enrol(self, request: EnrolmentRequest) -> IssuedCertificate:
        self.calls += 1
        self.entered.set()
        await self.gate.wait()
        return await self.inner.enrol(request)


async def _submit(db, now) -> int:
    await registry.add_member(db, "officer", ACME, "Acme Corp", now=now)
    sub = await cr.submit_certificate_request(
        db, usage=CertProfile.SIGN, member=ACME, csr_pem=_sign_csr(), now=now
    )
    return sub.id


async def test_two_concurrent_approvals_call_the_ca_once(db, now):
    rid = await _submit(db, now)
    ca = GatedCa(now)

    async def approve(actor: str):
        return await cr.approve_certificate_request(db, actor, rid, ca, now=now)

    first = asyncio.create_task(approve("alice"))
    second = asyncio.create_task(approve("bob"))
    await asyncio.wait_for(ca.entered.wait(), 30)
    # One approval is inside the CA call; the other must fail without one.
    done, _ = await asyncio.wait(
        {first, second}, timeout=10, return_when="FIRST_COMPLETED"
    )
    [loser] = done
    with pytest.raises(Conflict, match="being approved"):
        loser.result()
    ca.gate.set()
    winner = second if loser is first else first
    view = await asyncio.wait_for(winner, 30)
    assert view.status is RequestStatus.APPROVED
    assert ca.calls == 1 and len(ca.inner.issued) == 1
    assert view.serial == format(ca.inner.issued[0].serial_number, "x")


async def test_issuing_request_cannot_be_declined(db, now):
    rid = await _submit(db, now)
    ca = GatedCa(now)
    task = asyncio.create_task(
        cr.approve_certificate_request(db, "alice", rid, ca, now=now)
    )
    await asyncio.wait_for(ca.entered.wait(), 30)
    [listed] = await cr.list_certificate_requests(db, status=RequestStatus.ISSUING)
    assert listed.id == rid
    with pytest.raises(Conflict, match="being approved by alice"):
        await cr.decline_certificate_request(db, "bob", rid, "No", now=now)
    ca.gate.set()
    assert (await asyncio.wait_for(task, 30)).decided_by == "alice"


async def test_abandoned_claim_is_taken_over_after_the_timeout(db, now):
    rid = await _submit(db, now)
    # An approver that died while the CA was issuing left this behind.
    async with db.transaction() as s:
        await s.execute(
            update(CertificateRequest)
            .where(CertificateRequest.id == rid)
            .values(
                status=RequestStatus.ISSUING.value,
                claim_token="dead",
                claimed_by="crashed",
                claimed_at=now - dt.timedelta(minutes=1),
            )
        )
    ca = FakeCaEnrolmentClient(now=now)
    with pytest.raises(Conflict, match="being approved by crashed"):
        await cr.approve_certificate_request(db, "alice", rid, ca, now=now)
    assert ca.issued == []
    later = now + cr.CLAIM_TIMEOUT
    view = await cr.approve_certificate_request(db, "alice", rid, ca, now=later)
    assert view.status is RequestStatus.APPROVED and len(ca.issued) == 1
