"""Admin API keys: shown once, stored hashed, checked in constant time."""

from __future__ import annotations

import hashlib
import stat

import pytest

from adapter_server.apikeys import (
    ApiKeyStore,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from jplink.errors import ConfigurationError, InvalidRequest, NotFound, Unauthenticated


def test_key_is_stored_only_as_its_hash(tmp_path):
    path = tmp_path / "secrets" / "keys"
    info, key = create_api_key(path, "ops team")
    content = path.read_text()
    assert key not in content
    assert key.split("_", 2)[2] not in content
    assert hashlib.sha256(key.encode()).hexdigest() in content
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list_api_keys(path) == [info]
    assert ApiKeyStore(path).authenticate(key) == info


def test_each_key_is_distinct_and_independent(tmp_path):
    path = tmp_path / "keys"
    a, key_a = create_api_key(path, "a")
    b, key_b = create_api_key(path, "b")
    assert key_a != key_b and a.key_id != b.key_id
    store = ApiKeyStore(path)
    assert store.authenticate(key_b) == b
    revoke_api_key(path, a.key_id)
    with pytest.raises(Unauthenticated):
        store.authenticate(key_a)
    assert store.authenticate(key_b) == b
    with pytest.raises(NotFound):
        revoke_api_key(path, a.key_id)


@pytest.mark.parametrize(
    "presented",
    ["", "x", "jpad_", "jpad_0000000000000000_" + "A" * 43, "Bearer abc"],
)
def test_wrong_keys_get_one_message(tmp_path, presented):
    path = tmp_path / "keys"
    create_api_key(path, "a")
    with pytest.raises(Unauthenticated, match=r"^The API key is not valid$"):
        ApiKeyStore(path).authenticate(presented)


def test_right_id_wrong_secret_is_refused(tmp_path):
    path = tmp_path / "keys"
    _, key = create_api_key(path, "a")
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")
    with pytest.raises(Unauthenticated):
        ApiKeyStore(path).authenticate(forged)


def test_no_file_means_no_access(tmp_path):
    with pytest.raises(Unauthenticated):
        ApiKeyStore(tmp_path / "absent").authenticate(
            "jpad_" + "0" * 16 + "_" + "A" * 43
        )


def test_malformed_or_shared_file_fails_closed(tmp_path):
    path = tmp_path / "keys"
    _, key = create_api_key(path, "a")
    path.write_text("garbage line\n")
    with pytest.raises(ConfigurationError, match="keys:1"):
        ApiKeyStore(path).authenticate(key)
    path.chmod(0o640)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        list_api_keys(path)


@pytest.mark.parametrize("name", ["", "two\nlines", "x" * 101])
def test_bad_names(tmp_path, name):
    with pytest.raises(InvalidRequest):
        create_api_key(tmp_path / "keys", name)
