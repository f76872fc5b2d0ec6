"""Initialisation and the software token, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest

from jplink.errors import Conflict, InvalidRequest, NotFound, Unauthenticated
from jplink.globalconf import parse_configuration_anchor
from jplink.security.certs import CertProfile
from jplink.storage import Database
from security_server import audit, clients, identity, keys, softtoken
from security_server.config import SecurityServerConfig
from security_server.keystore import decrypt_private_key
from security_server.states import ClientState

from .conftest import Server
from .helpers import OWNER, OWNER_NAME, PIN, SERVER_CODE, make_anchor


async def test_initialize_stores_identity_anchor_and_owner_client(
    db: Database, ss_config: SecurityServerConfig, now: dt.datetime
) -> None:
    anchor = make_anchor(now)
    info = await identity.initialize(
        db,
        ss_config,
        "cli:alice",
        anchor=anchor,
        owner=OWNER,
        owner_name=OWNER_NAME,
        server_code=SERVER_CODE,
        now=now,
    )
    assert str(info.server_id) == "SERVER:JP-TEST/COM/1111/ss1"
    assert info.anchor_sha256 == hashlib.sha256(anchor).hexdigest()
    assert await identity.get_identity(db) == info
    assert ss_config.anchor_path.read_bytes() == anchor
    assert ss_config.anchor_path.stat().st_mode & 0o777 == 0o600
    saved = identity.read_anchor(ss_config)
    assert saved == parse_configuration_anchor(anchor)
    (owner,) = await clients.list_clients(db)
    assert (owner.client_id, owner.is_owner, owner.state) == (
        OWNER,
        True,
        ClientState.SAVED,
    )
    (entry,) = await audit.list_audit(db)
    assert (entry.actor, entry.action, entry.target) == (
        "cli:alice",
        "server.init",
        str(info.server_id),
    )


async def test_initialize_refuses_second_init_and_wrong_instance(
    db: Database, ss_config: SecurityServerConfig, now: dt.datetime
) -> None:
    with pytest.raises(InvalidRequest) as exc:
        await identity.initialize(
            db,
            ss_config,
            "t",
            anchor=make_anchor(now, instance="OTHER"),
            owner=OWNER,
            owner_name=OWNER_NAME,
            server_code=SERVER_CODE,
            now=now,
        )
    assert exc.value.code == "InstanceMismatch"
    assert not ss_config.anchor_path.exists()
    with pytest.raises(NotFound):
        await identity.get_identity(db)
    kwargs: dict[str, Any] = dict(
        owner=OWNER, owner_name=OWNER_NAME, server_code=SERVER_CODE, now=now
    )
    await identity.initialize(db, ss_config, "t", anchor=make_anchor(now), **kwargs)
    with pytest.raises(Conflict) as again:
        await identity.initialize(db, ss_config, "t", anchor=make_anchor(now), **kwargs)
    assert again.value.code == "ServerAlreadyInitialized"


async def test_initialize_refuses_garbage_anchor(
    db: Database, ss_config: SecurityServerConfig, now: dt.datetime
) -> None:
    from jplink.errors import JPLinkError

    with pytest.raises(JPLinkError):
        await identity.initialize(
            db,
            ss_config,
            "t",
            anchor=b"<notAnAnchor/>",
            owner=OWNER,
            owner_name=OWNER_NAME,
            server_code=SERVER_CODE,
            now=now,
        )
    assert not ss_config.anchor_path.exists()


async def test_token_init_login_and_policy(db: Database, now: dt.datetime) -> None:
    with pytest.raises(NotFound) as missing:
        await softtoken.login(db, PIN)
    assert missing.value.code == "TokenNotInitialized"
    with pytest.raises(InvalidRequest) as weak:
        await softtoken.init_token(db, "t", pin="1234", now=now)
    assert weak.value.code == "WeakPin"
    await softtoken.init_token(db, "t", pin=PIN, now=now)
    with pytest.raises(Conflict):
        await softtoken.init_token(db, "t", pin=PIN, now=now)
    assert (await softtoken.login(db, PIN)).pin == PIN
    with pytest.raises(Unauthenticated) as wrong:
        await softtoken.login(db, PIN + "x")
    assert wrong.value.code == "PinIncorrect"
    info = await softtoken.get_token(db)
    assert (info.label, info.key_count) == ("softToken-0", 0)


async def test_login_state_is_process_memory(db: Database, now: dt.datetime) -> None:
    await softtoken.init_token(db, "t", pin=PIN, now=now)
    state = softtoken.TokenLogin()
    with pytest.raises(Unauthenticated) as inactive:
        state.unlocked()
    assert inactive.value.code == "TokenNotActive"
    with pytest.raises(Unauthenticated):
        await state.login(db, "wrong pin 123")
    assert not state.is_logged_in
    await state.login(db, PIN)
    assert state.unlocked().pin == PIN
    assert PIN not in repr(state.unlocked())
    state.logout()
    assert not state.is_logged_in


async def test_change_pin_reencrypts_every_key(
    server: Server, now: dt.datetime
) -> None:
    token_dir = server.config.token_dir
    await keys.generate_key(
        server.db, token_dir, server.unlocked, "t", usage=CertProfile.AUTH, now=now
    )
    await keys.generate_key(
        server.db,
        token_dir,
        server.unlocked,
        "t",
        usage=CertProfile.SIGN,
        member=OWNER,
        now=now,
    )
    before = sorted(p.name for p in token_dir.iterdir())
    new_pin = "another pin 42"
    with pytest.raises(Unauthenticated):
        await softtoken.change_pin(
            server.db, token_dir, "t", old_pin="wrong pin 1", new_pin=new_pin, now=now
        )
    assert sorted(p.name for p in token_dir.iterdir()) == before  # nothing changed
    unlocked = await softtoken.change_pin(
        server.db, token_dir, "t", old_pin=PIN, new_pin=new_pin, now=now
    )
    after = sorted(p.name for p in token_dir.iterdir())
    assert len(after) == 2 and not set(after) & set(before)
    for path in token_dir.iterdir():
        decrypt_private_key(path.read_bytes(), new_pin)
        with pytest.raises(Unauthenticated):
            decrypt_private_key(path.read_bytes(), PIN)
    with pytest.raises(Unauthenticated):
        await softtoken.login(server.db, PIN)
    assert await softtoken.login(server.db, new_pin) == unlocked
    for key in await keys.list_keys(server.db):
        await keys.load_private_key(server.db, token_dir, unlocked, key.key_id)
    actions = [e.action for e in await audit.list_audit(server.db)]
    assert actions[0] == "token.change-pin"
