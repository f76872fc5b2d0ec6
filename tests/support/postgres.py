"""A throw-away PostgreSQL server for the test suite.

The suite starts its own server (initdb in a temporary directory, a free
loopback port, trust authentication) so storage code is tested on the real
production database without touching anything on the machine. PostgreSQL
refuses to run as root, so when the suite runs as root the cluster belongs
to an unprivileged account (``postgres`` if the package created it, else
``nobody``) and commands run through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port as _free_port

__all__ = ["PostgresServer", "find_pg_bin", "running_postgres"]


def find_pg_bin() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """Create a fresh empty database; return its URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        import asyncio

        import asyncpg

        async def _create() -> None:
            conn = await asyncpg.connect(self.url())
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(_create())
        return self.url(name)


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a server for the duration of the block."""
    bindir = find_pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL server binaries (initdb) not found")
    base = Path(tempfile.mkdtemp(prefix="jplink-pg-"))
    data = base / "data"
    prefix: list[str] = []
    user = pwd.getpwuid(os.getuid()).pw_name
    if os.geteuid() == 0:
        for candidate in ("postgres", "nobody"):
            try:
                pw = pwd.getpwnam(candidate)
            except KeyError:
                continue
            user = candidate
            os.chown(base, pw.pw_uid, pw.pw_gid)
            base.chmod(0o700)
            prefix = ["runuser", "-u", candidate, "--"]
            break
    port = _free_port()
    env = dict(os.environ, LC_ALL="C", LANG="C")
    subprocess.run(
        [
            *prefix,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    opts = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -k {base} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        "-c max_connections=200"
    )
    subprocess.run(
        [
            *prefix,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(base / "log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        yield PostgresServer(host="127.0.0.1", port=port, user=user)
    finally:
        subprocess.run(
            [
                *prefix,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            env=env,
        )
        shutil.rmtree(base, ignore_errors=True)
