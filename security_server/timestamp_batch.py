"""What one message-log time-stamp covers (PROTOCOLS.md §12.2), sans-IO.

- several records: the data is the bytes of the ts ``HashChainResult`` over
  their ``signaturehash`` values (:func:`hash_chain_data`), and each record
  keeps its own ``HashChain``;
- one record: "The timestamped data = the raw (decoded) bytes of
  ``ds:SignatureValue``" (:func:`signature_value_of`, X-Road's
  ``SingleTimestampRequest``).

Re-exported by :mod:`security_server.timestamper`.
"""

from __future__ import annotations

import base64
from collections.abc import Generator, Sequence
from dataclasses import dataclass

from jplink.errors import MalformedMessage
from jplink.ns import NS_DS
from jplink.security.c14n import DigestAlgorithm, b64decode_text
from jplink.security.hashchain import HashChainBatch, iter_build_hash_chains
from jplink.security.tsp import TimestampVerified
from jplink.xml import parse_xml

__all__ = [
    "TS_DATA_REF_URI",
    "TS_HASH_CHAIN_URI",
    "StampedBatch",
    "hash_chain_data",
    "signature_value_of",
]

#: PROTOCOLS.md §12.2: "The chain file is /ts-hashchain.xml; DataRef URI
#: /META-INF/signatures.xml".
TS_HASH_CHAIN_URI = "/ts-hashchain.xml"
TS_DATA_REF_URI = "/META-INF/signatures.xml"


@dataclass(frozen=True, slots=True)
class StampedBatch:
    """What one batch stored.

    Attributes:
        timestamp_id: the new ``message_timestamp`` row.
        record_ids: the records it covers, oldest first.
        token: the verified token.
        tsa_url: the TSA that answered.
        hash_chain_result: the ts chain result (None for a single record).
    """

    timestamp_id: int
    record_ids: tuple[int, ...]
    token: TimestampVerified
    tsa_url: str
    hash_chain_result: bytes | None


def signature_value_of(signature_xml: str) -> bytes:
    """The raw bytes of ``ds:SignatureValue`` (a single time-stamp's data).

    Raises:
        MalformedMessage: no SignatureValue, or invalid base64.
        XmlSecurityError: the document is not acceptable XML.
    """
    root = parse_xml(signature_xml.encode("utf-8"))
    value = next(root.iter(f"{{{NS_DS}}}SignatureValue"), None)
    if value is None:
        raise MalformedMessage("The logged signature has no ds:SignatureValue")
    return b64decode_text(value.text, "SignatureValue")


def hash_chain_data(
    signature_hashes: Sequence[str],
) -> Generator[None, None, tuple[bytes, Sequence[bytes | None]]]:
    """The ts hash chain over several records' ``signaturehash`` values, in
    steps (see :func:`jplink.security.hashchain.iter_build_hash_chains`).

    Args:
        signature_hashes: the records' base64 ``signaturehash``, oldest first.

    Returns:
        (The generator's value.) The ``HashChainResult`` bytes (the data to
        time-stamp, also stored) and one ``HashChain`` per record, in order.
    """
    batch: HashChainBatch = yield from iter_build_hash_chains(
        [[(TS_DATA_REF_URI, base64.b64decode(h))] for h in signature_hashes],
        digest_algorithm=DigestAlgorithm.SHA512,
        hash_chain_uri=TS_HASH_CHAIN_URI,
    )
    return batch.result, batch.chains
