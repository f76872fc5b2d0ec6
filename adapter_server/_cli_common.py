"""Shared pieces of the ``jplink adapter`` commands: ``--home`` and the registry."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from jplink.config import resolve_home

from .config import AdapterConfig, load_adapter_config
from .registry import Registry
from .store import open_registry

__all__ = ["echo_json", "home_option", "load_config", "with_registry"]

T = TypeVar("T")

home_option = click.option(
    "--home",
    "home",
    type=click.Path(file_okay=False),
    default=None,
    help="Adapter home (default: $JPLINK_ADAPTER_HOME, $JPLINK_HOME/adapter, "
    "/var/lib/jplink/adapter).",
)


def load_config(home: str | None) -> AdapterConfig:
    """The configuration of the instance at ``--home``.

    Raises:
        ConfigurationError: missing or invalid ``adapter.toml``.
    """
    return load_adapter_config(resolve_home("adapter", home))


def with_registry(home: str | None, work: Callable[[Registry], Awaitable[T]]) -> T:
    """Run ``work`` on the instance's registry (acting as ``cli``); return its result.

    Raises:
        JPLinkError: whatever the store or ``work`` raises.
    """
    config = load_config(home)

    async def run() -> T:
        async with open_registry(config) as registry:
            return await work(registry)

    return asyncio.run(run())


def echo_json(data: object) -> None:
    """Print ``data`` as indented JSON (non-ASCII kept as is)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))
