"""Archiving: hash-linked archives of containers, hook, GPG, crash recovery."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from jplink.asic import verify_archive_linking, verify_asic_container
from jplink.storage import Database
from security_server import archiver
from security_server.audit_cli import verify_archive_files
from security_server.config import CONFIG_FILE, SecurityServerConfig, load_ss_config
from security_server.models import LastArchiveDigest, MessageLogRecord

from .test_evidence import T0, World, make_world, open_test_db

NOW = T0 + dt.timedelta(hours=1)


@pytest.fixture(scope="module")
def world() -> World:
    return make_world()


@pytest.fixture
async def db(db_url: str) -> Any:
    async with open_test_db(db_url) as database:
        yield database


def config(tmp_path: Path, extra: str = "") -> SecurityServerConfig:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / CONFIG_FILE).write_text(extra)
    return load_ss_config(home)


async def archived(db: Database) -> dict[int, str | None]:
    async with db.transaction() as session:
        rows = (
            await session.execute(
                select(MessageLogRecord.id, MessageLogRecord.archive_file).where(
                    MessageLogRecord.archived.is_(True)
                )
            )
        ).all()
    return {i: f for i, f in rows}


async def test_two_passes_link_and_only_stamped_records_go(
    db: Database, world: World, tmp_path: Path
) -> None:
    cfg = config(tmp_path)
    first = [await world.log(db, f"a-{i}") for i in range(3)]
    waiting = await world.log(db, "a-unstamped")
    await world.stamp_batch(db, first)
    one = await archiver.archive_once(db, cfg, now=NOW)
    assert [a.records for a in one.archives] == [3]
    assert set(await archived(db)) == set(first)  # the unstamped one waits
    await world.stamp_batch(db, [waiting])
    second = [waiting, await world.log(db, "b-1")]
    await world.stamp_batch(db, second[1:])
    two = await archiver.archive_once(db, cfg, now=NOW)
    assert [a.records for a in two.archives] == [2]
    assert (await archiver.archive_once(db, cfg, now=NOW)).archives == ()
    path1, path2 = one.archives[0].path, two.archives[0].path
    assert path1.name.startswith("mlog-") and path1.name.endswith(
        f"-{one.archives[0].last_digest[:16]}.zip"
    )
    link1 = verify_archive_linking(path1.read_bytes(), previous_digest=None)
    link2 = verify_archive_linking(
        path2.read_bytes(), previous_digest=link1.last_digest
    )
    assert link2.previous_name == path1.name
    for entry in (*link1.entries, *link2.entries):
        verify_asic_container(entry.data, trust=world.trust)
    assert set((await archived(db)).values()) == {path1.name, path2.name}
    verdicts, summary = verify_archive_files(
        [(p, p.read_bytes()) for p in (path1, path2)], world.trust
    )
    assert all(v.valid for v in verdicts) and summary == {"chains": 1}
    assert not list(path1.parent.glob("*.part"))


async def test_tampered_or_missing_archive_is_named(
    db: Database, world: World, tmp_path: Path
) -> None:
    cfg = config(tmp_path)
    paths = []
    for round_ in range(3):
        ids = [await world.log(db, f"t-{round_}-{i}") for i in range(2)]
        await world.stamp_batch(db, ids)
        paths.append((await archiver.archive_once(db, cfg, now=NOW)).archives[0].path)
    # A container replaced inside the middle archive.
    middle = paths[1]
    with zipfile.ZipFile(middle) as zf:
        entries = [(i.filename, zf.read(i)) for i in zf.infolist()]
    with zipfile.ZipFile(middle, "w") as zf:
        for name, data in entries:
            zf.writestr(name, data[::-1] if name.endswith(".asice") else data)
    verdicts, _ = verify_archive_files([(p, p.read_bytes()) for p in paths], None)
    bad = {v.file: v for v in verdicts if not v.valid}
    # The altered archive fails its own linking; the next one then has no
    # predecessor to link to.
    assert list(bad) == [str(middle), str(paths[2])]
    assert bad[str(middle)].code == "InvalidArchiveLink"
    assert bad[str(middle)].checks[0]["check"] == "linking"
    assert "second chain" in (bad[str(paths[2])].reason or "")
    # Dropping the middle archive breaks the chain at the third one.
    verdicts, _ = verify_archive_files(
        [(p, p.read_bytes()) for p in (paths[0], paths[2])], None
    )
    assert [v.file for v in verdicts if not v.valid] == [str(paths[2])]


async def test_transfer_hook_runs_and_failures_are_retried(
    db: Database, world: World, tmp_path: Path
) -> None:
    seen = tmp_path / "seen.txt"
    flag = tmp_path / "fail"
    hook = tmp_path / "hook.sh"
    hook.write_text(
        f'#!/bin/sh\nif [ -e "{flag}" ]; then echo refused >&2; exit 3; fi\n'
        f'echo "$1" >> "{seen}"\n'
    )
    hook.chmod(0o755)
    cfg = config(tmp_path, f'[archive]\ntransfer_command = ["{hook}"]\n')
    flag.touch()
    ids = [await world.log(db, "h-1")]
    await world.stamp_batch(db, ids)
    failed = await archiver.archive_once(db, cfg, now=NOW)
    path = failed.archives[0].path
    assert failed.transfer_failures == (path,) and path.is_file()
    assert not seen.exists()
    flag.unlink()
    retried = await archiver.archive_once(db, cfg, now=NOW)
    assert retried.archives == () and retried.transferred == (path,)
    assert seen.read_text().split() == [str(path)]
    again = await archiver.archive_once(db, cfg, now=NOW)
    assert again.transferred == ()  # delivered once


async def test_interrupted_pass_is_recovered_without_loss(
    db: Database, world: World, tmp_path: Path, monkeypatch: Any
) -> None:
    cfg = config(tmp_path)
    ids = [await world.log(db, "c-1"), await world.log(db, "c-2")]
    await world.stamp_batch(db, ids)

    async def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("power cut before the commit")

    monkeypatch.setattr(archiver, "_commit", crash)
    with pytest.raises(RuntimeError):
        await archiver.archive_once(db, cfg, now=NOW)
    monkeypatch.undo()
    assert await archived(db) == {}
    directory = cfg.message_log.archive_dir
    assert list(directory.iterdir()) == []  # the .part was removed
    # A crash after the commit but before the rename leaves a .part file.
    done = await archiver.archive_once(db, cfg, now=NOW)
    path = done.archives[0].path
    path.rename(path.with_name(path.name + ".part"))
    await archiver.archive_once(db, cfg, now=NOW)
    assert path.is_file() and set(await archived(db)) == set(ids)
    async with db.transaction() as session:
        last = await session.scalar(select(LastArchiveDigest))
    assert last is not None and last.file_name == path.name


@pytest.fixture
def gpg_home(tmp_path: Path) -> tuple[Path, str]:
    gpg = shutil.which("gpg")
    if gpg is None:
        pytest.skip("gpg is not installed (apt install gnupg)")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    subprocess.run(
        [gpg, "--homedir", str(home), "--batch", "--passphrase", "",
         "--quick-generate-key", "archive@test", "rsa2048", "encr", "never"],
        check=True, capture_output=True,
    )  # fmt: skip
    return home, "archive@test"


async def test_gpg_encrypted_archive_round_trip(
    db: Database,
    world: World,
    tmp_path: Path,
    gpg_home: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    home, recipient = gpg_home
    cfg = config(
        tmp_path,
        "[archive]\ngroup_by_member = true\nencrypt = true\n"
        f'gpg_home = "{home}"\n'
        '[[archive.member_keys]]\nmember = "MEMBER:JP/COM/1111"\n'
        f'recipients = ["{recipient}"]\n',
    )
    ids = [await world.log(db, "g-1"), await world.log(db, "g-2")]
    await world.stamp_batch(db, ids)
    result = await archiver.archive_once(db, cfg, now=NOW)
    (written,) = result.archives
    assert written.group == "MEMBER:JP/COM/1111"
    assert written.path.name.startswith("mlog-JP_COM_1111-")
    assert written.path.name.endswith(".zip.gpg")
    assert not zipfile.is_zipfile(written.path)
    from jplink.cli import main

    code = main(["audit", "verify-archive", str(written.path), "--gpg-home", str(home)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "VALID" in out and "entries: 2" in out
