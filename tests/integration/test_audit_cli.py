"""``jplink audit verify|verify-archive`` on X-Road's own vectors (read in place)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from jplink.cli import main

VALID = [
    "asic-valid-signed-message.asice",
    "asic-valid-batch-ts.asice",
    "asic-valid-non-batch-rest.asice",
    "asic-valid-signed-hashchain.asice",
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["audit", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("name", VALID)
def test_xroad_containers_verify(
    name: str, xroad_vectors: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(
        capsys, "verify", str(xroad_vectors / name),
        "--conf", str(xroad_vectors / "asic-trust-DEV-shared-params.xml"), "--json",
    )  # fmt: skip
    assert code == 0, out
    verdict = json.loads(out)
    assert verdict["valid"] is True
    checks = verdict["results"][0]["checks"]
    assert [c["result"] for c in checks] == ["ok"] * 6
    assert verdict["results"][0]["facts"]["ocsp_status"] == "good"


def test_wrong_message_is_rejected_naming_the_check(
    xroad_vectors: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(
        capsys, "verify", str(xroad_vectors / "asic-NEG-wrong-message.asice"),
        "--conf", str(xroad_vectors / "asic-trust-DEV-shared-params.xml"),
    )  # fmt: skip
    assert code == 1
    assert "INVALID" in out
    assert "signature          failed" in out
    assert "InvalidSignatureValue" in out
    assert "timestamp          not run" in out


def test_other_trust_rejects_the_container(
    xroad_vectors: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(
        capsys, "verify", str(xroad_vectors / "asic-valid-batch-ts.asice"),
        "--conf", str(xroad_vectors / "mlog-trust-CS-shared-params.xml"), "--json",
    )  # fmt: skip
    assert code == 1
    checks = json.loads(out.split("\nError:")[0])["results"][0]["checks"]
    failed = [c for c in checks if c["result"] == "failed"]
    assert [c["check"] for c in failed] == ["timestamp"]  # the TSA is not trusted


def test_unreadable_inputs_exit_2(
    xroad_vectors: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trust = str(xroad_vectors / "asic-trust-DEV-shared-params.xml")
    code, out = run(capsys, "verify", str(tmp_path / "missing.asice"), "--conf", trust)
    assert code == 2 and "Cannot read" in out
    bad_conf = tmp_path / "conf.xml"
    bad_conf.write_bytes(b"<notparams/>")
    code, out = run(
        capsys, "verify", str(xroad_vectors / VALID[0]), "--conf", str(bad_conf)
    )
    assert code == 2
    code, _ = run(capsys, "verify", str(xroad_vectors / VALID[0]))
    assert code == 2  # --conf is required


def test_xroad_archive_links_and_its_container_verifies(
    xroad_vectors: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(
        capsys, "verify-archive", str(xroad_vectors / "mlog-message-archive-0.zip"),
        "--conf", str(xroad_vectors / "mlog-trust-CS-shared-params.xml"), "--json",
    )  # fmt: skip
    assert code == 0, out
    result = json.loads(out)["results"][0]
    assert result["facts"]["entries"] == 1
    assert result["facts"]["last_digest"].startswith("9011ab557706b505")


def test_tampered_archive_is_rejected_naming_the_file(
    xroad_vectors: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = (xroad_vectors / "mlog-message-archive-0.zip").read_bytes()
    out_buf = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(source)) as src,
        zipfile.ZipFile(out_buf, "w") as dst,
    ):
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".asice"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.writestr(info, data)
    tampered = tmp_path / "tampered.zip"
    tampered.write_bytes(out_buf.getvalue())
    code, out = run(capsys, "verify-archive", str(tmp_path))
    assert code == 1
    assert f"{tampered}: INVALID" in out
    assert "InvalidArchiveLink" in out


def test_installed_command_exit_codes_are_the_verdicts(xroad_vectors: Path) -> None:
    # The auditor's scripts run the console script, not main(): its exit
    # status must carry the verdict (0 valid, 1 invalid, 2 unreadable).
    jplink = shutil.which("jplink", path=str(Path(sys.executable).parent))
    assert jplink is not None, "the jplink console script is not installed"
    conf = str(xroad_vectors / "asic-trust-DEV-shared-params.xml")

    def status(*argv: str) -> int:
        done = subprocess.run(
            [jplink, "audit", "verify", *argv, "--conf", conf],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode

    assert status(str(xroad_vectors / VALID[0])) == 0
    assert status(str(xroad_vectors / "asic-NEG-wrong-message.asice")) == 1
    assert status(str(xroad_vectors / "no-such-file.asice")) == 2
