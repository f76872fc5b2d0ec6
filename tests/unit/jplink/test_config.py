"""Strict TOML configuration: unknown keys and wrong types are errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from jplink.config import from_mapping, load_config, resolve_home
from jplink.errors import ConfigurationError


@dataclass(frozen=True)
class Inner:
    port: int = 80
    ratio: float = 0.5


@dataclass(frozen=True)
class Outer:
    name: str
    key_file: Path = Path("k.pem")
    debug: bool = False
    inner: Inner = field(default_factory=Inner)
    urls: list[str] = field(default_factory=list)
    limit: int | None = None


def test_loads_nested_and_resolves_paths(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text(
        'name = "x"\nkey_file = "keys/a.pem"\nurls = ["u1", "u2"]\n'
        "limit = 3\n[inner]\nport = 8080\nratio = 1\n"
    )
    cfg = load_config(Outer, tmp_path / "c.toml")
    assert cfg.name == "x"
    assert cfg.key_file == tmp_path / "keys/a.pem"
    assert cfg.inner == Inner(port=8080, ratio=1.0)
    assert cfg.urls == ["u1", "u2"] and cfg.limit == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "nmae": "y"}, "unknown key"),
        ({}, "missing required key 'name'"),
        ({"name": 1}, "expected a string"),
        ({"name": "x", "debug": "yes"}, "expected true or false"),
        ({"name": "x", "inner": {"port": "80"}}, "inner.port: expected an integer"),
        ({"name": "x", "inner": {"port": True}}, "expected an integer"),
        ({"name": "x", "inner": {"prot": 1}}, "unknown key"),
        ({"name": "x", "urls": "u"}, "expected a list"),
        ({"name": "x", "inner": 5}, "expected a table"),
    ],
)
def test_rejects_bad_configuration(data: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        from_mapping(Outer, data, where="t.toml")


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("name = \n")
    with pytest.raises(ConfigurationError, match="invalid TOML"):
        load_config(Outer, tmp_path / "bad.toml")
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_config(Outer, tmp_path / "none.toml")


def test_resolve_home_precedence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("JPLINK_CA_HOME", raising=False)
    monkeypatch.delenv("JPLINK_HOME", raising=False)
    assert resolve_home("ca", None) == Path("/var/lib/jplink/ca")
    monkeypatch.setenv("JPLINK_HOME", str(tmp_path))
    assert resolve_home("ca", None) == tmp_path / "ca"
    monkeypatch.setenv("JPLINK_CA_HOME", str(tmp_path / "x"))
    assert resolve_home("ca", None) == tmp_path / "x"
    assert resolve_home("ca", tmp_path / "y") == tmp_path / "y"


def test_relative_default_paths_are_anchored_at_the_home(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text('name = "x"\n')
    cfg = load_config(Outer, tmp_path / "c.toml")
    assert cfg.key_file == tmp_path / "k.pem"
    assert cfg.inner == Inner()
