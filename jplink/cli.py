"""The ``jplink`` command: one click root, one subgroup per component.

Subgroups are imported lazily so ``jplink ca ...`` does not load the security
server. This module (with ``jplink/network/``) is the only part of the core
allowed to import the servers. User-facing failures become a one-line message
and a non-zero exit here, in exactly one place; nothing prints a traceback
unless ``--verbose`` is given.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import sys
from collections.abc import Sequence
from typing import Any

import click

from .errors import JPLinkError

__all__ = ["SUBGROUPS", "main", "root"]

#: name -> "module:attribute" of each component's click group.
SUBGROUPS: dict[str, str] = {
    "ca": "ca_tsa.cli:ca",
    "central": "central_server.cli:central",
    "ss": "security_server.cli:ss",
    "adapter": "adapter_server.cli:adapter",
    "audit": "security_server.audit_cli:audit",
    "network": "jplink.network.cli:network",
}


class _LazyGroup(click.Group):
    def _available(self) -> dict[str, str]:
        found = {}
        for name, target in SUBGROUPS.items():
            module = target.split(":", 1)[0]
            if importlib.util.find_spec(module.split(".")[0]) is None:
                continue
            try:
                if importlib.util.find_spec(module) is None:
                    continue
            except ModuleNotFoundError:
                continue
            found[name] = target
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._available()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        cmd = super().get_command(ctx, cmd_name)
        if cmd is not None:
            return cmd
        target = self._available().get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":", 1)
        obj = getattr(importlib.import_module(module), attr)
        if not isinstance(obj, click.Command):
            raise TypeError(f"{target} is not a click command")
        return obj

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except JPLinkError as exc:
            if ctx.find_root().params.get("verbose"):
                logging.getLogger("jplink").exception("command failed")
            raise click.ClickException(f"{exc.code}: {exc.message}") from exc


@click.group(cls=_LazyGroup)
@click.option("-v", "--verbose", is_flag=True, help="Log debug output.")
@click.version_option(package_name="jplink")
def root(verbose: bool) -> None:
    """JP-LINK: secure data exchange between organisations (X-Road 7 compatible)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit code."""
    try:
        # Without standalone mode click *returns* the code of ``ctx.exit(n)``
        # instead of raising: it must become the process's exit status.
        result = root.main(
            args=list(argv) if argv is not None else None, standalone_mode=False
        )
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return 1
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
