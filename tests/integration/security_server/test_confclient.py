"""``conf download`` / ``conf status`` against a real publisher on loopback."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
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
from jplink.errors import GlobalConfError, TransportError
from jplink.globalconf import MemberClass, serialize_configuration_anchor
from jplink.identifiers import ClientId
from jplink.storage import Database
from security_server import audit, confclient, identity
from security_server.config import SecurityServerConfig
from tests.unit.jplink.globalconf.helpers import make_cert

from .helpers import INSTANCE, OWNER, OWNER_NAME, SERVER_CODE


def _signing_keys() -> tuple[SigningKeySet, SigningKeySet]:
    out = []
    for label in ("internal", "external"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = make_cert(key, f"{label} signing")
        out.append(SigningKeySet(ConfSigner(label, key, cert), (cert,)))
    return out[0], out[1]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_download_then_status(
    db: Database, ss_config: SecurityServerConfig, now: dt.datetime, tmp_path: Path
) -> None:
    internal, external = _signing_keys()
    store = ConfigurationStore(keep_versions=2)
    app = make_publisher_app(CentralConfig(home=tmp_path), store=store, refresh=False)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        snapshot = RegistrySnapshot(
            parameters=SystemParameters(
                INSTANCE, 3600, 60, 600, ClientId(INSTANCE, "COM", "1", "sub")
            ),
            member_classes=(MemberClass("COM", "Companies"),),
            members=(),
            security_servers=(),
            global_groups=(),
            approved_cas=(),
            approved_tsas=(),
            change_marker=1,
        )
        store.publish(
            build_configuration(
                snapshot,
                settings=PublicationSettings((url,), "https://cs:4001/ms/"),
                internal=internal,
                external=external,
                now=now,
            )
        )
        anchor = build_anchor(
            INSTANCE, (url,), internal.verification_certs, external=False, now=now
        )
        await identity.initialize(
            db,
            ss_config,
            "t",
            anchor=serialize_configuration_anchor(anchor),
            owner=OWNER,
            owner_name=OWNER_NAME,
            server_code=SERVER_CODE,
            now=now,
        )
        with pytest.raises(GlobalConfError):  # nothing downloaded yet
            confclient.global_configuration_status(ss_config, now=now)
        got = await confclient.download_global_configuration(
            db, ss_config, "t", now=now
        )
        assert (got.instance, got.expired, got.members) == (INSTANCE, False, 0)
        assert got.source_url is not None and got.source_url.startswith(url)
        assert got.expire_date > now
        assert confclient.global_configuration_status(ss_config, now=now) == got
        later = confclient.global_configuration_status(
            ss_config, now=got.expire_date + dt.timedelta(seconds=1)
        )
        assert later.expired and later.expire_date == got.expire_date
        assert (await audit.list_audit(db))[0].action == "globalconf.download"
        # The scheduled refresh saves the configuration but writes no row.
        rows = len(await audit.list_audit(db))
        again = await confclient.download_global_configuration(
            db, ss_config, "system:globalconf-refresh", now=now, record_audit=False
        )
        assert again.instance == INSTANCE
        assert len(await audit.list_audit(db)) == rows
    finally:
        await server.close()
    with pytest.raises(TransportError):  # the source is down: a clear error
        await confclient.download_global_configuration(db, ss_config, "t", now=now)
    assert confclient.global_configuration_status(ss_config, now=now) == got
