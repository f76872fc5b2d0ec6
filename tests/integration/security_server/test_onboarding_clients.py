"""clientReg / clientDeletion through the proxies to a real central server.

The pair harness (``pair.py``) runs server A (consumer, owner COM/1111) and
server B (COM/2222) with their proxies. B also acts as the management
security server: its subsystem ``COM/2222/management`` (the
``managementRequestServiceProviderId`` of the saved global configuration)
offers ``clientReg`` and ``clientDeletion`` whose service address is the
central server's ``/managementservice/manage/`` endpoint (an in-process
central registration app). A's owner has the access right to them.

``register_client`` on A: the SOAP request signed by A's owner signing key
(RSA, PR-MSERV §2.1) with cert and OCSP parts -> A's client proxy -> B's
server proxy -> the central server, which verifies and stores it pending.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding

from central_server import management, registry, servers, trust
from central_server.app import make_registration_app
from central_server.config import CentralConfig
from central_server.db import open_database as open_central_db
from jplink.cli import root
from jplink.clients._confstore import save_configuration
from jplink.clients.globalconf import LoadedConfiguration
from jplink.errors import Conflict, NotFound, TransportError
from jplink.globalconf import (
    ContentIdentifier,
    ManagementService,
    Member,
    PrivateParameters,
    SharedParameters,
    Subsystem,
    serialize_private_parameters,
    serialize_shared_parameters,
)
from jplink.identifiers import ClientId
from jplink.security.certs import CertProfile, MemberSubject
from jplink.security.keys import KeyType
from security_server import (
    access_rights,
    certificates,
    clients,
    csrs,
    keys,
    registration,
    services,
    softtoken,
)
from security_server.models import CentralRequest
from security_server.ocsp_refresher import OcspRefresher
from security_server.states import ClientState
from tests.support.ports import free_port
from wsdl import WsdlOperation, WsdlSpec, build_wsdl

from .helpers import INSTANCE, PIN
from .pair import Node, Pair, open_pair, real_now

PROFILE = "ee.jplink.JpLinkCertificateProfileInfoProvider"
OPS = ("clientReg", "clientDeletion")


def _management(pair: Pair) -> ClientId:
    return pair.b.owner.subsystem("management")


async def _central(tmp_path: Path, pair: Pair) -> CentralConfig:
    config = CentralConfig(home=tmp_path / "central")
    config.home.mkdir()
    now = real_now()
    a = pair.a
    db = await open_central_db(config.db_url)
    try:
        await registry.initialize(
            db, "t", instance=INSTANCE, member_classes={"COM": "Companies"}, now=now
        )
        for node in (pair.a, pair.b):
            await registry.add_member(db, "t", node.owner, node.owner_name, now=now)
        await registry.add_subsystem(db, "t", a.subsystem, now=now)
        await registry.add_subsystem(db, "t", _management(pair), now=now)
        await registry.set_management_service_provider(
            db, "t", _management(pair), now=now
        )
        ca = pair.ca.material
        await trust.add_approved_ca(
            db,
            "t",
            name="JP-LINK Test CA",
            top_ca=trust.CaInfo(
                ca.root_cert.public_bytes(Encoding.DER),
                pair.ca.ocsp_url,
                ca.ocsp_cert.public_bytes(Encoding.DER),
            ),
            certificate_profile=PROFILE,
            now=now,
        )
        await servers.add_security_server(
            db, "t", a.server_id, address="127.0.0.1", now=now
        )
        assert a.auth_cert is not None
        await servers.register_auth_cert(
            db, "t", a.server_id, a.auth_cert.public_bytes(Encoding.DER), now=now
        )
        await servers.add_server_client(db, "t", a.server_id, a.subsystem, now=now)
    finally:
        await db.dispose()
    return config


async def _stored(config: CentralConfig) -> list[management.ManagementRequestView]:
    db = await open_central_db(config.db_url)
    try:
        return await management.list_management_requests(db)
    finally:
        await db.dispose()


def _publish(pair: Pair, manage_url: str) -> None:
    """Both homes get a configuration naming B's management subsystem, with
    private parameters (as an internal-configuration download saves)."""
    b = pair.b
    shared: SharedParameters = pair.shared
    members = tuple(
        dataclasses.replace(m, subsystems=(*m.subsystems, Subsystem(_management(pair))))
        if m.id == b.owner
        else m
        for m in shared.members
    )
    srvs = tuple(
        dataclasses.replace(s, clients=(*s.clients, _management(pair)))
        if s.id == b.server_id
        else s
        for s in shared.security_servers
    )
    shared = dataclasses.replace(shared, members=members, security_servers=srvs)
    private = PrivateParameters(
        instance_identifier=INSTANCE,
        management_service=ManagementService(
            auth_cert_reg_service_address=manage_url.replace("/manage/", "/"),
            provider_id=_management(pair),
        ),
        time_stamping_interval_seconds=60,
    )
    loaded = LoadedConfiguration(
        instance_identifier=INSTANCE,
        shared=shared,
        private=private,
        expire_date=pair.expire,
        version=6,
        source_url="http://127.0.0.1:9/internalconf",
    )
    for node in (pair.a, pair.b):
        save_configuration(
            node.config.globalconf.directory,
            loaded,
            {
                ContentIdentifier.SHARED_PARAMETERS: serialize_shared_parameters(
                    shared
                ),
                ContentIdentifier.PRIVATE_PARAMETERS: serialize_private_parameters(
                    private
                ),
            },
        )
    pair.shared = shared
    assert isinstance(members[0], Member)


async def _management_service_on_b(pair: Pair, manage_url: str) -> None:
    b, now = pair.b, real_now()
    db = b.db()
    mgmt = _management(pair)
    await clients.add_client(db, "t", mgmt, name="Management", now=now)
    await clients.set_client_state(db, "t", mgmt, ClientState.REGISTERED, now=now)
    wsdl = build_wsdl(
        WsdlSpec(
            name="management",
            namespace="http://x-road.eu/xsd/xroad.xsd",
            address=manage_url,
            operations=tuple(WsdlOperation(code=op, version="v1") for op in OPS),
        )
    )
    url = "http://127.0.0.1:9/management.wsdl"
    await services.add_wsdl_description(db, "t", mgmt, url=url, wsdl=wsdl, now=now)
    await services.set_description_enabled(db, "t", mgmt, url, enabled=True, now=now)
    for op in OPS:
        await access_rights.grant_access(db, "t", mgmt, op, pair.a.owner, now=now)


async def _rsa_sign_cert(pair: Pair) -> None:
    """A's owner gets an RSA signing certificate (management requests are RSA)."""
    a, now = pair.a, real_now()
    db = a.db()
    unlocked = await softtoken.login(db, PIN)
    key = await keys.generate_key(
        db,
        a.config.token_dir,
        unlocked,
        "t",
        usage=CertProfile.SIGN,
        member=a.owner,
        key_type=KeyType.RSA,
        now=now,
    )
    csr = await csrs.create_csr(
        db, a.config.token_dir, unlocked, "t", key.key_id, now=now
    )
    o = a.owner
    subject = MemberSubject(o.instance, o.member_class, o.member_code, a.owner_name)
    cert = await pair.ca.issue(CertProfile.SIGN, subject, csr.pem)
    delay = (cert.not_valid_before_utc - real_now()).total_seconds()
    if delay > 0:
        await asyncio.sleep(delay + 0.01)
    await certificates.import_certificate(
        db, "t", cert.public_bytes(Encoding.PEM), now=real_now()
    )
    when = real_now()
    report = await OcspRefresher(
        db, a.config, lambda: registration.load_configuration(a.config, now=when)
    ).refresh_now(now=when)
    assert not report.failed, report.outcomes
    a.res.certstatus.invalidate()


