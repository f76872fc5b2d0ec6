"""Starting, watching and stopping the network's processes.

Servers run detached, each in a session (and so a process group) of its own,
so that ``make demo`` can exit and leave them running, and so that ``down``
can stop a server together with any worker it forked: SIGTERM to the group,
then SIGKILL after a timeout. Component commands (``jplink ca init`` ...) run
to completion with their output appended to the step log.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from jplink.errors import ProcessFailed

from .state import ProcessRecord

__all__ = [
    "JPLINK",
    "group_alive",
    "pid_alive",
    "run_command",
    "start_server",
    "stop_process",
    "wait_for_port",
]

#: The ``jplink`` command of this very interpreter (the same venv).
JPLINK: tuple[str, ...] = (sys.executable, "-m", "jplink.cli")


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env


def run_command(
    args: Sequence[str],
    log: Path,
    *,
    stdin: str | None = None,
    timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run ``jplink <args>`` to completion.

    Args:
        args: the arguments after ``jplink``.
        log: the step log; the command line and its output are appended.
        stdin: text for the command's standard input.
        timeout: seconds before the command is killed.
        env: extra environment variables.

    Returns:
        The command's standard output.

    Raises:
        ProcessFailed: non-zero exit or timeout; the message carries the
            command's last error line.
    """
    argv = [*JPLINK, *args]
    with log.open("a") as out:
        out.write(f"$ jplink {' '.join(args)}\n")
    try:
        done = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_env(env),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ProcessFailed(
            f"jplink {' '.join(args[:3])} did not finish in {timeout:.0f} s",
            log=str(log),
        ) from exc
    with log.open("a") as out:
        out.write(done.stdout)
        out.write(done.stderr)
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        last = lines[-1] if lines else f"exit status {done.returncode}"
        raise ProcessFailed(f"jplink {' '.join(args[:3])} failed: {last}", log=str(log))
    return done.stdout


def start_server(
    name: str,
    args: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
) -> ProcessRecord:
    """Start ``jplink <args>`` detached, in its own session, output to ``log``.

    Returns:
        The process record (pid and process group).
    """
    argv = [*JPLINK, *args]
    with log.open("ab") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=_env(env),
            close_fds=True,
        )
    return ProcessRecord(name, process.pid, process.pid, str(log), tuple(argv))


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def group_alive(pgid: int) -> list[int]:
    """The live (non-zombie) processes of a process group."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _reap(pid: int) -> None:
    # Our own children must be waited for, or they stay as zombies.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def wait_for_port(
    record: ProcessRecord, port: int, host: str = "127.0.0.1", timeout: float = 60.0
) -> None:
    """Wait until something accepts connections on ``host:port``.

    Raises:
        ProcessFailed: the process exited, or nothing listened in time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(record.pid)
        if not pid_alive(record.pid):
            raise ProcessFailed(f"{record.name} exited during start-up", log=record.log)
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise ProcessFailed(
        f"{record.name} does not listen on port {port} after {timeout:.0f} s",
        log=record.log,
    )


def stop_process(record: ProcessRecord, timeout: float = 15.0) -> bool:
    """Stop a process group: SIGTERM, then SIGKILL after ``timeout``.

    Returns:
        True when SIGKILL was needed.
    """
    killed = False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if not group_alive(record.pgid):
            break
        try:
            os.killpg(record.pgid, sig)
        except ProcessLookupError:
            break
        killed = sig is signal.SIGKILL
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(record.pid)
            if not group_alive(record.pgid):
                break
            time.sleep(0.1)
    _reap(record.pid)
    return killed
