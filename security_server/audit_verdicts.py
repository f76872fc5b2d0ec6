"""The auditor's verdicts on evidence containers and archive chains (no I/O).

:func:`verify_container_file` runs every check of
:func:`jplink.asic.verify.verify_asic_container` on one ASiC-E container and
:func:`verify_archive_files` checks the ``linkinginfo`` chain of an archive
sequence (PROTOCOLS.md §12.5); both return :class:`Verdict` objects that name
the failing check and its reason and never raise for bad input. The
``jplink audit`` commands (:mod:`security_server.audit_cli`, which re-exports
these names) read the files and print the verdicts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jplink.asic import ArchiveLink, AsicTrust, verify_archive_linking
from jplink.asic.verify import verify_asic_container
from jplink.errors import InvalidDigest, JPLinkError

__all__ = ["CHECKS", "Verdict", "verify_archive_files", "verify_container_file"]

#: The container checks, in the order they run (jplink.asic.verify).
CHECKS = (
    "container",
    "signature",
    "timestamp",
    "signing-time",
    "certificate-chain",
    "ocsp",
)
_ARCHIVE_NAME = re.compile(
    r"mlog-(?:(?P<group>.+)-)?(?P<start>\d{14})-(?P<end>\d{14})-(?P<hex>[0-9a-f]{16})"
    r"\.zip(?:\.gpg)?"
)


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


@dataclass
class _Archive:
    path: Path
    group: str
    previous: str | None
    last: str
    entries: list[tuple[str, bytes]]


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