async def _prepare(tmp_path: Path, pair: Pair, aiohttp_server: Any) -> CentralConfig:
    config = await _central(tmp_path, pair)
    server = await aiohttp_server(make_registration_app(config))
    manage_url = str(server.make_url("/managementservice/manage/"))
    _publish(pair, manage_url)
    await _management_service_on_b(pair, manage_url)
    await _rsa_sign_cert(pair)
    return config


async def _requests(node: Node) -> list[CentralRequest]:
    from sqlalchemy import select

    async with node.db().transaction() as s:
        return list((await s.execute(select(CentralRequest))).scalars())


async def _state(node: Node, client: ClientId) -> str:
    found = {c.client_id: c.state.value for c in await clients.list_clients(node.db())}
    return found[client]


async def test_client_reg_and_deletion_reach_the_central_server(
    tmp_path, aiohttp_server
):
    async with open_pair(tmp_path, aiohttp_server) as pair:
        config = await _prepare(tmp_path, pair, aiohttp_server)
        a = pair.a
        billing = a.owner.subsystem("billing")
        await clients.add_client(a.db(), "t", billing, name="Billing", now=real_now())
        async with aiohttp.ClientSession() as http:
            sent = await registration.register_client(
                a.db(),
                a.config,
                billing,
                pin=PIN,
                session=http,
                actor="t",
                now=real_now(),
            )
            assert sent.state == "registration-in-progress"
            [stored] = await _stored(config)
            assert stored.id == sent.request_id
            assert stored.request.type.value == "clientReg"
            assert stored.request.client == billing
            assert stored.request.subsystem_name == "Billing"
            assert stored.status.value == "pending"
            assert stored.sender == str(a.owner)
            # The central server verified the owner's signature part.
            assert stored.signer is not None
            assert await _state(a, billing) == "registration-in-progress"

            # clientDeletion of the registered subsystem: plain SOAP.
            gone = await registration.unregister_client(
                a.db(), a.config, a.subsystem, session=http, actor="t", now=real_now()
            )
            assert gone.state == "deletion-in-progress"
            kinds = [r.request.type.value for r in await _stored(config)]
            assert sorted(kinds) == ["clientDeletion", "clientReg"]
            assert [r.kind for r in await _requests(a)] == [
                "clientReg",
                "clientDeletion",
            ]

            # Refusals change nothing: wrong state, unknown client, no proxy.
            with pytest.raises(Conflict):
                await registration.register_client(
                    a.db(), a.config, billing, pin=PIN, session=http, actor="t",
                    now=real_now(),
                )  # fmt: skip
            with pytest.raises(NotFound):
                await registration.register_client(
                    a.db(), a.config, a.owner.subsystem("nope"), pin=PIN,
                    session=http, actor="t", now=real_now(),
                )  # fmt: skip
            other = a.owner.subsystem("other")
            await clients.add_client(a.db(), "t", other, now=real_now())
            dead = dataclasses.replace(
                a.config,
                client_proxy=dataclasses.replace(
                    a.config.client_proxy, http_port=free_port()
                ),
            )
            with pytest.raises(TransportError):
                await registration.register_client(
                    a.db(), dead, other, pin=PIN, session=http, actor="t",
                    now=real_now(),
                )  # fmt: skip
            assert await _state(a, other) == "saved"
            assert len(await _stored(config)) == 2

            # The CLI does the same (its own event loop, in a thread).
            pin_file = tmp_path / "pin"
            pin_file.write_text(PIN + "\n")
            pin_file.chmod(0o600)
            args = ["ss", "clients", "register", str(other), "--home"]
            bad = await asyncio.to_thread(
                CliRunner().invoke,
                root,
                [*args, str(a.config.home), "--pin-file", str(tmp_path / "none")],
            )
            assert bad.exit_code != 0 and "Traceback" not in bad.output
            wrong = tmp_path / "wrong-pin"
            wrong.write_text("wrong\n")
            result = await asyncio.to_thread(
                CliRunner().invoke,
                root,
                [*args, str(a.config.home), "--pin-file", str(wrong)],
            )
            assert result.exit_code == 1, result.output
            assert "PinIncorrect" in result.output
            assert await _state(a, other) == "saved"
            result = await asyncio.to_thread(
                CliRunner().invoke,
                root,
                [*args, str(a.config.home), "--pin-file", str(pin_file)],
            )
            assert result.exit_code == 0, result.output
            shown = json.loads(result.output)
            assert shown["kind"] == "clientReg"
            assert shown["state"] == "registration-in-progress"
            assert shown["request_id"] in {r.id for r in await _stored(config)}


