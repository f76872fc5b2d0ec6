"""``jplink adapter``: set up an instance, manage data sources and services, serve.

Every command takes ``--home`` (default :func:`jplink.config.resolve_home`
for ``adapter``) and calls the same :class:`~adapter_server.Registry` methods
as the admin API; errors (``JPLinkError``) are rendered once by the root
command. A running server picks up changes within ``catalog_refresh_seconds``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from jplink.config import resolve_home
from jplink.errors import ConfigurationError, InvalidRequest

from .apikeys import create_api_key, list_api_keys, revoke_api_key
from .config import CONFIG_FILE, AdapterConfig, load_adapter_config
from .definitions import DataSourceDefinition
from .portable import datasource_to_dict, dump_json, dump_toml, load_document
from .portable import service_to_dict as _service_dict
from .registry import Registry
from .sample import install_sample, load_service_file
from .store import open_registry
from .vault import create_key_file

__all__ = ["adapter"]

T = TypeVar("T")

home_option = click.option(
    "--home",
    "home",
    type=click.Path(file_okay=False),
    default=None,
    help="Adapter home (default: $JPLINK_ADAPTER_HOME, $JPLINK_HOME/adapter, "
    "/var/lib/jplink/adapter).",
)


def _config(home: str | None) -> AdapterConfig:
    return load_adapter_config(resolve_home("adapter", home))


def _with_registry(home: str | None, work: Callable[[Registry], Awaitable[T]]) -> T:
    config = _config(home)

    async def run() -> T:
        async with open_registry(config) as registry:
            return await work(registry)

    return asyncio.run(run())


def _echo_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group("adapter")
def adapter() -> None:
    """Adapter server: registered SQL statements as X-Road SOAP/REST services."""


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
    info, key = create_api_key(config.admin_api_key_file, "initial")

    async def migrate() -> None:
        async with open_registry(config):
            pass

    asyncio.run(migrate())
    click.echo(f"Initialised {path}")
    click.echo(f"Admin API key {info.key_id} (shown once, store it now):")
    click.echo(key)


# -- API keys --------------------------------------------------------------


@adapter.group("apikey")
def apikey() -> None:
    """Admin API keys (stored hashed)."""


@apikey.command("create")
@home_option
@click.option("--name", required=True, help="Who the key is for.")
def apikey_create(home: str | None, name: str) -> None:
    """Create a key; it is printed once."""
    info, key = create_api_key(_config(home).admin_api_key_file, name)
    click.echo(f"Admin API key {info.key_id} (shown once):")
    click.echo(key)


@apikey.command("list")
@home_option
def apikey_list(home: str | None) -> None:
    """List key ids and names."""
    for info in list_api_keys(_config(home).admin_api_key_file):
        click.echo(f"{info.key_id}  {info.name}")


@apikey.command("revoke")
@home_option
@click.argument("key_id")
def apikey_revoke(home: str | None, key_id: str) -> None:
    """Revoke a key by id."""
    revoke_api_key(_config(home).admin_api_key_file, key_id)
    click.echo(f"Revoked {key_id}")


# -- data sources ------------------------------------------------------------


@adapter.group("datasource")
def datasource() -> None:
    """Database connections (passwords encrypted, never shown)."""


@datasource.command("add")
@home_option
@click.argument("name")
@click.argument("url")
@click.option("--ask-password", is_flag=True, help="Prompt for the password.")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Read the password from this file.",
)
@click.option("--pool-size", type=int, default=5, show_default=True)
@click.option("--connect-timeout", type=float, default=10.0, show_default=True)
@click.option("--query-timeout", type=float, default=30.0, show_default=True)
def datasource_add(
    home: str | None,
    name: str,
    url: str,
    ask_password: bool,
    password_file: Path | None,
    pool_size: int,
    connect_timeout: float,
    query_timeout: float,
) -> None:
    """Create or replace a data source (a password in URL is moved out of it)."""
    password = None
    if password_file is not None:
        password = password_file.read_text("utf-8").strip()
    elif ask_password:
        password = click.prompt("Password", hide_input=True)
    source = DataSourceDefinition(name, url, pool_size, connect_timeout, query_timeout)
    saved = _with_registry(home, lambda r: r.save_datasource(source, password))
    click.echo(f"Saved data source {saved.name}: {saved.url}")


@datasource.command("list")
@home_option
def datasource_list(home: str | None) -> None:
    """List data sources (as JSON, without passwords)."""
    sources = _with_registry(home, lambda r: r.list_datasources())
    _echo_json([datasource_to_dict(d) for d in sources])


@datasource.command("test")
@home_option
@click.argument("name")
def datasource_test(home: str | None, name: str) -> None:
    """Connect to a data source and run SELECT 1."""
    _with_registry(home, lambda r: r.test_datasource(name))
    click.echo(f"Data source {name} is reachable")


@datasource.command("delete")
@home_option
@click.argument("name")
def datasource_delete(home: str | None, name: str) -> None:
    """Delete a data source no service uses."""
    _with_registry(home, lambda r: r.delete_datasource(name))
    click.echo(f"Deleted data source {name}")


# -- services ----------------------------------------------------------------


@adapter.group("service")
def service() -> None:
    """Registered SQL services."""


_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)


@service.command("register")
@home_option
@click.argument("file", type=_FILE)
def service_register(home: str | None, file: Path) -> None:
    """Register a service from a TOML or JSON file (validated and previewed)."""
    definition = load_service_file(file)
    stored = _with_registry(home, lambda r: r.register(definition))
    click.echo(f"Registered {stored.code} ({len(stored.columns)} columns)")


@service.command("update")
@home_option
@click.argument("file", type=_FILE)
def service_update(home: str | None, file: Path) -> None:
    """Replace a service with the definition in FILE (validated and previewed)."""
    definition = load_service_file(file)
    stored = _with_registry(home, lambda r: r.register(definition, replace=True))
    click.echo(f"Updated {stored.code}")


@service.command("list")
@home_option
@click.option("--subsystem", default=None)
def service_list(home: str | None, subsystem: str | None) -> None:
    """List services: code, version, subsystem, state, data source, title."""
    for s in _with_registry(home, lambda r: r.list_services(subsystem)):
        state = "enabled" if s.enabled else "disabled"
        click.echo(
            f"{s.code}\t{s.version}\t{s.subsystem}\t{state}\t{s.datasource}\t{s.title}"
        )


@service.command("show")
@home_option
@click.argument("code")
def service_show(home: str | None, code: str) -> None:
    """Show a service as JSON."""
    _echo_json(_service_dict(_with_registry(home, lambda r: r.get(code))))


def _toggle(enabled: bool) -> click.Command:
    verb = "enable" if enabled else "disable"

    @home_option
    @click.argument("code")
    def command(home: str | None, code: str) -> None:
        _with_registry(home, lambda r: r.set_enabled(code, enabled))
        click.echo(f"{verb.capitalize()}d {code}")

    command.__doc__ = f"{verb.capitalize()} a service."
    return click.command(verb)(command)


service.add_command(_toggle(True))
service.add_command(_toggle(False))


@service.command("delete")
@home_option
@click.argument("code")
def service_delete(home: str | None, code: str) -> None:
    """Delete a service."""
    _with_registry(home, lambda r: r.delete(code))
    click.echo(f"Deleted {code}")


def _format_of(fmt: str | None, path: Path | None) -> str:
    if fmt is not None:
        return fmt
    if path is not None and path.suffix in (".json", ".toml"):
        return path.suffix[1:]
    return "toml"


@service.command("export")
@home_option
@click.option("--format", "fmt", type=click.Choice(["toml", "json"]), default=None)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
def service_export(home: str | None, fmt: str | None, output: Path | None) -> None:
    """Export data sources (no passwords) and services, for versioning in git."""
    document = _with_registry(home, lambda r: r.export_document())
    kind = _format_of(fmt, output)
    text = dump_toml(document) if kind == "toml" else dump_json(document)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, "utf-8")
        click.echo(f"Wrote {output}")


@service.command("import")
@home_option
@click.argument("file", type=_FILE)
@click.option("--format", "fmt", type=click.Choice(["toml", "json"]), default=None)
def service_import(home: str | None, file: Path, fmt: str | None) -> None:
    """Create or update the data sources and services of an export file."""
    try:
        text = file.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"{file} is not UTF-8 text") from exc
    document = load_document(text, _format_of(fmt, file))
    codes = _with_registry(home, lambda r: r.import_document(document))
    click.echo(f"Imported {len(codes)} service(s): {', '.join(codes)}")


# -- sample and serving ------------------------------------------------------


@adapter.command("sample")
@home_option
def sample_cmd(home: str | None) -> None:
    """Create the sample municipality database and register its two services."""
    path = resolve_home("adapter", home)
    services = _with_registry(home, lambda r: install_sample(r, path))
    for s in services:
        click.echo(f"Registered {s.code} ({s.subsystem}): {s.title}")


@adapter.command("serve")
@home_option
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
def serve_cmd(home: str | None, workers: int) -> None:
    """Serve SOAP, REST, WSDL, OpenAPI and the admin API until SIGTERM."""
    from .server import run_server

    code = run_server(_config(home), workers=workers)
    if code:
        raise click.exceptions.Exit(code)
