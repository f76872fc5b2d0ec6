"""Architecture rules checked on the source (STYLE.md §3.1, §4 rule 1).

- The sans-IO core (jplink.protocol, jplink.security, jplink.globalconf,
  jplink.identifiers) imports no aiohttp, no SQLAlchemy and never reads the
  clock itself: time is a parameter.
- The core never imports a server; only jplink/cli.py and jplink/network/ may.
- Servers never import each other.
- Every package states its public surface in __all__.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVERS = ("ca_tsa", "central_server", "security_server", "adapter_server", "clearing")
SANS_IO = (
    "jplink/protocol",
    "jplink/security",
    "jplink/globalconf",
    "jplink/asic",
    "jplink/identifiers",
)
IO_MODULES = ("aiohttp", "sqlalchemy", "asyncpg", "aiosqlite", "requests", "socket")
CLOCK_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("time", "time"),
    ("date", "today"),
}


def _py_files(rel: str) -> Iterator[Path]:
    p = ROOT / rel
    if p.is_file():
        yield p
    elif p.is_dir():
        yield from (f for f in p.rglob("*.py") if "migrations" not in f.parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def test_sans_io_core_has_no_io_and_no_clock() -> None:
    offenders = []
    for rel in SANS_IO:
        for f in _py_files(rel):
            bad = {i for i in _imports(f) if _top(i) in IO_MODULES}
            if bad:
                offenders.append(f"{f.relative_to(ROOT)} imports {sorted(bad)}")
            for node in ast.walk(ast.parse(f.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name | ast.Attribute)
                ):
                    owner = node.func.value
                    owner_name = owner.id if isinstance(owner, ast.Name) else owner.attr
                    if (owner_name, node.func.attr) in CLOCK_CALLS:
                        offenders.append(
                            f"{f.relative_to(ROOT)}:{node.lineno} reads the clock"
                        )
    assert offenders == []


def test_core_never_imports_a_server() -> None:
    offenders = []
    for f in _py_files("jplink"):
        rel = f.relative_to(ROOT).as_posix()
        if rel == "jplink/cli.py" or rel.startswith("jplink/network/"):
            continue
        bad = {i for i in _imports(f) if _top(i) in SERVERS}
        if bad:
            offenders.append(f"{rel} imports {sorted(bad)}")
    assert offenders == []


@pytest.mark.parametrize("server", SERVERS)
def test_servers_never_import_each_other(server: str) -> None:
    offenders = []
    for f in _py_files(server):
        bad = {i for i in _imports(f) if _top(i) in SERVERS and _top(i) != server}
        if bad:
            offenders.append(f"{f.relative_to(ROOT)} imports {sorted(bad)}")
    assert offenders == []


def test_every_package_declares_all() -> None:
    missing = []
    for pkg in ("jplink", *SERVERS, "wsdl"):
        for init in (ROOT / pkg).rglob("__init__.py") if (ROOT / pkg).is_dir() else ():
            if "migrations" in init.parts:
                continue
            tree = ast.parse(init.read_text())
            names = {
                t.id
                for node in tree.body
                if isinstance(node, ast.Assign | ast.AnnAssign)
                for t in (
                    node.targets if isinstance(node, ast.Assign) else [node.target]
                )
                if isinstance(t, ast.Name)
            }
            if "__all__" not in names:
                missing.append(str(init.relative_to(ROOT)))
    assert missing == []


def test_the_rule_checker_catches_a_violation(tmp_path: Path) -> None:
    # Guard against a checker that can never fail.
    f = tmp_path / "bad.py"
    f.write_text("import aiohttp\nfrom ca_tsa.app import make_app\n")
    assert {"aiohttp", "ca_tsa.app"} <= _imports(f)
