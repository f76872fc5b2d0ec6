"""``jplink network up|down|status``: the local network from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import click

from jplink.errors import ProcessFailed

from .context import SERVERS, Timings
from .exchange import curl_command, zeep_snippet
from .state import DEFAULT_BASE_PORT, NetworkState, default_directory
from .up import network_down, network_status, network_up

__all__ = ["network"]

_dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="State directory (default: $JPLINK_NETWORK_DIR, else ./jplink-network).",
)


@click.group()
def network() -> None:
    """A whole JP-LINK network on loopback, one process per component."""


@network.command("up")
@_dir_option
@click.option(
    "--database", default="", help="postgresql://user@host/db (default: SQLite)."
)
@click.option(
    "--base-port",
    type=click.IntRange(1024, 32000),
    default=DEFAULT_BASE_PORT,
    show_default=True,
    help="Ports are taken from here upwards (below the ephemeral range).",
)
@click.option(
    "--conf-expire-seconds", type=click.IntRange(60), default=600, show_default=True
)
@click.option(
    "--refresh-seconds",
    type=click.IntRange(2),
    default=30,
    show_default=True,
    help="Configuration publishing and download interval.",
)
@click.option(
    "--wait-seconds",
    type=click.FloatRange(5),
    default=120.0,
    show_default=True,
    help="Longest wait for one process or state.",
)
@click.option(
    "--keep-on-failure", is_flag=True, help="Leave processes running on failure."
)
def up(
    directory: Path | None,
    database: str,
    base_port: int,
    conf_expire_seconds: int,
    refresh_seconds: int,
    wait_seconds: float,
    keep_on_failure: bool,
) -> None:
    """Start and onboard the network, make one exchange, print how to use it."""
    directory = directory or default_directory()
    timings = Timings(
        conf_expire_seconds=conf_expire_seconds,
        publisher_refresh_seconds=float(refresh_seconds),
        globalconf_refresh_seconds=refresh_seconds,
        wait_seconds=wait_seconds,
    )
    try:
        state = network_up(
            directory,
            base_port=base_port,
            database=database,
            timings=timings,
            keep_on_failure=keep_on_failure,
            echo=click.echo,
        )
    except ProcessFailed as err:
        click.echo(f"FAILED: {err.message}", err=True)
        click.echo(f"Read the log: {err.log}", err=True)
        if keep_on_failure:
            click.echo(
                "Processes kept running; stop them with: "
                f"jplink network down --dir {directory}",
                err=True,
            )
        raise SystemExit(1) from err
    click.echo(summary(state))


def summary(state: NetworkState) -> str:
    """What runs where, the keys, and how to call the service through A."""
    d = state.directory
    lines = ["", "JP-LINK network is up.", "", "What runs where:"]
    for name, url in sorted(state.urls.items()):
        lines.append(f"  {name:<28} {url}")
    lines += ["", "Processes (logs under logs/):"]
    for p in state.processes:
        lines.append(f"  {p.name:<10} pid {p.pid:<8} {p.log}")
    lines += ["", "API keys and the token PIN (files, mode 0600):"]
    for name, path in sorted(state.secrets.items()):
        lines.append(f"  {name:<36} {path}")
    first = state.facts.get("first_exchange", {})
    client_proxy = state.urls.get("ss_a_client_proxy", "")
    wsdl = state.urls.get("adapter_wsdl", "")
    a, b = SERVERS[1], SERVERS[2]
    lines += [
        "",
        f"First exchange {a.client} -> {b.client}: OK, "
        f"requestHash {first.get('request_hash', '?')}",
        "",
        "Call the service through A with curl:",
        "  "
        + curl_command(
            client_proxy, str(first.get("request_file", f"{d}/request.xml"))
        ),
        "",
        "Or with zeep (Python):",
        *("  " + ln for ln in zeep_snippet(client_proxy, wsdl).splitlines()),
        "",
        f"Status: jplink network status --dir {d}",
        f"Stop:   jplink network down --dir {d}",
    ]
    return "\n".join(lines)


@network.command("down")
@_dir_option
def down(directory: Path | None) -> None:
    """Stop every process of the network (SIGTERM, then SIGKILL)."""
    directory = directory or default_directory()
    network_down(directory, echo=click.echo)
    click.echo(f"Network in {directory} stopped.")


@network.command("status")
@_dir_option
@click.option(
    "--json", "as_json", is_flag=True, help="Print network.json with liveness."
)
def status(directory: Path | None, as_json: bool) -> None:
    """What runs where, and whether each process is alive."""
    data = network_status(directory or default_directory())
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    click.echo(
        f"{data['directory']}: {data['status']}, "
        f"{'running' if data['running'] else 'not running'}"
    )
    for p in data["processes"]:
        click.echo(
            f"  {p['name']:<10} pid {p['pid']:<8} {'up' if p['running'] else 'down'}"
        )
    for name, url in sorted(data["urls"].items()):
        click.echo(f"  {name:<28} {url}")
