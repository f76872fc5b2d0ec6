"""The ``[ocsp]`` table and the refresher's interval rule."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from jplink.clients.globalconf import LoadedConfiguration
from jplink.errors import ConfigurationError
from jplink.globalconf import GlobalSettings, SharedParameters
from jplink.storage import create_database
from security_server.config import CONFIG_FILE, load_ss_config
from security_server.metaservices import is_metaservice, rewrite_wsdl_addresses
from security_server.ocsp_refresher import OcspRefresher


def _shared(freshness: int) -> SharedParameters:
    return SharedParameters("JP", GlobalSettings(ocsp_freshness_seconds=freshness))


def _loaded(now: dt.datetime) -> LoadedConfiguration:
    return LoadedConfiguration("JP", _shared(3600), None, now, 6, "http://x/")


async def test_interval_is_configured_and_capped(
    tmp_path: Path, now: dt.datetime
) -> None:
    (tmp_path / CONFIG_FILE).write_text(
        "[ocsp]\nfetch_interval_seconds = 300\nretry_seconds = 5\nnonce = true\n"
    )
    config = load_ss_config(tmp_path)
    assert (config.ocsp.fetch_interval_seconds, config.ocsp.nonce) == (300, True)
    db = create_database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        refresher = OcspRefresher(db, config, lambda: _loaded(now))
        assert refresher.interval(_shared(3600)) == 300
        # Never so rarely that a response could go stale between fetches.
        assert refresher.interval(_shared(400)) == 200
    finally:
        await db.dispose()


@pytest.mark.parametrize("bad", ["fetch_interval_seconds = 0", "colour = 1"])
def test_bad_ocsp_settings_are_refused(tmp_path: Path, bad: str) -> None:
    (tmp_path / CONFIG_FILE).write_text(f"[ocsp]\n{bad}\n")
    with pytest.raises(ConfigurationError):
        load_ss_config(tmp_path)


def test_wsdl_addresses_are_rewritten() -> None:
    wsdl = (
        b'<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" '
        b'xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"><service><port>'
        b'<soap:address location="http://10.0.0.5:8090/secret"/></port></service>'
        b"</definitions>"
    )
    out = rewrite_wsdl_addresses(wsdl)
    assert b"10.0.0.5" not in out
    assert b'location="http://example.org/xroad-endpoint"' in out


def test_is_metaservice() -> None:
    from jplink.identifiers import ServiceId

    for code in ("listClients", "listMethods", "allowedMethods", "getWsdl"):
        assert is_metaservice(ServiceId("JP", "COM", "1", "s", code))
    assert not is_metaservice(ServiceId("JP", "COM", "1", "s", "getTrades"))
