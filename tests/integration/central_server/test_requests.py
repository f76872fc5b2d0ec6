"""Member-code and certificate requests: submit, approve, decline, replay."""

from __future__ import annotations

import pytest
from cryptography import x509
from sqlalchemy import func, select

from central_server import cert_requests as cr
from central_server import member_requests as mr
from central_server import registry
from central_server.member_requests import RequestStatus
from central_server.models import AuditEntry, Base, CertificateRequest, Member
from jplink.clients.ca import FakeCaEnrolmentClient
from jplink.errors import Conflict, InvalidRequest, NotFound, TransportError
from jplink.identifiers import ClientId
from jplink.security.certs import CertProfile
from jplink.storage import Database

from .conftest import INSTANCE
from .helpers import make_csr_pem

ACME = ClientId(INSTANCE, "COM", "1234")


async def _count(db: Database, model: type[Base]) -> int:
    async with db.transaction() as s:
        return int(
            (await s.execute(select(func.count()).select_from(model))).scalar_one()
        )


def _sign_csr(name: str = "Acme Corp", code: str = "1234") -> str:
    # JP-LINK profile for sign certs: C=JP, O=member name, CN=member code.
    return make_csr_pem(code, o=name)


async def test_member_request_approved_creates_member(db, now):
    sub = await mr.submit_member_request(
        db,
        admin_email="admin@acme.example.jp",
        organisation_name="Acme Corp",
        member_class="COM",
        requested_code="1234",
        extra_info="We sell data.",
        now=now,
    )
    status = await mr.member_request_status(db, sub.id, sub.token)
    assert status.status is RequestStatus.PENDING
    with pytest.raises(NotFound):
        await mr.member_request_status(db, sub.id, "wrong-token")
    info = await mr.approve_member_request(db, "officer", sub.id, now=now)
    assert info.id == ACME
    assert [m.id for m in await registry.list_members(db)] == [ACME]
    status = await mr.member_request_status(db, sub.id, sub.token)
    assert (status.status, status.member_code, status.decided_by) == (
        RequestStatus.APPROVED,
        "1234",
        "officer",
    )
    with pytest.raises(Conflict):  # decided once only
        await mr.approve_member_request(db, "officer", sub.id, now=now)
    with pytest.raises(Conflict):
        await mr.decline_member_request(db, "officer", sub.id, "late", now=now)


async def test_member_request_decline_reason_is_readable(db, now):
    sub = await mr.submit_member_request(
        db,
        admin_email="a@b.example",
        organisation_name="Shady Ltd",
        member_class="COM",
        now=now,
    )
    await mr.decline_member_request(db, "officer", sub.id, "Unknown company", now=now)
    view = await mr.member_request_status(db, sub.id, sub.token)
    assert (view.status, view.decline_reason) == (
        RequestStatus.DECLINED,
        "Unknown company",
    )
    # After a decline the organisation may ask again.
    again = await mr.submit_member_request(
        db,
        admin_email="a@b.example",
        organisation_name="Shady Ltd",
        member_class="COM",
        now=now,
    )
    assert again.id != sub.id
    assert [
        r.id for r in await mr.list_member_requests(db, status=RequestStatus.PENDING)
    ] == [again.id]


async def test_member_request_duplicates_and_bad_input(db, now):
    base = {
        "admin_email": "admin@acme.example.jp",
        "organisation_name": "Acme Corp",
        "member_class": "COM",
    }
    first = await mr.submit_member_request(db, **base, now=now)
    audit_before = await _count(db, AuditEntry)
    with pytest.raises(Conflict):  # same organisation, spelled differently
        await mr.submit_member_request(
            db, **{**base, "organisation_name": "  acme   CORP "}, now=now
        )
    bad_cases = [
        ({"admin_email": "not-an-email"}, InvalidRequest),
        ({"member_class": "NOPE"}, InvalidRequest),
        ({"organisation_name": "Other", "requested_code": "a/b"}, InvalidRequest),
        ({"organisation_name": "Other", "extra_info": "x\x00y"}, InvalidRequest),
        ({"organisation_name": ""}, InvalidRequest),
    ]
    for change, error in bad_cases:
        with pytest.raises(error):
            await mr.submit_member_request(db, **{**base, **change}, now=now)
    assert await _count(db, AuditEntry) == audit_before
    with pytest.raises(InvalidRequest):  # no code requested and none given
        await mr.approve_member_request(db, "officer", first.id, now=now)
    await registry.add_member(db, "x", ACME, "Someone else", now=now)
    with pytest.raises(Conflict):  # code taken: nothing half-written
        await mr.approve_member_request(
            db, "officer", first.id, member_code="1234", now=now
        )
    assert (await mr.member_request_status(db, first.id, first.token)).status is (
        RequestStatus.PENDING
    )
    assert await _count(db, Member) == 1
    with pytest.raises(Conflict):  # requested code already taken
        await mr.submit_member_request(
            db,
            **{**base, "organisation_name": "New", "requested_code": "1234"},
            now=now,
        )
    with pytest.raises(NotFound):
        await mr.approve_member_request(db, "officer", 999, now=now)


