"""``jplink audit``: the auditor's offline verifier of evidence and archives.

- ``jplink audit verify FILE --conf SHARED_PARAMS.xml``: one ASiC-E container:
  signature, signer certificate chain to the trusted CAs, OCSP status at
  signing time, time-stamp token and its chain, hash chains. Trust comes only
  from the shared-parameters file the auditor supplies.
- ``jplink audit verify-archive DIR|FILE...``: the ``linkinginfo`` chain of an
  archive sequence (each archive's entries, and each archive's link to its
  predecessor); with ``--conf`` every container inside is verified too.

Exit status: 0 valid, 1 invalid (the failing check and its reason are
printed), 2 usage error or unreadable input. ``--json`` prints the verdict as
one JSON object.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import click

from jplink.asic import AsicTrust, load_asic_trust
from jplink.errors import JPLinkError

from .audit_verdicts import (
    CHECKS,
    Verdict,
    verify_archive_files,
    verify_container_file,
)

__all__ = [
    "CHECKS",
    "Invalid",
    "Unreadable",
    "Verdict",
    "audit",
    "verify_archive_files",
    "verify_container_file",
]

EXIT_VALID, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2


class Unreadable(click.ClickException):
    """An input that cannot be read or used (exit status 2)."""

    exit_code = EXIT_UNREADABLE


def _read(path: Path, gpg_home: Path | None = None) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Unreadable(f"Cannot read {path}: {exc.strerror}") from exc
    if path.suffix != ".gpg":
        return data
    gpg = shutil.which("gpg")
    if gpg is None:
        raise Unreadable(f"{path} is encrypted; install gpg (apt: gnupg)")
    argv = [gpg, "--batch", "--quiet", "--decrypt"]
    if gpg_home is not None:
        argv[1:1] = ["--homedir", str(gpg_home)]
    done = subprocess.run(argv, input=data, capture_output=True, check=False)
    if done.returncode != 0:
        raise Unreadable(
            f"Cannot decrypt {path}: gpg says "
            + done.stderr.decode("utf-8", "replace").strip()[-300:]
        )
    return done.stdout


def _print(verdicts: list[Verdict], as_json: bool, extra: dict[str, Any]) -> None:
    if as_json:
        data = {
            "valid": all(v.valid for v in verdicts),
            **extra,
            "results": [v.as_dict() for v in verdicts],
        }
        click.echo(json.dumps(data, indent=2))
        return
    for verdict in verdicts:
        click.echo(f"{verdict.file}: {'VALID' if verdict.valid else 'INVALID'}")
        for check in verdict.checks:
            line = f"  {check['check']:<18} {check['result']}"
            if "reason" in check:
                line += f": {check['reason']}"
            click.echo(line)
        for key, value in verdict.facts.items():
            click.echo(f"  {key}: {value}")
    for key, value in extra.items():
        click.echo(f"{key}: {value}")


def _trust(conf: Path) -> AsicTrust:
    data = _read(conf)
    try:
        return load_asic_trust(data)
    except JPLinkError as exc:
        raise Unreadable(
            f"{conf} is not usable shared parameters: {exc.message}"
        ) from exc


@click.group()
def audit() -> None:
    """Verify message-log evidence (ASiC-E containers) and archives offline."""


_json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the verdict as JSON."
)
_conf_help = "Shared-parameters XML of the global configuration to trust."


class Invalid(click.ClickException):
    """The evidence did not verify (exit status 1)."""

    exit_code = EXIT_INVALID


def _exit(ctx: click.Context, verdicts: list[Verdict]) -> None:
    # An exception, not ctx.exit(): the root CLI runs click with
    # standalone_mode=False, where an Exit's status would be lost.
    failed = [v for v in verdicts if not v.valid]
    if failed:
        raise Invalid(
            f"{len(failed)} of {len(verdicts)} file(s) INVALID; first: "
            f"{failed[0].file}: {failed[0].code}: {failed[0].reason}"
        )


@audit.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--conf",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help=_conf_help,
)
@_json_option
@click.pass_context
def verify_command(ctx: click.Context, file: Path, conf: Path, as_json: bool) -> None:
    """Verify one ASiC-E container (exit 0 valid, 1 invalid, 2 unreadable)."""
    trust = _trust(conf)
    verdict = verify_container_file(_read(file), str(file), trust)
    _print([verdict], as_json, {})
    _exit(ctx, [verdict])


def _archive_files(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p for p in path.iterdir() if p.name.endswith((".zip", ".zip.gpg"))
            )
        else:
            files.append(path)
    if not files:
        raise click.UsageError("No archive files given (mlog-*.zip or *.zip.gpg)")
    return files


@audit.command("verify-archive")
@click.argument(
    "paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path)
)
@click.option(
    "--conf",
    type=click.Path(dir_okay=False, path_type=Path),
    help=_conf_help + " Also verify every container.",
)
@click.option(
    "--gpg-home",
    type=click.Path(file_okay=False, path_type=Path),
    help="GPG home with the key to decrypt .gpg archives.",
)
@_json_option
@click.pass_context
def verify_archive_command(
    ctx: click.Context,
    paths: tuple[Path, ...],
    conf: Path | None,
    gpg_home: Path | None,
    as_json: bool,
) -> None:
    """Check the hash links of an archive sequence (exit 0 valid, 1 invalid)."""
    trust = None if conf is None else _trust(conf)
    files = [(path, _read(path, gpg_home)) for path in _archive_files(paths)]
    verdicts, summary = verify_archive_files(files, trust)
    _print(verdicts, as_json, summary)
    _exit(ctx, verdicts)
