"""ASiC-E containers as X-Road's message log writes them: parse and build.

One container holds one logged message and its evidence (PROTOCOLS.md §12.3,
ETSI EN 319 162-1): ``mimetype``, ``message.xml`` (the SOAP message or the
REST header part), ``attachmentN`` (a REST body), ``META-INF/signatures.xml``,
for a batch signature ``sig-hashchain.xml`` + ``sig-hashchainresult.xml``,
and for a batch time-stamp ``META-INF/timestamp.tst`` (DER) +
``ts-hashchain.xml`` + ``ts-hashchainresult.xml`` + ``META-INF/ASiCManifest.xml``.
A single time-stamp travels inside the signature instead
(``xades:SignatureTimeStamp``). ``META-INF/manifest.xml`` is the OpenDocument
manifest of the non-META-INF files.

Parsing only checks the layout; :func:`jplink.asic.verify_asic_container`
makes the trust decision.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from jplink.errors import MalformedMessage
from jplink.security.c14n import DigestAlgorithm
from jplink.security.xades import embed_signature_timestamp

from ._zip import ZipLimits, read_zip, write_zip

__all__ = [
    "ASIC_MIMETYPE",
    "MALFORMED_ASIC",
    "AsicContainer",
    "Entry",
    "build_asic_container",
    "parse_asic_container",
]

#: The ``mimetype`` entry and the ZIP comment ``mimetype=<this>``.
ASIC_MIMETYPE = "application/vnd.etsi.asic-e+zip"
#: Error code for a container that breaks the layout.
MALFORMED_ASIC = "MalformedAsicContainer"

_NS_ASIC_MANIFEST = "http://uri.etsi.org/2918/v1.2.1#"  # "2918", not "02918"
_NS_DS = "http://www.w3.org/2000/09/xmldsig#"
_NS_ODF_MANIFEST = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
_ATTACHMENT = re.compile(r"attachment([1-9][0-9]{0,3})")


class Entry:
    """Entry names inside a container (X-Road's ``AsicContainerEntries``)."""

    MIMETYPE = "mimetype"
    MESSAGE = "message.xml"
    SIGNATURE = "META-INF/signatures.xml"
    SIG_HASH_CHAIN = "sig-hashchain.xml"
    SIG_HASH_CHAIN_RESULT = "sig-hashchainresult.xml"
    TIMESTAMP = "META-INF/timestamp.tst"
    TS_HASH_CHAIN = "ts-hashchain.xml"
    TS_HASH_CHAIN_RESULT = "ts-hashchainresult.xml"
    ASIC_MANIFEST = "META-INF/ASiCManifest.xml"
    MANIFEST = "META-INF/manifest.xml"

    FIXED = frozenset(
        {
            MIMETYPE,
            MESSAGE,
            SIGNATURE,
            SIG_HASH_CHAIN,
            SIG_HASH_CHAIN_RESULT,
            TIMESTAMP,
            TS_HASH_CHAIN,
            TS_HASH_CHAIN_RESULT,
            ASIC_MANIFEST,
            MANIFEST,
        }
    )


@dataclass(frozen=True, slots=True)
class AsicContainer:
    """The entries of an ASiC-E container, byte-exact.

    Attributes:
        message: ``message.xml``: the SOAP message or the REST header part.
        attachments: ``attachment1`` ... in number order (REST bodies).
        signature: ``META-INF/signatures.xml``.
        hash_chain: ``sig-hashchain.xml`` of a batch signature, else None.
        hash_chain_result: ``sig-hashchainresult.xml``, else None.
        timestamp: ``META-INF/timestamp.tst`` (DER) of a batch time-stamp;
            None when the time-stamp is embedded in the signature.
        ts_hash_chain: ``ts-hashchain.xml`` of a batch time-stamp.
        ts_hash_chain_result: ``ts-hashchainresult.xml`` (the time-stamped data).
        asic_manifest: ``META-INF/ASiCManifest.xml``, if present.
        manifest: ``META-INF/manifest.xml``, if present.
        mimetype_first_and_stored: whether ``mimetype`` is the first entry
            and uncompressed, as ETSI EN 319 162-1 asks. X-Road's own writer
            deflates it, so this is reported, not required (see ``strict``).
    """

    message: bytes
    signature: bytes
    attachments: tuple[bytes, ...] = ()
    hash_chain: bytes | None = None
    hash_chain_result: bytes | None = None
    timestamp: bytes | None = None
    ts_hash_chain: bytes | None = None
    ts_hash_chain_result: bytes | None = None
    asic_manifest: bytes | None = None
    manifest: bytes | None = None
    mimetype_first_and_stored: bool = True

    @property
    def parts(self) -> dict[str, bytes]:
        """The signed parts by reference URI: ``/message.xml``, ``/attachmentN``."""
        parts = {"/" + Entry.MESSAGE: self.message}
        for i, data in enumerate(self.attachments, start=1):
            parts[f"/attachment{i}"] = data
        return parts


def _bad(message: str, **detail: object) -> MalformedMessage:
    return MalformedMessage(message, code=MALFORMED_ASIC, detail=detail)


def _attachments(files: dict[str, bytes]) -> tuple[bytes, ...]:
    numbers = []
    for name in files:
        match = _ATTACHMENT.fullmatch(name)
        if match is None:
            if name not in Entry.FIXED:
                raise _bad(f"Unexpected entry {name!r} in the container", name=name)
            continue
        numbers.append(int(match.group(1)))
    if sorted(numbers) != list(range(1, len(numbers) + 1)):
        raise _bad("Attachment entries must be numbered attachment1..N")
    return tuple(files[f"attachment{n}"] for n in range(1, len(numbers) + 1))


def _together(files: dict[str, bytes], *names: str) -> bool:
    present = [n in files for n in names]
    if any(present) and not all(present):
        raise _bad(f"These entries go together: {', '.join(names)}", names=names)
    return all(present)


def parse_asic_container(
    data: bytes, *, limits: ZipLimits | None = None, strict: bool = False
) -> AsicContainer:
    """Read the entries of an ASiC-E container and check its layout.

    Args:
        data: the container (ZIP) bytes, untrusted.
        limits: ZIP resource limits (defaults: :class:`ZipLimits`).
        strict: also require ``mimetype`` to be the first, stored entry
            (ETSI EN 319 162-1 A.1); X-Road's own containers do not meet it.

    Returns:
        The container entries.

    Raises:
        MalformedMessage: code ``MalformedAsicContainer`` for a bad ZIP (see
            :func:`read_zip`), a wrong or missing ``mimetype``, a missing
            message or signature, an unknown entry, or an incomplete set of
            hash-chain or time-stamp entries.
    """
    entries = read_zip(data, limits=limits or ZipLimits(), code=MALFORMED_ASIC)
    files = {e.name: e.data for e in entries}
    if files.get(Entry.MIMETYPE) != ASIC_MIMETYPE.encode():
        raise _bad(f"The container's mimetype entry is not {ASIC_MIMETYPE}")
    first_stored = entries[0].name == Entry.MIMETYPE and entries[0].stored
    if strict and not first_stored:
        # ETSI EN 319 162-1 A.1: the "mimetype" file "shall be the first file
        # in the ZIP container" and "shall not be compressed".
        raise _bad("mimetype must be the first entry and stored uncompressed")
    for required in (Entry.MESSAGE, Entry.SIGNATURE):
        if required not in files:
            raise _bad(f"The container has no {required}", name=required)
    attachments = _attachments(files)
    _together(files, Entry.SIG_HASH_CHAIN, Entry.SIG_HASH_CHAIN_RESULT)
    _together(files, Entry.TIMESTAMP, Entry.TS_HASH_CHAIN, Entry.TS_HASH_CHAIN_RESULT)
    if Entry.ASIC_MANIFEST in files and Entry.TIMESTAMP not in files:
        raise _bad("ASiCManifest.xml without a batch time-stamp")
    return AsicContainer(
        message=files[Entry.MESSAGE],
        signature=files[Entry.SIGNATURE],
        attachments=attachments,
        hash_chain=files.get(Entry.SIG_HASH_CHAIN),
        hash_chain_result=files.get(Entry.SIG_HASH_CHAIN_RESULT),
        timestamp=files.get(Entry.TIMESTAMP),
        ts_hash_chain=files.get(Entry.TS_HASH_CHAIN),
        ts_hash_chain_result=files.get(Entry.TS_HASH_CHAIN_RESULT),
        asic_manifest=files.get(Entry.ASIC_MANIFEST),
        manifest=files.get(Entry.MANIFEST),
        mimetype_first_and_stored=first_stored,
    )


def _manifest(files: Sequence[tuple[str, str]]) -> bytes:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<manifest:manifest xmlns:manifest="{_NS_ODF_MANIFEST}" '
        'manifest:version="1.2">',
        f'    <manifest:file-entry manifest:media-type="{ASIC_MIMETYPE}" '
        'manifest:full-path="/"/>',
    ]
    lines += [
        f"    <manifest:file-entry manifest:media-type={quoteattr(media)} "
        f"manifest:full-path={quoteattr(name)}/>"
        for name, media in files
    ]
    return ("\n".join([*lines, "</manifest:manifest>"]) + "\n").encode()


