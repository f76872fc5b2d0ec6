"""Fixtures of the admin API tests: the app, a key per role, a client helper."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from jplink.storage import Database
from security_server import audit
from security_server.admin import (
    Role,
    ServerRuntime,
    create_api_key,
    make_admin_app,
)
from security_server.config import SecurityServerConfig

ClientFactory = Callable[[web.Application], Any]


def real_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Admin:
    """The admin app under test, a key per role, and request helpers."""

    client: TestClient[web.Request, web.Application]
    db: Database
    config: SecurityServerConfig
    runtime: ServerRuntime
    keys: dict[Role, str]

    def headers(self, role: Role, *, xroad: bool = True) -> dict[str, str]:
        key = self.keys[role]
        value = f"X-Road-ApiKey token={key}" if xroad else f"Bearer {key}"
        return {"Authorization": value}

    async def call(
        self,
        method: str,
        path: str,
        role: Role,
        *,
        body: Any = None,
        data: bytes | None = None,
        expect: int = 200,
    ) -> Any:
        """Call as ``role``; check the status; return the decoded JSON."""
        kwargs: dict[str, Any] = {"headers": self.headers(role)}
        if body is not None:
            kwargs["json"] = body
        if data is not None:
            kwargs["data"] = data
        resp = await self.client.request(method, path, **kwargs)
        text = await resp.text()
        assert resp.status == expect, f"{method} {path}: {resp.status} {text}"
        if resp.content_type in ("application/json", "application/problem+json"):
            return json.loads(text)
        return text

    async def audit_actions(self) -> list[tuple[str, str]]:
        """(action, actor) of every audit row, oldest first."""
        rows = await audit.list_audit(self.db, limit=1000)
        return [(r.action, r.actor) for r in reversed(rows)]


async def make_admin(
    aiohttp_client: ClientFactory,
    db: Database,
    config: SecurityServerConfig,
    clock: Callable[[], dt.datetime] = real_now,
) -> Admin:
    keys: dict[Role, str] = {}
    for role in Role:
        _info, key = await create_api_key(
            db, "test", name=role.value, roles=frozenset({role}), now=clock()
        )
        keys[role] = key
    runtime = ServerRuntime(now=clock())
    app = make_admin_app(config, db=db, runtime=runtime, clock=clock)
    client = await aiohttp_client(app)
    return Admin(client, db, config, runtime, keys)


@pytest.fixture
async def admin(
    aiohttp_client: ClientFactory, db: Database, ss_config: SecurityServerConfig
) -> Admin:
    """The admin API over a migrated, uninitialised database."""
    return await make_admin(aiohttp_client, db, ss_config)
