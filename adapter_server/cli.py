"""``jplink adapter``: set up an instance, manage data sources and services, serve.

Every command takes ``--home`` (default :func:`jplink.config.resolve_home`
for ``adapter``) and calls the same :class:`~adapter_server.Registry` methods
as the admin API; errors (``JPLinkError``) are rendered once by the root
command. A running server picks up changes within ``catalog_refresh_seconds``.
The subgroups live in one module per concept: :mod:`.cli_datasource`,
:mod:`.cli_service` and :mod:`.cli_admin` (API keys and the audit log).
"""

from __future__ import annotations

import json

import click

from jplink.config import resolve_home
from jplink.errors import ConfigurationError

from ._cli_common import home_option, load_config, with_registry
from .cli_admin import apikey, audit, create_key_audited
from .cli_datasource import datasource
from .cli_service import service
from .config import CONFIG_FILE, load_adapter_config
from .sample import install_sample
from .vault import create_key_file

__all__ = ["adapter"]


@click.group("adapter")
def adapter() -> None:
    """Adapter server: registered SQL statements as X-Road SOAP/REST services."""


for _group in (apikey, audit, datasource, service):
    adapter.add_command(_group)


@adapter.command("init")
@home_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8090, show_default=True)
@click.option("--public-url", default=None, help="Where the security server calls.")
@click.option("--database-url", default="", help="Store URL (default SQLite).")
def init_cmd(
    home: str | None, host: str, port: int, public_url: str | None, database_url: str
) -> None:
    """Create adapter.toml, the password key file and the first admin API key."""
    path = resolve_home("adapter", home)
    if (path / CONFIG_FILE).exists():
        raise ConfigurationError(f"{path / CONFIG_FILE} exists; already initialised")
    path.mkdir(parents=True, exist_ok=True)
    settings = {
        "host": host,
        "port": port,
        "public_url": public_url or f"http://{host}:{port}",
        "database_url": database_url,
    }
    lines = ["# JP-LINK adapter server (see docs/adapter-server.md)"]
    lines += [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in settings.items()]
    (path / CONFIG_FILE).write_text("\n".join(lines) + "\n", "utf-8")
    config = load_adapter_config(path)
    create_key_file(config.secret_key_file)
    # Opening the registry migrates the new store; the first key is audited.
    info, key = with_registry(
        str(path),
        lambda r: create_key_audited(r, config.admin_api_key_file, "initial"),
    )
    click.echo(f"Initialised {path}")
    click.echo(f"Admin API key {info.key_id} (shown once, store it now):")
    click.echo(key)


@adapter.command("sample")
@home_option
def sample_cmd(home: str | None) -> None:
    """Create the sample municipality database and register its two services."""
    path = resolve_home("adapter", home)
    services = with_registry(home, lambda r: install_sample(r, path))
    for s in services:
        click.echo(f"Registered {s.code} ({s.subsystem}): {s.title}")


@adapter.command("serve")
@home_option
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
def serve_cmd(home: str | None, workers: int) -> None:
    """Serve SOAP, REST, WSDL, OpenAPI and the admin API until SIGTERM."""
    from .server import run_server

    code = run_server(load_config(home), workers=workers)
    if code:
        raise click.exceptions.Exit(code)
