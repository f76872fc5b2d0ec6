"""The root CLI: lazy subgroups, one place that renders errors."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from jplink import cli
from jplink.errors import InvalidRequest


def test_help_lists_available_components() -> None:
    result = CliRunner().invoke(cli.root, ["--help"])
    assert result.exit_code == 0
    assert "JP-LINK" in result.output


def test_errors_become_one_line_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    @click.command()
    def boom() -> None:
        raise InvalidRequest("the CSR does not verify")

    monkeypatch.setattr(cli.root, "commands", {**cli.root.commands, "boom": boom})
    assert cli.main(["boom"]) == 1
    result = CliRunner().invoke(cli.root, ["boom"])
    assert result.exit_code == 1
    assert "InvalidRequest: the CSR does not verify" in result.output
    assert "Traceback" not in result.output


def test_unknown_command_is_a_usage_error() -> None:
    assert cli.main(["no-such-component"]) == 2


def test_ctx_exit_code_becomes_the_exit_status(monkeypatch: pytest.MonkeyPatch) -> None:
    # A verifier's verdict is its exit code: "invalid" must not exit 0.
    @click.command()
    @click.pass_context
    def verdict(ctx: click.Context) -> None:
        ctx.exit(3)

    @click.command()
    def fine() -> None:
        click.echo("ok")

    commands = {**cli.root.commands, "verdict": verdict, "fine": fine}
    monkeypatch.setattr(cli.root, "commands", commands)
    assert cli.main(["verdict"]) == 3
    assert cli.main(["fine"]) == 0
