"""Shared pieces of the ``jplink ss`` commands: options, PIN input, running."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from jplink.cli_support import cli_actor as actor
from jplink.cli_support import echo_json as _echo_json
from jplink.cli_support import home_option as _home_option
from jplink.cli_support import run_with_database
from jplink.cli_support import utc_now as now
from jplink.config import resolve_home
from jplink.errors import ConfigurationError
from jplink.identifiers import (
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    SecurityServerId,
    ServiceId,
    parse_client_id,
)
from jplink.storage import Database

from .config import SecurityServerConfig, load_ss_config
from .db import MIGRATIONS

__all__ = [
    "actor",
    "client_arg",
    "config_of",
    "echo_json",
    "home_option",
    "now",
    "pin_file_option",
    "read_pin",
    "run",
]

T = TypeVar("T")

#: ``--home``: the instance directory ($JPLINK_SS_HOME, $JPLINK_HOME/ss).
home_option = _home_option("ss")

pin_file_option = click.option(
    "--pin-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Read the token PIN from this file (mode 0600) instead of prompting.",
)


def config_of(home: Path | None) -> SecurityServerConfig:
    """The instance's configuration (``<home>/ss.toml``)."""
    return load_ss_config(resolve_home("ss", home))


def read_pin(
    pin_file: Path | None, *, prompt: str = "Token PIN", confirm: bool = False
) -> str:
    """The PIN from ``--pin-file`` (first line) or a hidden prompt.

    Raises:
        ConfigurationError: the PIN file cannot be read or is empty.
    """
    if pin_file is None:
        return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm))
    try:
        text = pin_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"Cannot read the PIN file {pin_file}") from exc
    pin = text.splitlines()[0] if text else ""
    if not pin:
        raise ConfigurationError(f"The PIN file {pin_file} is empty")
    return pin


def client_arg(value: str) -> ClientId:
    """A ``MEMBER:...``/``SUBSYSTEM:...`` argument (InvalidRequest if not)."""
    return parse_client_id(value)


def run(config: SecurityServerConfig, work: Callable[[Database], Awaitable[T]]) -> T:
    """Open (and migrate) the database, run ``work``, dispose of the engine."""
    return run_with_database(config.db_url, MIGRATIONS, work)


_IDS = (ClientId, ServiceId, SecurityServerId, GlobalGroupId, LocalGroupId)


def _plain(value: Any) -> Any:
    if isinstance(value, _IDS):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return None  # DER blobs are written to files, never printed
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def echo_json(data: Any) -> None:
    """Print frozen results as indented JSON."""
    _echo_json(_plain(data))