def _asic_manifest(ts_hash_chain_result: bytes) -> bytes:
    # X-Road's layout (asic-valid-batch-ts.asice): the time-stamp token is the
    # "signature" over ts-hashchainresult.xml, named with its SHA-512.
    digest = base64.b64encode(DigestAlgorithm.SHA512.digest(ts_hash_chain_result))
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<asic:ASiCManifest xmlns:asic="{_NS_ASIC_MANIFEST}" xmlns:ds="{_NS_DS}">\n'
        f'<asic:SigReference URI="{Entry.TIMESTAMP}" '
        'MimeType="vnd.etsi.timestamp-token"/>\n'
        f'<asic:DataObjectReference URI="{Entry.TS_HASH_CHAIN_RESULT}" '
        'MimeType="text/xml">\n'
        f'<ds:DigestMethod Algorithm="{DigestAlgorithm.SHA512.value}" />\n'
        f"<ds:DigestValue>{digest.decode()}</ds:DigestValue>\n"
        "</asic:DataObjectReference>\n"
        "</asic:ASiCManifest>"
    ).encode()


def build_asic_container(
    *,
    message: bytes,
    signature: bytes,
    attachments: Sequence[bytes] = (),
    hash_chain: bytes | None = None,
    hash_chain_result: bytes | None = None,
    timestamp: bytes | None = None,
    ts_hash_chain: bytes | None = None,
    ts_hash_chain_result: bytes | None = None,
) -> bytes:
    """Build the ASiC-E container of one logged message, deterministically.

    With ``timestamp`` and no ts hash chain the token is a single time-stamp
    and is embedded into the signature (``xades:SignatureTimeStamp``); with
    the ts hash chain it is a batch time-stamp written as
    ``META-INF/timestamp.tst`` with an ``ASiCManifest.xml``.

    Args:
        message: the logged message bytes (SOAP, or the REST header part).
        signature: the signature XML as logged.
        attachments: REST bodies, written as ``attachment1`` ...
        hash_chain, hash_chain_result: the batch-signature files, or None.
        timestamp: the DER TimeStampToken, or None (unstamped container).
        ts_hash_chain, ts_hash_chain_result: the batch time-stamp files.

    Returns:
        The container bytes.

    Raises:
        ValueError: half a hash chain, or a ts hash chain without a token.
        MalformedMessage: ``MalformedSignature``: the signature XML cannot
            take a single time-stamp (e.g. it already holds one).
    """
    if (hash_chain is None) != (hash_chain_result is None):
        raise ValueError("give both hash_chain and hash_chain_result, or neither")
    if (ts_hash_chain is None) != (ts_hash_chain_result is None):
        raise ValueError("give both ts_hash_chain and ts_hash_chain_result")
    if ts_hash_chain is not None and timestamp is None:
        raise ValueError("a ts hash chain needs its time-stamp token")
    batch_ts = ts_hash_chain is not None and ts_hash_chain_result is not None
    if timestamp is not None and not batch_ts:
        signature = embed_signature_timestamp(signature, timestamp)
    # X-Road's write order (asic-valid-non-batch-rest.asice): message,
    # signature, chain files, manifests, token, then the attachments.
    listed: list[tuple[str, bytes, str]] = [(Entry.MESSAGE, message, "text/xml")]
    if hash_chain is not None and hash_chain_result is not None:
        listed.append((Entry.SIG_HASH_CHAIN_RESULT, hash_chain_result, "text/xml"))
        listed.append((Entry.SIG_HASH_CHAIN, hash_chain, "text/xml"))
    if batch_ts and ts_hash_chain is not None and ts_hash_chain_result is not None:
        listed.append((Entry.TS_HASH_CHAIN_RESULT, ts_hash_chain_result, "text/xml"))
        listed.append((Entry.TS_HASH_CHAIN, ts_hash_chain, "text/xml"))
    bodies = [
        (f"attachment{i}", body, "application/octet-stream")
        for i, body in enumerate(attachments, start=1)
    ]
    out: list[tuple[str, bytes, bool]] = [
        (Entry.MIMETYPE, ASIC_MIMETYPE.encode(), True),
        (Entry.MESSAGE, message, False),
        (Entry.SIGNATURE, signature, False),
        *((name, data, False) for name, data, _ in listed[1:]),
        (Entry.MANIFEST, _manifest([(n, m) for n, _, m in listed + bodies]), False),
    ]
    if batch_ts and timestamp is not None and ts_hash_chain_result is not None:
        out.append((Entry.ASIC_MANIFEST, _asic_manifest(ts_hash_chain_result), False))
        out.append((Entry.TIMESTAMP, timestamp, False))
    out.extend((name, data, False) for name, data, _ in bodies)
    return write_zip(out, comment=f"mimetype={ASIC_MIMETYPE}".encode())