async def test_sign_certificate_request_issued_by_ca(db, now):
    await registry.add_member(db, "officer", ACME, "Acme Corp", now=now)
    csr = _sign_csr()
    sub = await cr.submit_certificate_request(
        db, usage=CertProfile.SIGN, member=ACME, csr_pem=csr, now=now
    )
    with pytest.raises(Conflict):  # the same CSR again is a replay
        await cr.submit_certificate_request(
            db, usage=CertProfile.SIGN, member=ACME, csr_pem=csr, now=now
        )
    ca = FakeCaEnrolmentClient(now=now)
    view = await cr.approve_certificate_request(db, "officer", sub.id, ca, now=now)
    assert view.status is RequestStatus.APPROVED
    got = await cr.certificate_request_status(db, sub.id, sub.token)
    assert got.certificate_pem is not None
    cert = x509.load_pem_x509_certificate(got.certificate_pem.encode())
    # The issued certificate certifies the CSR's key and names the member.
    csr_obj = x509.load_pem_x509_csr(csr.encode())
    assert cert.public_key() == csr_obj.public_key()
    assert format(cert.serial_number, "x") == got.serial
    cert.verify_directly_issued_by(ca.issuer.cert)
    with pytest.raises(Conflict):
        await cr.approve_certificate_request(db, "officer", sub.id, ca, now=now)
    assert len(ca.issued) == 1


async def test_ca_failure_leaves_request_pending(db, now):
    await registry.add_member(db, "officer", ACME, "Acme Corp", now=now)
    sub = await cr.submit_certificate_request(
        db, usage=CertProfile.SIGN, member=ACME, csr_pem=_sign_csr(), now=now
    )
    audit_before = await _count(db, AuditEntry)
    ca = FakeCaEnrolmentClient(
        now=now, fail_with=TransportError("CA down", url="http://ca.invalid")
    )
    with pytest.raises(TransportError):
        await cr.approve_certificate_request(db, "officer", sub.id, ca, now=now)
    view = await cr.certificate_request_status(db, sub.id, sub.token)
    assert (view.status, view.certificate_pem) == (RequestStatus.PENDING, None)
    assert await _count(db, AuditEntry) == audit_before
    await cr.decline_certificate_request(db, "sec", sub.id, "Key too old", now=now)
    view = await cr.certificate_request_status(db, sub.id, sub.token)
    assert (view.status, view.decline_reason) == (RequestStatus.DECLINED, "Key too old")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"csr_pem": "garbage"}, InvalidRequest),
        ({"csr_pem": make_csr_pem("1234", o="Wrong Name")}, InvalidRequest),
        ({"member": ClientId(INSTANCE, "COM", "9999")}, NotFound),
        ({"member": ACME.subsystem("sub")}, InvalidRequest),
        ({"usage": CertProfile.AUTH}, InvalidRequest),  # auth without server code
        ({"server_code": "ss1"}, InvalidRequest),  # sign with a server code
    ],
)
async def test_bad_certificate_requests_store_nothing(db, now, kwargs, error):
    await registry.add_member(db, "officer", ACME, "Acme Corp", now=now)
    args = {"usage": CertProfile.SIGN, "member": ACME, "csr_pem": _sign_csr()}
    with pytest.raises(error):
        await cr.submit_certificate_request(db, **{**args, **kwargs}, now=now)
    assert await _count(db, CertificateRequest) == 0


async def test_auth_certificate_request(db, now):
    await registry.add_member(db, "officer", ACME, "Acme Corp", now=now)
    # auth profile: CN = server code.
    csr = make_csr_pem("ss1", o="Acme Corp")
    sub = await cr.submit_certificate_request(
        db, usage=CertProfile.AUTH, member=ACME, csr_pem=csr, server_code="ss1", now=now
    )
    [pending] = await cr.list_certificate_requests(db, status=RequestStatus.PENDING)
    assert (pending.id, pending.usage, pending.server_code) == (
        sub.id,
        CertProfile.AUTH,
        "ss1",
    )
    view = await cr.approve_certificate_request(
        db, "officer", sub.id, FakeCaEnrolmentClient(now=now), now=now
    )
    assert view.certificate_pem is not None
    cert = x509.load_pem_x509_certificate(view.certificate_pem.encode())
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in eku
