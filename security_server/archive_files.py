"""The archiver's work outside the database: files and external programs.

- :func:`write_durably` writes an archive (mode 0600) and fsyncs it, and
  :func:`fsync_dir` makes a rename in a directory durable (PROTOCOLS.md
  §12.5 archiving must lose no record across a crash);
- :func:`gpg_encrypt` encrypts an archive with the ``gpg`` program to the
  member's recipients;
- :func:`run_transfer_command` runs the operator's transfer hook on a file.

Used by :mod:`security_server.archiver`, which re-exports :func:`gpg_encrypt`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from jplink.errors import SecurityError, StorageError

__all__ = ["fsync_dir", "gpg_encrypt", "run_transfer_command", "write_durably"]


def write_durably(path: Path, data: bytes) -> None:
    """Write ``path`` (mode 0600) and fsync it before returning.

    Raises:
        StorageError: the file cannot be written.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise StorageError(f"Cannot write the archive {path}: {exc}") from exc


def _gpg_binary() -> str:
    gpg = shutil.which("gpg")
    if gpg is None:
        raise SecurityError(
            "Archive encryption needs the gpg program (apt package gnupg)",
            code="ArchiveEncryptionFailed",
        )
    return gpg


async def gpg_encrypt(
    data: bytes, recipients: Sequence[str], *, gpg_home: Path | None
) -> bytes:
    """Encrypt ``data`` to ``recipients`` with the ``gpg`` program (binary).

    Raises:
        SecurityError: code ``ArchiveEncryptionFailed``: no gpg, no
            recipients, or gpg refused (e.g. an unknown key).
    """
    if not recipients:
        raise SecurityError(
            "No GPG recipients for this archive", code="ArchiveEncryptionFailed"
        )
    argv = [_gpg_binary(), "--batch", "--yes", "--no-tty", "--trust-model", "always"]
    if gpg_home is not None:
        argv += ["--homedir", str(gpg_home)]
    for recipient in recipients:
        argv += ["--recipient", recipient]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        "--encrypt",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(data)
    if proc.returncode != 0 or not out:
        raise SecurityError(
            "gpg could not encrypt the archive: "
            + err.decode("utf-8", "replace").strip()[-500:],
            code="ArchiveEncryptionFailed",
        )
    return out


async def run_transfer_command(
    command: Sequence[str], path: Path, *, timeout: float
) -> str | None:
    """Run the transfer hook with ``path`` appended; None on success, else why."""
    try:
        proc = await asyncio.create_subprocess_exec(
            *command,
            str(path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        return f"cannot start {command[0]!r}: {exc}"
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return f"timed out after {timeout:g} s"
    if proc.returncode != 0:
        tail = out.decode("utf-8", "replace").strip()[-500:]
        return f"exit status {proc.returncode}: {tail}"
    return None


def fsync_dir(directory: Path) -> None:
    """Fsync a directory, so a rename in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
