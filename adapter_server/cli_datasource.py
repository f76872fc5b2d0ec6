"""``jplink adapter datasource``: database connections (passwords never shown)."""

from __future__ import annotations

from pathlib import Path

import click

from ._cli_common import echo_json, home_option, with_registry
from .definitions import DataSourceDefinition
from .portable import datasource_to_dict

__all__ = ["datasource"]


@click.group("datasource")
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
    saved = with_registry(home, lambda r: r.save_datasource(source, password))
    click.echo(f"Saved data source {saved.name}: {saved.url}")


@datasource.command("list")
@home_option
def datasource_list(home: str | None) -> None:
    """List data sources (as JSON, without passwords)."""
    sources = with_registry(home, lambda r: r.list_datasources())
    echo_json([datasource_to_dict(d) for d in sources])


@datasource.command("test")
@home_option
@click.argument("name")
def datasource_test(home: str | None, name: str) -> None:
    """Connect to a data source and run SELECT 1."""
    with_registry(home, lambda r: r.test_datasource(name))
    click.echo(f"Data source {name} is reachable")


@datasource.command("delete")
@home_option
@click.argument("name")
def datasource_delete(home: str | None, name: str) -> None:
    """Delete a data source no service uses."""
    with_registry(home, lambda r: r.delete_datasource(name))
    click.echo(f"Deleted data source {name}")
