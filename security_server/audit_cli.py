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
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from jplink.asic import ArchiveLink, AsicTrust, load_asic_trust, verify_archive_linking
from jplink.asic.verify import verify_asic_container
from jplink.errors import InvalidDigest, JPLinkError

__all__ = [
    "CHECKS",
    "Invalid",
    "Unreadable",
    "Verdict",
    "audit",
    "verify_archive_files",
    "verify_container_file",
]

#: The container checks, in the order they run (jplink.asic.verify).
CHECKS = (
    "container",
    "signature",
    "timestamp",
    "signing-time",
    "certificate-chain",
    "ocsp",
)
EXIT_VALID, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2
_ARCHIVE_NAME = re.compile(
    r"mlog-(?:(?P<group>.+)-)?(?P<start>\d{14})-(?P<end>\d{14})-(?P<hex>[0-9a-f]{16})"
    r"\.zip(?:\.gpg)?"
)


class Unreadable(click.ClickException):
    """An input that cannot be read or used (exit status 2)."""

    exit_code = EXIT_UNREADABLE


@dataclass
class Verdict:
    """The outcome of a verification, as printed (mutable while it is built)."""

    file: str
    valid: bool = True
    checks: list[dict[str, str]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    code: str | None = None

    def fail(self, check: str, exc: JPLinkError) -> None:
        """Record the failing check."""
        self.valid = False
        self.reason = exc.message
        self.code = exc.code
        self.checks.append({"check": check, "result": "failed", "reason": exc.message})

    def as_dict(self) -> dict[str, Any]:
        """The verdict as JSON-ready data."""
        return {
            "file": self.file,
            "valid": self.valid,
            "checks": self.checks,
            "facts": self.facts,
            "reason": self.reason,
            "code": self.code,
        }


def verify_container_file(data: bytes, name: str, trust: AsicTrust) -> Verdict:
    """Verify one container's bytes; every check is listed in the verdict.

    Args:
        data: the container bytes.
        name: how to name it in the verdict.
        trust: the auditor's trust (from shared parameters).

    Returns:
        The verdict (``valid`` False names the failing check); never raises
        for bad input.
    """
    verdict = Verdict(name)
    try:
        result = verify_asic_container(data, trust=trust)
    except JPLinkError as exc:
        failed = str(exc.detail.get("check", "container"))
        for check in CHECKS[: CHECKS.index(failed) if failed in CHECKS else 0]:
            verdict.checks.append({"check": check, "result": "ok"})
        verdict.fail(failed, exc)
        for check in CHECKS[CHECKS.index(failed) + 1 :] if failed in CHECKS else ():
            verdict.checks.append({"check": check, "result": "not run"})
        return verdict
    verdict.checks = [{"check": check, "result": "ok"} for check in CHECKS]
    verdict.facts = {
        "signer": result.signer_subject,
        "signing_time": result.signing_time.isoformat(),
        "timestamp_time": result.timestamp_time.isoformat(),
        "batch_timestamp": result.batch_timestamp,
        "ocsp_status": result.ocsp_status.name.lower(),
        "ocsp_this_update": result.ocsp_time.isoformat(),
        "certificate_path": [
            c.subject.rfc4514_string() for c in result.certificate_path
        ],
        "unverified_refs": list(result.unverified_refs),
    }
    return verdict


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


@dataclass
class _Archive:
    path: Path
    group: str
    previous: str | None
    last: str
    entries: list[tuple[str, bytes]]


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


def verify_archive_files(
    files: list[tuple[Path, bytes]], trust: AsicTrust | None
) -> tuple[list[Verdict], dict[str, Any]]:
    """Check each archive's linking and the links between the archives.

    Each group (from X-Road's name ``mlog-[group-]start-end-hex.zip``) must
    form one unbroken chain: one archive starts it, every other one links to
    exactly one predecessor among the files, and no two share a predecessor.

    Args:
        files: (path, decrypted archive bytes).
        trust: also verify every container inside when given.

    Returns:
        One verdict per archive, and a summary of the chains.
    """
    verdicts: dict[Path, Verdict] = {}
    archives: list[_Archive] = []
    for path, data in files:
        verdict = verdicts[path] = Verdict(str(path))
        try:
            header = _own_linking(data)
        except JPLinkError as exc:
            verdict.fail("linking", exc)
            continue
        verdict.checks.append({"check": "linking", "result": "ok"})
        match = _ARCHIVE_NAME.fullmatch(path.name)
        if match is not None and not header.last_digest.startswith(match["hex"]):
            verdict.fail(
                "file-name",
                JPLinkError(
                    f"The name's digest {match['hex']} is not the archive's "
                    "last digest",
                    code="InvalidArchiveName",
                ),
            )
            continue
        verdict.facts = {
            "entries": len(header.entries),
            "last_digest": header.last_digest,
            "previous_digest": header.previous_digest,
            "previous_name": header.previous_name,
        }
        archives.append(
            _Archive(
                path,
                "" if match is None else match["group"] or "",
                header.previous_digest,
                header.last_digest,
                [(e.name, e.data) for e in header.entries],
            )
        )
    chains = _link_chains(archives, verdicts)
    if trust is not None:
        for archive in archives:
            for name, blob in archive.entries:
                inner = verify_container_file(blob, f"{archive.path}!{name}", trust)
                if not inner.valid:
                    verdicts[archive.path].fail(
                        "container",
                        JPLinkError(
                            f"{name}: {inner.reason}",
                            code=inner.code or "InvalidContainer",
                        ),
                    )
    return list(verdicts.values()), {"chains": chains}


def _own_linking(data: bytes) -> ArchiveLink:
    # Check the archive against its own header's predecessor; the links
    # between the files are checked by _link_chains.
    try:
        return verify_archive_linking(data, previous_digest=None)
    except InvalidDigest as exc:
        found = exc.detail.get("found")
        if exc.code != "InvalidArchiveLink" or not isinstance(found, str):
            raise
        return verify_archive_linking(data, previous_digest=found)


def _link_chains(archives: list[_Archive], verdicts: dict[Path, Verdict]) -> int:
    by_last = {a.last: a for a in archives}
    chains = 0
    starts: dict[str, list[Path]] = {}
    seen_previous: dict[str, Path] = {}
    for archive in archives:
        verdict = verdicts[archive.path]
        if archive.previous is not None and archive.previous in seen_previous:
            other = seen_previous[archive.previous]
            verdict.fail(
                "chain",
                JPLinkError(
                    f"Links to the same predecessor as {other.name}: the chain forks",
                    code="InvalidArchiveLink",
                ),
            )
            continue
        if archive.previous is not None:
            seen_previous[archive.previous] = archive.path
        if archive.previous is None or archive.previous not in by_last:
            starts.setdefault(archive.group, []).append(archive.path)
            if archive.previous is not None:
                verdict.facts["note"] = "links to an archive that was not given"
        verdict.checks.append({"check": "chain", "result": "ok"})
    for group, paths in starts.items():
        chains += 1
        for path in paths[1:]:
            verdicts[path].fail(
                "chain",
                JPLinkError(
                    f"Starts a second chain in group {group or '-'}: its "
                    "predecessor is missing or altered",
                    code="InvalidArchiveLink",
                ),
            )
    return chains


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
