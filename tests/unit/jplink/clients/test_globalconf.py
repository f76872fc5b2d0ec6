"""The global-configuration downloader against a real publisher on loopback.

The publisher (``central_server.publisher``) serves generations built in
memory with ``central_server.confgen.build_configuration`` (no database), so
each test controls exactly what is served: good, tampered, expired, garbage.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa

from central_server.confgen import (
    ConfSigner,
    PublicationSettings,
    RegistrySnapshot,
    SigningKeySet,
    build_anchor,
    build_configuration,
)
from central_server.config import CentralConfig
from central_server.publisher import ConfigurationStore, make_publisher_app
from central_server.registry import SystemParameters
from jplink.clients.globalconf import (
    fetch_global_configuration,
    load_saved_configuration,
)
from jplink.errors import (
    GlobalConfError,
    GlobalConfExpired,
    GlobalConfSignatureError,
    TransportError,
)
from jplink.globalconf import Member, MemberClass, Subsystem
from jplink.identifiers import ClientId
from tests.unit.jplink.globalconf.helpers import make_cert

INSTANCE = "JP-TEST"


@pytest.fixture(scope="module")
def keys() -> tuple[SigningKeySet, SigningKeySet]:
    out = []
    for label in ("internal", "external"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = make_cert(key, f"{label} signing")
        out.append(SigningKeySet(ConfSigner(label, key, cert), (cert,)))
    return out[0], out[1]


def snapshot(*member_codes: str) -> RegistrySnapshot:
    members = tuple(
        Member(
            ClientId(INSTANCE, "COM", code),
            "Companies",
            f"Company {code}",
            (Subsystem(ClientId(INSTANCE, "COM", code, "sub"), "Sub"),),
        )
        for code in member_codes
    )
    return RegistrySnapshot(
        parameters=SystemParameters(
            INSTANCE, 3600, 60, 600, ClientId(INSTANCE, "COM", "1", "sub")
        ),
        member_classes=(MemberClass("COM", "Companies"),),
        members=members,
        security_servers=(),
        global_groups=(),
        approved_cas=(),
        approved_tsas=(),
        change_marker=1,
    )


class Publisher:
    """A publisher app with a store the test publishes into."""

    def __init__(self, server: TestServer, store: ConfigurationStore, keys):
        self.server, self.store, self.keys = server, store, keys

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def publish(self, snap: RegistrySnapshot, now: dt.datetime):
        gen = build_configuration(
            snap,
            settings=PublicationSettings((self.url,), "https://cs:4001/ms/"),
            internal=self.keys[0],
            external=self.keys[1],
            now=now,
        )
        self.store.publish(gen)
        return gen

    def anchor(self, now: dt.datetime, *urls: str):
        return build_anchor(
            INSTANCE,
            urls or (self.url,),
            self.keys[0].verification_certs,
            external=False,
            now=now,
        )


@pytest.fixture
async def publisher(keys, tmp_path):
    store = ConfigurationStore(keep_versions=3)
    app = make_publisher_app(CentralConfig(home=tmp_path), store=store, refresh=False)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Publisher(server, store, keys)
    finally:
        await server.close()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


async def test_good_download_is_verified_saved_and_typed(
    publisher, session, tmp_path, now
):
    publisher.publish(snapshot("1", "2"), now)
    loaded = await fetch_global_configuration(
        session, publisher.anchor(now), tmp_path / "conf", now=now
    )
    assert [m.id.member_code for m in loaded.shared.members] == ["1", "2"]
    assert loaded.shared.is_registered(ClientId(INSTANCE, "COM", "2", "sub"))
    assert loaded.private is not None
    assert loaded.private.management_service.provider_id == ClientId(
        INSTANCE, "COM", "1", "sub"
    )
    assert loaded.expire_date == (now + dt.timedelta(seconds=600)).replace(
        microsecond=0
    )
    saved = load_saved_configuration(tmp_path / "conf", now=now)
    assert saved == loaded
    meta = json.loads((tmp_path / "conf" / INSTANCE / "current.json").read_text())
    assert meta["instanceIdentifier"] == INSTANCE
    assert set(meta["files"]) == {"SHARED-PARAMETERS", "PRIVATE-PARAMETERS"}


async def test_tampered_file_is_rejected_and_the_good_copy_kept(
    publisher, session, tmp_path, now
):
    conf = tmp_path / "conf"
    publisher.publish(snapshot("1"), now)
    await fetch_global_configuration(session, publisher.anchor(now), conf, now=now)
    before = (conf / INSTANCE / "current.json").read_bytes()

    later = now + dt.timedelta(minutes=1)
    gen = publisher.publish(snapshot("1", "666"), later)
    shared = next(loc for loc in gen.files if loc.endswith("shared-params.xml"))
    tampered = dict(gen.files)
    tampered[shared] = gen.files[shared].replace(b"Company 666", b"Company 999")
    publisher.store.publish(dataclasses.replace(gen, files=tampered))

    with pytest.raises(GlobalConfSignatureError, match="does not match"):
        await fetch_global_configuration(
            session, publisher.anchor(later), conf, now=later
        )
    assert (conf / INSTANCE / "current.json").read_bytes() == before
    kept = load_saved_configuration(conf, now=later)
    assert [m.id.member_code for m in kept.shared.members] == ["1"]
    assert len(list((conf / INSTANCE).glob("gen-*"))) == 1


async def test_expired_directory_is_rejected(publisher, session, tmp_path, now):
    publisher.publish(snapshot("1"), now - dt.timedelta(hours=1))
    with pytest.raises(GlobalConfExpired):
        await fetch_global_configuration(
            session, publisher.anchor(now), tmp_path / "conf", now=now
        )
    assert not (tmp_path / "conf" / INSTANCE / "current.json").exists()


async def test_saved_copy_expires(publisher, session, tmp_path, now):
    publisher.publish(snapshot("1"), now)
    await fetch_global_configuration(
        session, publisher.anchor(now), tmp_path / "conf", now=now
    )
    with pytest.raises(GlobalConfExpired):
        load_saved_configuration(tmp_path / "conf", now=now + dt.timedelta(hours=1))


async def test_first_source_down_second_used(publisher, session, tmp_path, now):
    publisher.publish(snapshot("1"), now)
    anchor = publisher.anchor(now, "http://127.0.0.1:9", publisher.url)
    loaded = await fetch_global_configuration(
        session, anchor, tmp_path / "conf", now=now
    )
    assert loaded.source_url == f"{publisher.url}/internalconf"


async def test_all_sources_down_is_a_transport_error(publisher, session, tmp_path, now):
    anchor = publisher.anchor(now, "http://127.0.0.1:9", "http://127.0.0.1:7")
    with pytest.raises(TransportError) as info:
        await fetch_global_configuration(session, anchor, tmp_path / "c", now=now)
    assert any("127.0.0.1:9" in note for note in info.value.__notes__)


async def test_untrusted_signer_is_rejected(publisher, session, tmp_path, now):
    publisher.publish(snapshot("1"), now)
    anchor = build_anchor(
        INSTANCE,
        (publisher.url,),
        publisher.keys[1].verification_certs,  # the external key's cert
        external=False,
        now=now,
    )
    with pytest.raises(GlobalConfSignatureError, match="No trusted"):
        await fetch_global_configuration(session, anchor, tmp_path / "c", now=now)


async def test_nothing_published_yet_is_refused(publisher, session, tmp_path, now):
    with pytest.raises(TransportError) as info:
        await fetch_global_configuration(
            session, publisher.anchor(now), tmp_path / "c", now=now
        )
    assert info.value.status == 503


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html", b"<html>maintenance</html>"),
        ("multipart/related; boundary=x", b"--x\r\n\r\ngarbage\r\n--x--\r\n"),
        ("multipart/related; boundary=x", os.urandom(4096)),
    ],
)
async def test_garbage_response_is_a_clear_error(
    session, tmp_path, now, keys, content_type, body
):
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/internalconf", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        anchor = build_anchor(
            INSTANCE, (url,), keys[0].verification_certs, external=False, now=now
        )
        with pytest.raises(GlobalConfError):
            await fetch_global_configuration(session, anchor, tmp_path / "c", now=now)
    finally:
        await server.close()
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").rglob("*.xml"))


async def test_unsupported_version_is_404(publisher, session, now):
    publisher.publish(snapshot("1"), now)
    async with session.get(f"{publisher.url}/internalconf?version=5") as resp:
        assert resp.status == 404
    async with session.get(f"{publisher.url}/internalconf?version=6") as resp:
        assert resp.status == 200
        assert resp.content_type == "multipart/related"


async def test_replayed_older_directory_is_refused_and_saved_copy_kept(
    publisher, session, tmp_path, now
):
    conf = tmp_path / "conf"
    # An attacker recorded this genuine directory (member 666 still listed).
    old = publisher.publish(snapshot("1", "666"), now)
    await fetch_global_configuration(session, publisher.anchor(now), conf, now=now)
    # The operator removes member 666; the servers download the new directory.
    later = now + dt.timedelta(minutes=2)
    publisher.publish(snapshot("1"), later)
    await fetch_global_configuration(session, publisher.anchor(later), conf, now=later)
    before = (conf / INSTANCE / "current.json").read_bytes()
    # The recorded one is replayed while it is still unexpired (600 s).
    publisher.store.publish(old)
    replay_time = later + dt.timedelta(minutes=1)
    assert old.expire_date > replay_time  # genuine and not yet expired
    with pytest.raises(GlobalConfError, match="replay") as info:
        await fetch_global_configuration(
            session, publisher.anchor(replay_time), conf, now=replay_time
        )
    assert info.value.code == "OutdatedGlobalConf"
    assert (conf / INSTANCE / "current.json").read_bytes() == before
    kept = load_saved_configuration(conf, now=replay_time)
    assert [m.id.member_code for m in kept.shared.members] == ["1"]


async def test_same_directory_again_is_accepted(publisher, session, tmp_path, now):
    conf = tmp_path / "conf"
    publisher.publish(snapshot("1"), now)
    first = await fetch_global_configuration(
        session, publisher.anchor(now), conf, now=now
    )
    again = await fetch_global_configuration(
        session, publisher.anchor(now), conf, now=now + dt.timedelta(seconds=30)
    )
    assert again.expire_date == first.expire_date
