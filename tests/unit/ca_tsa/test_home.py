"""init_ca_home / load_ca_material: layout, permissions, CA/OCSP/TSA certificates."""

from __future__ import annotations

import datetime as dt
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca_tsa.config import load_ca_config
from ca_tsa.home import init_ca_home, load_ca_material, read_api_key
from jplink.errors import ConfigurationError, Conflict
from tests.conftest import require_tool


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def home_with_intermediate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("ca") / "home"
    init_ca_home(
        home,
        name="Test CA",
        intermediate=True,
        ocsp_url="http://ocsp.example/ocsp",
        api_port=18888,
        tsa_port=18899,
        now=dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC),
    )
    return home


def _openssl_text(path: Path) -> str:
    openssl = require_tool("openssl")
    return subprocess.run(
        [openssl, "x509", "-in", str(path), "-noout", "-text"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def test_layout_permissions_and_config(home_with_intermediate: Path) -> None:
    home = home_with_intermediate
    for name in ("root", "intermediate", "ocsp", "tsa"):
        assert (home / "certs" / f"{name}.pem").is_file()
        assert _mode(home / "private" / f"{name}.key") == 0o600
    assert _mode(home / "private") == 0o700
    assert _mode(home / "secrets") == 0o700
    assert _mode(home / "secrets" / "api-key") == 0o600
    assert not list(home.rglob("*.tmp"))
    config = load_ca_config(home)
    assert config.name == "Test CA"
    assert config.api.port == 18888
    assert config.tsa.port == 18899
    assert config.ocsp.url == "http://ocsp.example/ocsp"
    assert config.issuance.intermediate is True
    assert config.api.api_key_file == home / "secrets" / "api-key"
    assert len(read_api_key(config)) >= 32


def test_material_chain(home_with_intermediate: Path) -> None:
    material = load_ca_material(load_ca_config(home_with_intermediate))
    assert material.chain == (material.ca_cert, material.root_cert)
    assert material.ca_cert.issuer == material.root_cert.subject
    assert "Issuing CA" in material.ca_cert.subject.rfc4514_string()
    for cert in (material.ocsp_cert, material.tsa_cert):
        assert cert.issuer == material.ca_cert.subject
        cert.verify_directly_issued_by(material.ca_cert)
    material.ca_cert.verify_directly_issued_by(material.root_cert)
    bc = material.ca_cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0


def test_openssl_sees_ocsp_and_tsa_usages(home_with_intermediate: Path) -> None:
    certs = home_with_intermediate / "certs"
    ocsp = _openssl_text(certs / "ocsp.pem")
    assert "OCSP Signing" in ocsp
    assert "OCSP No Check" in ocsp
    tsa = _openssl_text(certs / "tsa.pem")
    assert "X509v3 Extended Key Usage: critical\n                Time Stamping" in tsa
    assert "OCSP - URI:http://ocsp.example/ocsp" in tsa
    root = _openssl_text(certs / "root.pem")
    assert "CA:TRUE, pathlen:1" in root
    assert "Certificate Sign, CRL Sign" in root


def test_openssl_verifies_service_certificates_with_purpose(
    home_with_intermediate: Path,
) -> None:
    openssl = require_tool("openssl")
    certs = home_with_intermediate / "certs"
    for name, purpose in (("ocsp", "ocsphelper"), ("tsa", "timestampsign")):
        result = subprocess.run(
            [
                openssl,
                "verify",
                "-CAfile",
                str(certs / "root.pem"),
                "-untrusted",
                str(certs / "intermediate.pem"),
                "-purpose",
                purpose,
                "-attime",
                "1795338000",  # 2026-11-21
                str(certs / f"{name}.pem"),
            ],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith(": OK")


def test_tsa_cert_has_exactly_the_critical_timestamping_eku(
    home_with_intermediate: Path,
) -> None:
    tsa = load_ca_material(load_ca_config(home_with_intermediate)).tsa_cert
    eku = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


def test_refuses_to_overwrite_without_force(tmp_path: Path, now: dt.datetime) -> None:
    home = tmp_path / "ca"
    init_ca_home(home, now=now, key_type="ec")
    old_root = (home / "certs" / "root.pem").read_bytes()
    with pytest.raises(Conflict, match="already holds a CA"):
        init_ca_home(home, now=now)
    assert (home / "certs" / "root.pem").read_bytes() == old_root
    config = init_ca_home(home, now=now, force=True, key_type="ec")
    assert (home / "certs" / "root.pem").read_bytes() != old_root
    material = load_ca_material(config)
    assert material.chain == (material.root_cert,)
    assert isinstance(material.ca_key, ec.EllipticCurvePrivateKey)


def test_missing_or_mismatched_files_are_configuration_errors(
    tmp_path: Path, now: dt.datetime
) -> None:
    home = tmp_path / "ca"
    config = init_ca_home(home, now=now, key_type="ec")
    (home / "private" / "ocsp.key").write_bytes(
        (home / "private" / "tsa.key").read_bytes()
    )
    with pytest.raises(ConfigurationError, match="does not belong"):
        load_ca_material(config)
    (home / "private" / "ocsp.key").unlink()
    with pytest.raises(ConfigurationError, match="Cannot read"):
        load_ca_material(config)
    (home / "certs" / "tsa.pem").write_text("garbage")
    with pytest.raises(ConfigurationError):
        load_ca_material(config)


def test_intermediate_flag_without_file_fails_closed(
    tmp_path: Path, now: dt.datetime
) -> None:
    home = tmp_path / "ca"
    init_ca_home(home, now=now, intermediate=True, key_type="ec")
    (home / "certs" / "intermediate.pem").unlink()
    with pytest.raises(ConfigurationError, match=r"intermediate\.pem"):
        load_ca_material(load_ca_config(home))
