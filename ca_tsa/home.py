"""The CA home directory: creating it (``jplink ca init``) and loading its keys.

Layout (relative to the home)::

    ca.toml                     configuration (CaTsaConfig)
    certs/root.pem              self-signed root CA
    certs/intermediate.pem      issuing CA, when created with intermediate=True
    certs/ocsp.pem              delegated OCSP responder (EKU OCSPSigning, ocsp-nocheck)
    certs/tsa.pem               time-stamping unit (EKU timeStamping, critical)
    private/                    mode 0700
      root.key, intermediate.key, ocsp.key, tsa.key     PKCS#8 PEM, mode 0600
    secrets/                    mode 0700
      api-key                   enrolment API bearer key, mode 0600

The OCSP and TSA certificates are issued by the issuing CA (the intermediate
when there is one), because RFC 6960 §4.2.2.2 requires a delegated responder to
be "issued directly by the CA that is identified in the request".
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from jplink.errors import ConfigurationError, Conflict
from jplink.security.certs import (
    COUNTRY,
    Issuer,
    build_ca_certificate,
    build_ocsp_signing_certificate,
    build_tsa_certificate,
)
from jplink.security.keys import (
    KeyType,
    PrivateKey,
    generate_private_key,
    load_private_key_pem,
    serialize_private_key_pem,
)

from .config import CONFIG_FILE, CaTsaConfig, load_ca_config

__all__ = ["CaMaterial", "init_ca_home", "load_ca_material", "read_api_key"]

CERTS_DIR = "certs"
PRIVATE_DIR = "private"
SECRETS_DIR = "secrets"


@dataclass(frozen=True, slots=True)
class CaMaterial:
    """Certificates and keys of a running CA, loaded once at start-up.

    Attributes:
        ca_cert: the issuing CA (the intermediate if there is one, else the root).
        ca_key: its private key.
        chain: issuing CA first, root last (one element without intermediate).
        root_cert: the trust anchor.
        ocsp_cert: the delegated OCSP responder certificate.
        ocsp_key: its private key.
        tsa_cert: the time-stamping unit certificate.
        tsa_key: its private key.
    """

    ca_cert: x509.Certificate
    ca_key: PrivateKey
    chain: tuple[x509.Certificate, ...]
    root_cert: x509.Certificate
    ocsp_cert: x509.Certificate
    ocsp_key: PrivateKey
    tsa_cert: x509.Certificate
    tsa_key: PrivateKey

    @property
    def issuer(self) -> Issuer:
        """The issuing CA as a signer for :mod:`jplink.security.certs`."""
        return Issuer(cert=self.ca_cert, key=self.ca_key)


def _name(org: str, cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, COUNTRY),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` with mode 0600, atomically (never a half-written key)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask may have narrowed the mode; never widened
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _toml_str(value: str) -> str:
    # JSON string escapes are a subset of TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def init_ca_home(
    home: Path,
    *,
    name: str = "JP-LINK Test CA",
    intermediate: bool = False,
    key_type: Literal["rsa", "ec"] = "rsa",
    ocsp_url: str | None = None,
    api_port: int = 8888,
    tsa_port: int = 8899,
    now: dt.datetime,
    validity_days: int = 3650,
    force: bool = False,
    database_url: str | None = None,
) -> CaTsaConfig:
    """Create a CA home: keys, CA/OCSP/TSA certificates, API key and ``ca.toml``.

    Args:
        home: the directory (created if needed).
        name: the CA's name (``O`` of its certificates; ``ca.toml`` ``name``).
        intermediate: also create an intermediate CA that issues certificates.
        key_type: ``rsa`` (2048 bits) or ``ec`` (P-256) for every generated key.
        ocsp_url: the OCSP URL put in issued certificates; default
            ``http://127.0.0.1:<api_port>/ocsp``.
        api_port: port of the CA API + OCSP listener.
        tsa_port: port of the TSA listener.
        now: start of validity of the generated certificates.
        validity_days: lifetime of the root (and the others, capped by it).
        force: replace an existing CA (its SQLite database is removed too).
        database_url: optional SQLAlchemy URL (default: SQLite in the home).

    Returns:
        The configuration loaded back from the written ``ca.toml``.

    Raises:
        Conflict: ``home`` already holds a CA and ``force`` is false.
        ValueError: for a key type or validity that makes no sense.
    """
    kind = KeyType(key_type)
    if validity_days < 1:
        raise ValueError("validity_days must be positive")
    home = Path(home)
    config_path = home / CONFIG_FILE
    if config_path.exists() or (home / PRIVATE_DIR).exists():
        if not force:
            raise Conflict(
                f"{home} already holds a CA; use --force to replace it",
                code="CaExists",
            )
        shutil.rmtree(home / PRIVATE_DIR, ignore_errors=True)
        if database_url is None:
            for suffix in ("", "-wal", "-shm"):
                (home / f"ca.db{suffix}").unlink(missing_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    certs_dir = home / CERTS_DIR
    certs_dir.mkdir(exist_ok=True)
    private = _private_dir(home / PRIVATE_DIR)
    secret_dir = _private_dir(home / SECRETS_DIR)
    validity = dt.timedelta(days=validity_days)

    root_key = generate_private_key(kind)
    root = build_ca_certificate(
        _name(name, f"{name} Root CA"),
        root_key,
        path_length=1 if intermediate else 0,
        now=now,
        validity=validity,
    )
    _write_private(private / "root.key", serialize_private_key_pem(root_key))
    _write_public(certs_dir / "root.pem", root.public_bytes(Encoding.PEM))
    issuer = Issuer(cert=root, key=root_key)
    if intermediate:
        int_key = generate_private_key(kind)
        int_cert = build_ca_certificate(
            _name(name, f"{name} Issuing CA"),
            int_key,
            issuer=issuer,
            path_length=0,
            now=now,
            validity=validity,
        )
        _write_private(private / "intermediate.key", serialize_private_key_pem(int_key))
        _write_public(
            certs_dir / "intermediate.pem", int_cert.public_bytes(Encoding.PEM)
        )
        issuer = Issuer(cert=int_cert, key=int_key)

    url = ocsp_url or f"http://127.0.0.1:{api_port}/ocsp"
    ocsp_key = generate_private_key(kind)
    ocsp_cert = build_ocsp_signing_certificate(
        _name(name, f"{name} OCSP Responder"),
        ocsp_key.public_key(),
        issuer,
        now=now,
        validity=validity,
    )
    _write_private(private / "ocsp.key", serialize_private_key_pem(ocsp_key))
    _write_public(certs_dir / "ocsp.pem", ocsp_cert.public_bytes(Encoding.PEM))
    tsa_key = generate_private_key(kind)
    tsa_cert = build_tsa_certificate(
        _name(name, f"{name} TSA"),
        tsa_key.public_key(),
        issuer,
        ocsp_url=url,
        now=now,
        validity=validity,
    )
    _write_private(private / "tsa.key", serialize_private_key_pem(tsa_key))
    _write_public(certs_dir / "tsa.pem", tsa_cert.public_bytes(Encoding.PEM))
    _write_private(secret_dir / "api-key", (secrets.token_urlsafe(32) + "\n").encode())

    lines = [f"name = {_toml_str(name)}"]
    if database_url:
        lines.append(f"database_url = {_toml_str(database_url)}")
    lines += [
        "",
        "[api]",
        f"port = {int(api_port)}",
        f"api_key_file = {_toml_str(SECRETS_DIR + '/api-key')}",
        "",
        "[ocsp]",
        f"url = {_toml_str(url)}",
        "",
        "[tsa]",
        f"port = {int(tsa_port)}",
        "",
        "[issuance]",
        f"intermediate = {'true' if intermediate else 'false'}",
        "",
    ]
    # ca.toml is written last: its presence marks a complete home.
    _write_public(config_path, "\n".join(lines).encode())
    return load_ca_config(home)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"Cannot read {path}: {exc.strerror}") from exc


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_read(path))
    except ValueError as exc:
        raise ConfigurationError(f"{path}: not a PEM certificate") from exc


def _load_pair(home: Path, stem: str) -> tuple[x509.Certificate, PrivateKey]:
    cert = _load_cert(home / CERTS_DIR / f"{stem}.pem")
    key_path = home / PRIVATE_DIR / f"{stem}.key"
    key = load_private_key_pem(_read(key_path), where=str(key_path))
    if key.public_key() != cert.public_key():
        raise ConfigurationError(f"{key_path} does not belong to certs/{stem}.pem")
    return cert, key


def load_ca_material(config: CaTsaConfig) -> CaMaterial:
    """Load the CA, OCSP and TSA certificates and keys of a CA home.

    Raises:
        ConfigurationError: a file is missing or unreadable, or a key does not
            match its certificate.
    """
    home = config.home
    root = _load_cert(home / CERTS_DIR / "root.pem")
    if config.issuance.intermediate:
        ca_cert, ca_key = _load_pair(home, "intermediate")
        chain: tuple[x509.Certificate, ...] = (ca_cert, root)
    else:
        ca_cert, ca_key = _load_pair(home, "root")
        chain = (root,)
    ocsp_cert, ocsp_key = _load_pair(home, "ocsp")
    tsa_cert, tsa_key = _load_pair(home, "tsa")
    return CaMaterial(
        ca_cert=ca_cert,
        ca_key=ca_key,
        chain=chain,
        root_cert=root,
        ocsp_cert=ocsp_cert,
        ocsp_key=ocsp_key,
        tsa_cert=tsa_cert,
        tsa_key=tsa_key,
    )


def read_api_key(config: CaTsaConfig) -> str:
    """The enrolment API key from ``api.api_key_file``.

    Raises:
        ConfigurationError: the file is missing, unreadable, or empty.
    """
    key = _read(config.api.api_key_file).decode("utf-8", "replace").strip()
    if len(key) < 16:
        raise ConfigurationError(
            f"{config.api.api_key_file}: API key missing or too short"
        )
    return key
