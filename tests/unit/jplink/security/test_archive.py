"""Message-log archives we build: linking round trips, chaining and tampering.

The expected digests are computed here straight from the rule in
PROTOCOLS.md §12.5, not with the code under test.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile

import pytest

from jplink.asic import (
    LINKING_INFO,
    archive_file_name,
    build_archive,
    verify_archive_linking,
)
from jplink.errors import InvalidDigest, MalformedMessage

ENTRIES = [
    ("q1-request-1.asice", b"container one"),
    ("q1-response-2.asice", b"container two"),
    ("q2-request-3.asice", b"container three"),
]


def _expected_chain(previous: str, blobs: list[bytes]) -> list[str]:
    out = []
    for blob in blobs:
        inner = hashlib.sha512(blob).hexdigest()
        previous = hashlib.sha512((previous + inner).encode()).hexdigest()
        out.append(previous)
    return out


def _files(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {n: z.read(n) for n in z.namelist()}


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, blob in files.items():
            z.writestr(name, blob)
    return out.getvalue()


def test_first_archive_round_trips():
    built = build_archive(ENTRIES, previous_digest=None)
    digests = _expected_chain("", [b for _, b in ENTRIES])
    linking = _files(built.data)[LINKING_INFO].decode()
    assert linking.splitlines() == ["- - SHA-512"] + [
        f"{d} {name}" for d, (name, _) in zip(digests, ENTRIES, strict=True)
    ]
    link = verify_archive_linking(built.data, previous_digest=None)
    assert built.last_digest == link.last_digest == digests[-1]
    assert [(e.name, e.data) for e in link.entries] == ENTRIES
    assert build_archive(ENTRIES, previous_digest=None).data == built.data


def test_archives_chain_through_the_last_digest():
    first = build_archive(ENTRIES[:1], previous_digest=None)
    name = archive_file_name(
        dt.datetime(2023, 10, 23, 12, 12, 55),
        dt.datetime(2023, 10, 23, 12, 12, 55),
        first.last_digest,
    )
    assert name == f"mlog-20231023121255-20231023121255-{first.last_digest[:16]}.zip"
    second = build_archive(
        ENTRIES[1:], previous_digest=first.last_digest, previous_name=name
    )
    link = verify_archive_linking(second.data, previous_digest=first.last_digest)
    assert link.previous_name == name
    assert (
        link.last_digest
        == _expected_chain(first.last_digest, [b for _, b in ENTRIES[1:]])[-1]
    )
    # Skipping the first archive breaks the chain.
    with pytest.raises(InvalidDigest) as info:
        verify_archive_linking(second.data, previous_digest=None)
    assert info.value.code == "InvalidArchiveLink"


def test_tampered_container_breaks_the_link():
    files = _files(build_archive(ENTRIES, previous_digest=None).data)
    files["q1-response-2.asice"] = b"container 2"
    with pytest.raises(InvalidDigest) as info:
        verify_archive_linking(_zip(files), previous_digest=None)
    assert info.value.detail["entry"] == "q1-response-2.asice"


def test_reordered_lines_break_the_link():
    files = _files(build_archive(ENTRIES, previous_digest=None).data)
    head, *lines = files[LINKING_INFO].decode().splitlines()
    files[LINKING_INFO] = "\n".join([head, lines[1], lines[0], lines[2]]).encode()
    with pytest.raises(InvalidDigest):
        verify_archive_linking(_zip(files), previous_digest=None)


@pytest.mark.parametrize("defect", ["unlisted", "missing", "no-linkinginfo", "header"])
def test_malformed_archives_are_refused(defect):
    files = _files(build_archive(ENTRIES, previous_digest=None).data)
    if defect == "unlisted":
        files["extra.asice"] = b"smuggled"
    elif defect == "missing":
        del files["q2-request-3.asice"]
    elif defect == "no-linkinginfo":
        del files[LINKING_INFO]
    else:
        files[LINKING_INFO] = files[LINKING_INFO].replace(b"SHA-512", b"MD5")
    with pytest.raises(MalformedMessage) as info:
        verify_archive_linking(_zip(files), previous_digest=None)
    assert info.value.code == "MalformedArchive"


def test_builder_refuses_bad_names():
    with pytest.raises(ValueError):
        build_archive([("../x.asice", b"x")], previous_digest=None)
    with pytest.raises(ValueError):
        build_archive([("a b.asice", b"x")], previous_digest=None)
    with pytest.raises(ValueError):
        build_archive([], previous_digest=None)
