"""The exchange benchmark's profile: py-spy samples of a running server and
where their time goes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def start_py_spy(pid: int, out: Path, gil: bool = False) -> subprocess.Popen[bytes]:
    """Sample a running server with py-spy (collapsed stacks into ``out``).

    With ``gil`` only samples of the thread holding the GIL count: Python's
    own CPU, without the time a runnable thread waits for a core on a busy
    machine (which plain sampling counts as busy).
    """
    spy = Path(sys.executable).with_name("py-spy")
    cmd = [str(spy), "record", "--pid", str(pid), "--format", "raw",
           "--rate", "250", "--nonblocking", "--output", str(out)]  # fmt: skip
    if gil:
        cmd.append("--gil")
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarise_profile(path: Path, top: int = 22) -> str:
    """Where the time goes, from py-spy's collapsed stacks.

    Returns a table of the functions with the most samples inclusive (the
    function or anything it calls is on the CPU) and exclusive (the function
    itself is), as shares of all samples.
    """
    inclusive: dict[str, int] = {}
    exclusive: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";")]
        for name in set(frames):
            inclusive[name] = inclusive.get(name, 0) + n
        exclusive[frames[-1]] = exclusive.get(frames[-1], 0) + n
    lines = [f"{path.stem}: {total} samples"]
    for title, table in (("inclusive", inclusive), ("exclusive", exclusive)):
        lines.append(f"  -- {title}")
        ranked = sorted(table.items(), key=lambda kv: -kv[1])[:top]
        lines += [f"  {100 * n / max(1, total):5.1f}%  {name}" for name, n in ranked]
    return "\n".join(lines)


def _frame(frame: str) -> str:
    # "func (path/to/module.py:123)" -> "func (module.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rpartition(":")[0]
    parts = Path(where).parts
    return f"{name} ({'/'.join(parts[-2:])})" if parts else name
