"""Generation from the registry, signing keys with rollover, and the publisher."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import stat
import subprocess

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from central_server import groups, registry, servers, trust
from central_server.confgen import (
    SourceType,
    activate_signing_key,
    add_signing_key,
    generate_anchor,
    generate_configuration,
    list_signing_keys,
    remove_signing_key,
)
from central_server.confgen.keys import key_file
from central_server.config import CentralConfig, PublisherSettings
from central_server.publisher import STORE, make_publisher_app
from jplink.cli import root
from jplink.errors import Conflict
from jplink.globalconf import (
    parse_configuration_anchor,
    parse_private_parameters,
    parse_shared_parameters,
    verify_directory,
    verify_file,
)
from jplink.identifiers import ClientId, GlobalGroupId, SecurityServerId
from jplink.xml import parse_xml
from tests.conftest import require_tool
from tests.unit.jplink.globalconf.helpers import load_schema

from .conftest import INSTANCE
from .helpers import make_cert

ACME = ClientId(INSTANCE, "COM", "1234")
MGMT = ClientId(INSTANCE, "GOV", "0001", "MANAGEMENT")
SS1 = SecurityServerId(INSTANCE, "COM", "1234", "ss1")


def _config(tmp_path, db_url: str) -> CentralConfig:
    return CentralConfig(
        home=tmp_path,
        database_url=db_url,
        publisher=PublisherSettings(
            source_urls=("http://cs.example.jp",), poll_seconds=0.05
        ),
    )


async def _populate(db, now):
    await registry.add_member(db, "t", ACME, "Acme Corp", now=now)
    await registry.add_subsystem(
        db, "t", ACME.subsystem("trade"), name="Trading", now=now
    )
    await registry.add_member(db, "t", MGMT.member, "Operator", now=now)
    await registry.add_subsystem(db, "t", MGMT, now=now)
    await registry.set_management_service_provider(db, "t", MGMT, now=now)
    await servers.add_security_server(db, "t", SS1, address="ss1.acme.jp", now=now)
    auth = make_cert("ss1", ca=False)
    digest = await servers.register_auth_cert(db, "t", SS1, auth, now=now)
    await servers.add_server_client(db, "t", SS1, ACME.subsystem("trade"), now=now)
    group = GlobalGroupId(INSTANCE, "owners")
    await groups.add_global_group(db, "t", group, "Server owners", now=now)
    await groups.add_group_member(db, "t", group, ACME, now=now)
    ca = make_cert("Test CA", ca=True)
    await trust.add_approved_ca(
        db,
        "t",
        name="Test CA",
        top_ca=trust.CaInfo(ca, "http://ocsp.example.jp", make_cert("ocsp", ca=False)),
        certificate_profile="ee.ria.xroad.common.certificateprofile.impl.Jp",
        now=now,
    )
    await trust.add_approved_tsa(
        db,
        "t",
        name="TSA",
        url="http://tsa.example.jp",
        cert_der=make_cert("tsa", ca=False),
        now=now,
    )
    return digest


@pytest.fixture
async def ready(db, db_url, tmp_path, now):
    """A populated registry with one internal and one external key."""
    config = _config(tmp_path, db_url)
    digest = await _populate(db, now)
    internal = await add_signing_key(db, "t", tmp_path, SourceType.INTERNAL, now=now)
    external = await add_signing_key(db, "t", tmp_path, SourceType.EXTERNAL, now=now)
    return config, digest, internal, external


async def test_generated_files_validate_parse_and_verify(db, ready, now, xroad_vectors):
    config, digest, internal, external = ready
    gen = await generate_configuration(db, config, now=now)
    shared = next(
        d for loc, d in gen.files.items() if loc.endswith("/shared-params.xml")
    )
    private = next(
        d for loc, d in gen.files.items() if loc.endswith("/private-params.xml")
    )
    assert set(gen.files) == {
        f"/V6/{gen.version_id}/shared-params.xml",
        f"/V6/{gen.version_id}/private-params.xml",
    }
    load_schema(xroad_vectors, "xsd-shared-parameters-v6.xsd").assertValid(
        etree.fromstring(shared)
    )
    load_schema(xroad_vectors, "xsd-private-parameters-v3.xsd").assertValid(
        etree.fromstring(private)
    )
    model = parse_shared_parameters(shared)
    assert model.member_name(ACME) == "Acme Corp"
    assert model.is_registered(ACME.subsystem("trade"))
    server = model.server(SS1)
    assert server.address == "ss1.acme.jp"
    assert server.clients == (ACME.subsystem("trade"),)

    assert server.auth_cert_hashes == (base64.b64decode(digest),)
    assert model.global_groups_of(ACME) == (GlobalGroupId(INSTANCE, "owners"),)
    assert model.approved_cas[0].top_ca.ocsp[0].url == "http://ocsp.example.jp"
    assert model.approved_tsas[0].url == "http://tsa.example.jp"
    assert model.global_settings.ocsp_freshness_seconds == 3600
    assert model.verification_certs(external=False) == (internal.cert,)
    assert model.verification_certs(external=True) == (external.cert,)
    priv = parse_private_parameters(private)
    assert priv.management_service.provider_id == MGMT
    assert priv.time_stamping_interval_seconds == 60
    # internalconf lists both files, externalconf only shared params.
    vin = verify_directory(
        gen.internal.body,
        gen.internal.content_type,
        verification_certs=[internal.cert],
        now=now,
    )
    assert [e.content_identifier for e in vin.entries] == [
        "PRIVATE-PARAMETERS",
        "SHARED-PARAMETERS",
    ]
    for entry in vin.entries:
        verify_file(entry, gen.files[entry.content_location])
    assert vin.expire_date == (now + dt.timedelta(seconds=600)).replace(microsecond=0)
    vex = verify_directory(
        gen.external.body,
        gen.external.content_type,
        verification_certs=[external.cert],
        now=now,
    )
    assert [e.content_identifier for e in vex.entries] == ["SHARED-PARAMETERS"]


async def test_generation_is_deterministic_for_the_same_registry(db, ready, now):
    config = ready[0]
    one = await generate_configuration(db, config, now=now)
    two = await generate_configuration(db, config, now=now + dt.timedelta(seconds=61))
    assert one.version_id != two.version_id
    assert sorted(one.files.values()) == sorted(two.files.values())
    await registry.add_member(db, "t", ClientId(INSTANCE, "COM", "9"), "New", now=now)
    three = await generate_configuration(db, config, now=now)
    assert b"New" in b"".join(three.files.values())


async def test_generation_needs_keys_and_a_management_provider(
    db, db_url, tmp_path, now
):
    config = _config(tmp_path, db_url)
    with pytest.raises(Conflict, match="No active internal"):
        await generate_configuration(db, config, now=now)
    await add_signing_key(db, "t", tmp_path, SourceType.INTERNAL, now=now)
    await add_signing_key(db, "t", tmp_path, SourceType.EXTERNAL, now=now)
    with pytest.raises(Conflict, match="management service provider"):
        await generate_configuration(db, config, now=now)


async def test_two_stage_key_rollover(db, ready, tmp_path, now):
    config, _digest, old, _external = ready
    assert old.active
    path = key_file(tmp_path, old.key_id)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    new = await add_signing_key(db, "t", tmp_path, SourceType.INTERNAL, now=now)
    assert not new.active
    anchor = parse_configuration_anchor(
        await generate_anchor(db, config, external=False, now=now)
    )
    assert anchor.verification_certs == (old.cert, new.cert)
    gen = await generate_configuration(db, config, now=now)
    # Still signed by the old key; the new cert is already published.
    verify_directory(
        gen.internal.body,
        gen.internal.content_type,
        verification_certs=[old.cert],
        now=now,
    )
    shared = parse_shared_parameters(
        next(d for loc, d in gen.files.items() if loc.endswith("shared-params.xml"))
    )
    assert shared.verification_certs(external=False) == (old.cert, new.cert)

    await activate_signing_key(db, "t", new.key_id, now=now)
    gen = await generate_configuration(db, config, now=now)
    with pytest.raises(Exception, match="No trusted"):
        verify_directory(
            gen.internal.body,
            gen.internal.content_type,
            verification_certs=[old.cert],
            now=now,
        )
    verify_directory(
        gen.internal.body,
        gen.internal.content_type,
        verification_certs=[new.cert],
        now=now,
    )

    with pytest.raises(Conflict, match="is active"):
        await remove_signing_key(db, "t", tmp_path, new.key_id, now=now)
    with pytest.raises(Conflict, match="already active"):
        await activate_signing_key(db, "t", new.key_id, now=now)
    await remove_signing_key(db, "t", tmp_path, old.key_id, now=now)
    assert not path.exists()
    anchor = parse_configuration_anchor(
        await generate_anchor(db, config, external=False, now=now)
    )
    assert anchor.verification_certs == (new.cert,)
    kinds = [(k.source_type, k.active) for k in await list_signing_keys(db)]
    assert kinds == [(SourceType.EXTERNAL, True), (SourceType.INTERNAL, True)]


async def test_anchor_is_independently_checkable(db, ready, tmp_path, now):
    config = ready[0]
    data = await generate_anchor(db, config, external=True, now=now)
    root_el = parse_xml(data)
    assert root_el.findtext("instanceIdentifier") == INSTANCE
    assert root_el.findtext("source/downloadURL") == "http://cs.example.jp/externalconf"
    pem = tmp_path / "anchor-cert.pem"
    cert_b64 = root_el.findtext("source/verificationCert")
    pem.write_text(
        "-----BEGIN CERTIFICATE-----\n" + cert_b64 + "\n-----END CERTIFICATE-----\n"
    )
    out = subprocess.run(
        [require_tool("openssl"), "x509", "-noout", "-subject", "-in", str(pem)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "external configuration signing" in out
    assert ready[3].cert.public_bytes(Encoding.DER)


async def test_publisher_serves_and_regenerates_on_change(
    db, ready, aiohttp_client, now
):
    config = ready[0]
    client = await aiohttp_client(make_publisher_app(config, clock=lambda: now))
    store = client.server.app[STORE]
    first = store.current
    assert first is not None
    resp = await client.get("/internalconf")
    assert resp.status == 200
    assert resp.content_type == "multipart/related"
    body = await resp.read()
    assert body == first.internal.body  # static bytes, not regenerated
    assert (await (await client.get("/internalconf")).read()) == body
    loc = next(iter(first.files))
    resp = await client.get(loc)
    assert resp.status == 200 and resp.content_type == "application/xml"
    assert await resp.read() == first.files[loc]
    assert (await client.get("/V6/1/shared-params.xml")).status == 404
    assert (await client.get("/internalconf?version=2")).status == 404

    await registry.add_member(db, "t", ClientId(INSTANCE, "COM", "77"), "Late", now=now)
    for _ in range(100):
        if store.current is not first:
            break
        await asyncio.sleep(0.05)
    second = store.current
    assert second is not first and second.version_id > first.version_id
    assert (
        b"Late"
        in await (
            await client.get(
                next(loc for loc in second.files if loc.endswith("shared-params.xml"))
            )
        ).read()
    )
    # The previous generation's files stay downloadable.
    assert (await client.get(loc)).status == 200


def test_cli_keys_anchor_and_generate(tmp_path):
    runner = CliRunner()
    home = tmp_path / "central"

    def cli(*args: str):
        result = runner.invoke(root, ["central", *args, "--home", str(home)])
        assert result.exit_code == 0, result.output
        return result.output

    cli("init", "--instance", INSTANCE, "--member-class", "COM=Companies")
    out = cli("conf", "keys", "add")
    assert '"active": true' in out
    cli("conf", "keys", "add", "--external")
    out = cli("conf", "keys", "add")
    assert '"active": false' in out
    assert cli("conf", "keys", "list").count('"keyId"') == 3
    out = cli("conf", "anchor", "--out", str(tmp_path / "anchor.xml"))
    assert "SHA-256" in out
    anchor = parse_configuration_anchor((tmp_path / "anchor.xml").read_bytes())
    assert len(anchor.verification_certs) == 2
    result = runner.invoke(root, ["central", "conf", "generate", "--home", str(home)])
    assert result.exit_code != 0
    assert "management service provider" in result.output
