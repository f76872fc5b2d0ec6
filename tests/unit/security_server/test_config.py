"""ss.toml: defaults, strictness, path anchoring."""

from __future__ import annotations

from pathlib import Path

import pytest

from jplink.errors import ConfigurationError
from security_server.config import MessageLogMode, load_ss_config


def _home(tmp_path: Path, text: str) -> Path:
    (tmp_path / "ss.toml").write_text(text)
    return tmp_path


def test_defaults(tmp_path: Path) -> None:
    config = load_ss_config(_home(tmp_path, ""))
    assert config.db_url == f"sqlite:///{tmp_path / 'ss.db'}"
    assert (config.client_proxy.http_port, config.client_proxy.https_port) == (
        8080,
        8443,
    )
    assert (config.server_proxy.port, config.ocsp_responder.port) == (5500, 5577)
    assert config.admin.port == 4000
    assert config.token_dir == tmp_path / "token"
    assert config.globalconf.directory == tmp_path / "globalconf"
    log = config.message_log
    assert log.log_mode is MessageLogMode.FULL
    assert (
        log.keep_records_for_days,
        log.acceptable_timestamp_failure_period_seconds,
    ) == (
        30,
        14400,
    )
    assert log.timestamping_interval_seconds is None
    assert log.archive_dir == tmp_path / "archive"


def test_values_and_relative_paths(tmp_path: Path) -> None:
    config = load_ss_config(
        _home(
            tmp_path,
            'database_url = "postgresql://ss@db/ss"\n'
            'token_dir = "/srv/token"\n'
            "[message_log]\n"
            'mode = "metadata"\n'
            "timestamping_interval_seconds = 30\n"
            'archive_dir = "arch"\n',
        )
    )
    assert config.db_url == "postgresql://ss@db/ss"
    assert config.token_dir == Path("/srv/token")
    assert config.message_log.log_mode is MessageLogMode.METADATA
    assert config.message_log.timestamping_interval_seconds == 30
    assert config.message_log.archive_dir == tmp_path / "arch"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("databse_url = 'x'\n", "databse_url"),
        ("[server_proxy]\nprot = 1\n", "prot"),
        ("[message_log]\nmode = 'everything'\n", "everything"),
        ("[message_log]\nkeep_records_for_days = 0\n", "keep_records_for_days"),
        ("[client_proxy]\nhttp_port = '80'\n", "integer"),
        ("home = '/etc'\n", "home"),
        ("[[x\n", "invalid TOML"),
    ],
)
def test_strict(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigurationError, match=needle):
        load_ss_config(_home(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_ss_config(tmp_path)
