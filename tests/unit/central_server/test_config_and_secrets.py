"""Pure parts of the central server: config, secrets, roles, route table."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from central_server.admin_api import ROUTES
from central_server.apikeys import Role, parse_role
from central_server.app import read_ca_api_key
from central_server.config import CentralConfig, load_central_config
from central_server.member_requests import check_text
from central_server.servers import auth_cert_hash
from central_server.tokens import hash_secret, new_secret, secret_matches
from jplink.errors import ConfigurationError, InvalidRequest


def test_config_defaults_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "central.toml").write_text(
        '[admin]\nport = 14000\n[ca]\nurl = "http://ca:8888"\napi_key_file = "k"\n'
    )
    config = load_central_config(tmp_path)
    assert config.admin.port == 14000
    assert config.registration.port == 4001
    assert config.ca.api_key_file == tmp_path / "k"
    assert config.db_url == f"sqlite:///{tmp_path / 'central.db'}"


@pytest.mark.parametrize(
    "text",
    ['colour = "x"\n', '[admin]\nport = "4000"\n', 'home = "/etc"\n', "[admin\n"],
)
def test_config_is_strict(tmp_path: Path, text: str) -> None:
    (tmp_path / "central.toml").write_text(text)
    with pytest.raises(ConfigurationError):
        load_central_config(tmp_path)


def test_ca_api_key_file_must_be_private(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_text("secret-key-value\n")
    key.chmod(0o644)
    config = load_central_config_with_key(tmp_path, key)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        read_ca_api_key(config)
    key.chmod(0o600)
    assert read_ca_api_key(config) == "secret-key-value"
    key.write_text("")
    with pytest.raises(ConfigurationError, match="empty"):
        read_ca_api_key(config)
    key.unlink()
    with pytest.raises(ConfigurationError, match="Cannot read"):
        read_ca_api_key(config)


def load_central_config_with_key(home: Path, key: Path) -> CentralConfig:
    (home / "central.toml").write_text(
        f'[ca]\nurl = "http://x"\napi_key_file = "{key}"\n'
    )
    return load_central_config(home)


def test_secrets_are_random_hashed_and_compared() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and len(a) >= 43
    assert hash_secret(a) == hashlib.sha256(a.encode()).hexdigest()
    assert secret_matches(a, hash_secret(a))
    assert not secret_matches(b, hash_secret(a))


def test_roles() -> None:
    assert parse_role("security-officer") is Role.SECURITY_OFFICER
    with pytest.raises(InvalidRequest):
        parse_role("root")


@pytest.mark.parametrize("bad", ["", "   ", "a\x00b", "x" * 11, 5])
def test_check_text_refuses(bad: object) -> None:
    with pytest.raises(InvalidRequest):
        check_text(bad, "field", limit=10)


def test_check_text_allows_newlines() -> None:
    assert check_text("line 1\nline 2", "f", limit=100) == "line 1\nline 2"


def test_route_table_every_change_is_role_restricted() -> None:
    # Reads may be open to every role; no change is.
    for route in ROUTES:
        assert route.roles, route.path
        if route.method != "GET":
            assert route.roles != frozenset(Role), (route.method, route.path)
    assert len({(r.method, r.path) for r in ROUTES}) == len(ROUTES)


def test_auth_cert_hash_refuses_garbage() -> None:
    with pytest.raises(InvalidRequest):
        auth_cert_hash(b"\x30\x03\x02\x01\x01")
