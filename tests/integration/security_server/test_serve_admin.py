"""``jplink ss serve``'s process: the admin API at once, the exchange once it
can run (token logged in through the API, registered auth cert, fresh OCSP).

The first test starts from an empty home; the second uses the pair's world
(CA, two initialised servers, global configuration): A is served with
:func:`security_server.serve.serving` and no PIN, so its exchange waits until
an operator logs the token in through the admin API; then a real exchange
goes from A to B, and logging out stops A's proxies again.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp

from security_server.admin import Role, ServerRuntime, create_api_key
from security_server.config import CONFIG_FILE, SecurityServerConfig, load_ss_config
from security_server.db import open_database
from security_server.serve import running, serving
from tests.support.ports import free_port

from .helpers import PIN
from .pair import StubService, prepare_pair, real_now, start_ca, trades_request


def _with_admin(config: SecurityServerConfig) -> SecurityServerConfig:
    """The node's configuration with the admin API on a free port."""
    path = config.home / CONFIG_FILE
    text = path.read_text()
    check = "exchange_check_seconds = 0.5\n"
    if "[admin]\n" in text:  # the pair's homes have one already
        text = text.replace("[admin]\n", "[admin]\n" + check, 1)
    else:
        text += f'[admin]\nhost = "127.0.0.1"\nport = {free_port()}\n' + check
    path.write_text(text)
    return load_ss_config(config.home)


async def _key(config: SecurityServerConfig, role: Role) -> str:
    db = await open_database(config.db_url)
    try:
        _info, key = await create_api_key(
            db, "test", name="operator", roles=frozenset({role}), now=real_now()
        )
        return key
    finally:
        await db.dispose()


async def _until(runtime: ServerRuntime, state: str, seconds: float = 30) -> str:
    """Wait for the exchange state; return its reason."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while runtime.status.state.value != state:
        assert loop.time() < deadline, runtime.status
        await asyncio.sleep(0.05)
    return runtime.status.reason


async def test_admin_api_runs_before_initialisation(tmp_path: Path) -> None:
    home = tmp_path / "ss"
    home.mkdir()
    (home / CONFIG_FILE).write_text("")
    config = _with_admin(load_ss_config(home))
    key = await _key(config, Role.AUDITOR)
    base = f"http://127.0.0.1:{config.admin.port}/api/v1"
    async with (
        serving(config) as runtime,
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http,
    ):
        reason = await _until(runtime, "waiting")
        assert "not initialised" in reason
        async with http.get(f"{base}/status") as resp:
            assert resp.status == 200
            status = await resp.json()
        assert status["exchange"]["state"] == "waiting"
        assert "not initialised" in status["exchange"]["reason"]
        async with http.get(f"{base}/status", headers={"Authorization": ""}) as resp:
            assert resp.status == 401
        # No proxy listens.
        with contextlib.suppress(OSError):
            _r, w = await asyncio.open_connection(
                "127.0.0.1", config.client_proxy.http_port
            )
            w.close()
            raise AssertionError("the client proxy listens before initialisation")


async def test_exchange_starts_after_login_through_the_api(
    tmp_path: Path, aiohttp_server: Any
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        ca = await start_ca(tmp_path, aiohttp_server, http)
        stub = StubService()
        stub_url = str((await aiohttp_server(stub.app())).make_url("/soap"))
        a, b, _shared, _expire = await prepare_pair(tmp_path, ca, stub_url)
        a.config = _with_admin(a.config)
        officer = await _key(a.config, Role.SECURITY_OFFICER)
        await stack.enter_async_context(running(b.config, pin=PIN))
        runtime = await stack.enter_async_context(serving(a.config))
        base = f"http://127.0.0.1:{a.config.admin.port}/api/v1"
        auth = {"Authorization": f"X-Road-ApiKey token={officer}"}

        reason = await _until(runtime, "waiting")
        assert "not logged in" in reason
        async with http.put(
            f"{base}/tokens/0/login", json={"pin": PIN}, headers=auth
        ) as resp:
            assert resp.status == 200, await resp.text()
        await _until(runtime, "running")
        async with http.get(f"{base}/status", headers=auth) as resp:
            assert (await resp.json())["exchange"]["state"] == "running"

        request = trades_request(a.subsystem, b.subsystem, day="2024-06-01")
        async with http.post(
            a.client_proxy_url,
            data=request,
            headers={"Content-Type": "text/xml; charset=UTF-8"},
        ) as resp:
            body = await resp.read()
            assert resp.status == 200, body.decode()
        assert b"42.00 on 2024-06-01" in body

        async with http.put(f"{base}/tokens/0/logout", headers=auth) as resp:
            assert resp.status == 200
        reason = await _until(runtime, "waiting")
        assert "logged out" in reason or "not logged in" in reason
        with contextlib.suppress(aiohttp.ClientConnectionError):
            async with http.post(a.client_proxy_url, data=request) as resp:
                raise AssertionError(f"the client proxy still answers: {resp.status}")
