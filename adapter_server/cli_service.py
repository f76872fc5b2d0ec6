"""``jplink adapter service``: register, change, export and import SQL services."""

from __future__ import annotations

from pathlib import Path

import click

from jplink.errors import InvalidRequest

from ._cli_common import echo_json, home_option, with_registry
from .portable import dump_json, dump_toml, load_document
from .portable import service_to_dict as _service_dict
from .sample import load_service_file

__all__ = ["service"]


@click.group("service")
def service() -> None:
    """Registered SQL services."""


_FILE = click.Path(dir_okay=False, exists=True, path_type=Path)


@service.command("register")
@home_option
@click.argument("file", type=_FILE)
def service_register(home: str | None, file: Path) -> None:
    """Register a service from a TOML or JSON file (validated and previewed)."""
    definition = load_service_file(file)
    stored = with_registry(home, lambda r: r.register(definition))
    click.echo(f"Registered {stored.code} ({len(stored.columns)} columns)")


@service.command("update")
@home_option
@click.argument("file", type=_FILE)
def service_update(home: str | None, file: Path) -> None:
    """Replace a service with the definition in FILE (validated and previewed)."""
    definition = load_service_file(file)
    stored = with_registry(home, lambda r: r.register(definition, replace=True))
    click.echo(f"Updated {stored.code}")


@service.command("list")
@home_option
@click.option("--subsystem", default=None)
def service_list(home: str | None, subsystem: str | None) -> None:
    """List services: code, version, subsystem, state, data source, title."""
    for s in with_registry(home, lambda r: r.list_services(subsystem)):
        state = "enabled" if s.enabled else "disabled"
        click.echo(
            f"{s.code}\t{s.version}\t{s.subsystem}\t{state}\t{s.datasource}\t{s.title}"
        )


@service.command("show")
@home_option
@click.argument("code")
def service_show(home: str | None, code: str) -> None:
    """Show a service as JSON."""
    echo_json(_service_dict(with_registry(home, lambda r: r.get(code))))


def _toggle(enabled: bool) -> click.Command:
    verb = "enable" if enabled else "disable"

    @home_option
    @click.argument("code")
    def command(home: str | None, code: str) -> None:
        with_registry(home, lambda r: r.set_enabled(code, enabled))
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
    with_registry(home, lambda r: r.delete(code))
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
    document = with_registry(home, lambda r: r.export_document())
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
    codes = with_registry(home, lambda r: r.import_document(document))
    click.echo(f"Imported {len(codes)} service(s): {', '.join(codes)}")