async def test_sync_states_after_the_configuration_lists_the_client(
    tmp_path, aiohttp_server
):
    async with open_pair(tmp_path, aiohttp_server) as pair:
        a, now = pair.a, real_now()
        billing = a.owner.subsystem("billing")
        await clients.add_client(a.db(), "t", billing, now=now)
        await clients.set_client_state(
            a.db(), "t", billing, ClientState.REGISTRATION_IN_PROGRESS, now=now
        )
        await clients.set_client_state(
            a.db(), "t", a.subsystem, ClientState.DELETION_IN_PROGRESS, now=now
        )
        shared = pair.shared
        members = tuple(
            dataclasses.replace(m, subsystems=(*m.subsystems, Subsystem(billing)))
            if m.id == a.owner
            else m
            for m in shared.members
        )
        srvs = tuple(
            dataclasses.replace(s, clients=(a.owner, billing))
            if s.id == a.server_id
            else s
            for s in shared.security_servers
        )
        changes = await registration.sync_states(
            a.db(),
            dataclasses.replace(shared, members=members, security_servers=srvs),
            server_id=a.server_id,
            now=now,
        )
        assert a.auth_cert is not None
        auth_sha = hashlib.sha256(a.auth_cert.public_bytes(Encoding.DER)).hexdigest()
        # The pair imported A's auth cert (saved); the configuration lists it.
        assert {(c.target, c.before, c.after) for c in changes} == {
            (auth_sha, "saved", "registered"),
            (str(billing), "registration-in-progress", "registered"),
            (str(a.subsystem), "deletion-in-progress", "saved"),
        }
        assert await _state(a, billing) == "registered"
        assert await _state(a, a.subsystem) == "saved"
        again = await registration.sync_states(
            a.db(),
            dataclasses.replace(shared, members=members, security_servers=srvs),
            server_id=a.server_id,
            now=now,
        )
        assert again == []
