"""Parse an ``OCSPRequest`` (RFC 6960 §4.1) into the queries the responder answers.

Pure and strict: bytes in, a frozen :class:`OcspRequest` out, or
:class:`~jplink.errors.MalformedMessage` (the handler answers
``malformedRequest``). Each CertID keeps its exact DER so the response can
echo it byte for byte, whatever parameters encoding the client chose.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from jplink.errors import MalformedMessage

from . import _der
from ._der import BOOLEAN, INTEGER, OCTET_STRING, OID, SEQUENCE

__all__ = ["CertIdHash", "CertQuery", "OcspRequest", "parse_ocsp_request"]


class CertIdHash(enum.Enum):
    """CertID hash algorithms; the value is the dotted OID."""

    SHA1 = "1.3.14.3.2.26"
    SHA224 = "2.16.840.1.101.3.4.2.4"
    SHA256 = "2.16.840.1.101.3.4.2.1"
    SHA384 = "2.16.840.1.101.3.4.2.2"
    SHA512 = "2.16.840.1.101.3.4.2.3"

    @property
    def digest_size(self) -> int:
        return _DIGEST_SIZES[self]


_DIGEST_SIZES = {
    CertIdHash.SHA1: 20,
    CertIdHash.SHA224: 28,
    CertIdHash.SHA256: 32,
    CertIdHash.SHA384: 48,
    CertIdHash.SHA512: 64,
}


def _oid_content(dotted: str) -> bytes:
    arcs = [int(part) for part in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


#: OID content octets -> algorithm, so parsing never decodes OIDs.
_HASH_BY_OID = {_oid_content(h.value): h for h in CertIdHash}
#: id-pkix-ocsp-nonce (RFC 6960 §4.4.1).
NONCE_OID = _oid_content("1.3.6.1.5.5.7.48.1.2")
#: RFC 9654 §2.1: "Nonce ::= OCTET STRING(SIZE(1..128))".
MAX_NONCE_OCTETS = 128


@dataclass(frozen=True, slots=True)
class CertQuery:
    """One ``Request``'s CertID (RFC 6960 §4.1.1)."""

    hash_algorithm: CertIdHash
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial_number: int
    #: The CertID exactly as received, echoed in the SingleResponse.
    cert_id_der: bytes


@dataclass(frozen=True, slots=True)
class OcspRequest:
    """The parts of an OCSP request the responder acts on."""

    queries: tuple[CertQuery, ...]
    #: The nonce value, when the request carries one.
    nonce: bytes | None = None
    #: The whole nonce ``Extension`` as received, echoed in the response.
    nonce_extension: bytes | None = None


def _bad(why: str) -> MalformedMessage:
    return MalformedMessage(f"Malformed OCSP request: {why}")


def _expect(item: _der.Tlv, tag: int, what: str) -> _der.Tlv:
    if item[0] != tag:
        raise _bad(f"expected {what}")
    return item


def parse_ocsp_request(der: bytes) -> OcspRequest:
    """Parse DER ``OCSPRequest`` bytes.

    A request signature (``optionalSignature``) is accepted and ignored: this
    responder does not require signed requests, and anyone may ask.

    Args:
        der: the request body.

    Returns:
        The queries in request order, and the nonce if any.

    Raises:
        MalformedMessage: not DER, not an OCSPRequest, an unknown CertID hash
            algorithm, an unknown critical extension, or a bad nonce.
    """
    data = bytes(der)
    outer = _expect(_der.read_tlv(data, 0, len(data)), SEQUENCE, "OCSPRequest")
    if outer[3] != len(data):
        raise _bad("trailing data after the request")
    parts = _der.read_all(data, outer[2], outer[3])
    if not parts or len(parts) > 2:
        raise _bad("OCSPRequest has a wrong number of fields")
    if len(parts) == 2 and parts[1][0] != 0xA0:  # [0] EXPLICIT Signature
        raise _bad("unexpected field after tbsRequest")
    tbs = _expect(parts[0], SEQUENCE, "TBSRequest")
    fields = _der.read_all(data, tbs[2], tbs[3])
    index = 0
    if index < len(fields) and fields[index][0] == 0xA0:  # version [0] EXPLICIT
        _check_version(data, fields[index])
        index += 1
    if index < len(fields) and fields[index][0] == 0xA1:  # requestorName [1]
        index += 1
    if index >= len(fields):
        raise _bad("requestList is missing")
    request_list = _expect(fields[index], SEQUENCE, "requestList")
    index += 1
    nonce: bytes | None = None
    nonce_extension: bytes | None = None
    if index < len(fields) and fields[index][0] == 0xA2:  # requestExtensions [2]
        nonce, nonce_extension = _request_extensions(data, fields[index])
        index += 1
    if index != len(fields):
        raise _bad("unexpected field in TBSRequest")
    queries = tuple(
        _request(data, item)
        for item in _der.read_all(data, request_list[2], request_list[3])
    )
    if not queries:
        raise _bad("requestList is empty")
    return OcspRequest(queries=queries, nonce=nonce, nonce_extension=nonce_extension)


def _check_version(data: bytes, item: _der.Tlv) -> None:
    inner = _der.read_all(data, item[2], item[3])
    if len(inner) != 1 or inner[0][0] != INTEGER:
        raise _bad("bad version")
    if data[inner[0][2] : inner[0][3]] != b"\x00":
        raise _bad("unsupported request version (only v1)")


def _request(data: bytes, item: _der.Tlv) -> CertQuery:
    _expect(item, SEQUENCE, "Request")
    fields = _der.read_all(data, item[2], item[3])
    if not fields or len(fields) > 2:
        raise _bad("Request has a wrong number of fields")
    if len(fields) == 2:
        if fields[1][0] != 0xA0:  # singleRequestExtensions [0] EXPLICIT
            raise _bad("unexpected field in Request")
        # None is understood here, so only non-critical ones may appear.
        for oid, critical, _value, _whole in _extensions(data, fields[1]):
            if critical:
                raise _bad(f"unsupported critical extension {oid.hex()}")
    return _cert_id(data, _expect(fields[0], SEQUENCE, "CertID"))


def _cert_id(data: bytes, item: _der.Tlv) -> CertQuery:
    fields = _der.read_all(data, item[2], item[3])
    if len(fields) != 4:
        raise _bad("CertID has a wrong number of fields")
    algorithm, name_hash, key_hash, serial = fields
    _expect(algorithm, SEQUENCE, "hashAlgorithm")
    _expect(name_hash, OCTET_STRING, "issuerNameHash")
    _expect(key_hash, OCTET_STRING, "issuerKeyHash")
    _expect(serial, INTEGER, "serialNumber")
    hash_algorithm = _hash_algorithm(data, algorithm)
    size = hash_algorithm.digest_size
    if name_hash[3] - name_hash[2] != size or key_hash[3] - key_hash[2] != size:
        raise _bad("CertID hash lengths do not match the hash algorithm")
    serial_bytes = data[serial[2] : serial[3]]
    if not serial_bytes:
        raise _bad("empty serialNumber")
    return CertQuery(
        hash_algorithm=hash_algorithm,
        issuer_name_hash=data[name_hash[2] : name_hash[3]],
        issuer_key_hash=data[key_hash[2] : key_hash[3]],
        serial_number=int.from_bytes(serial_bytes, "big", signed=True),
        cert_id_der=data[item[1] : item[3]],
    )


def _hash_algorithm(data: bytes, item: _der.Tlv) -> CertIdHash:
    fields = _der.read_all(data, item[2], item[3])
    if not fields or fields[0][0] != OID:
        raise _bad("hashAlgorithm has no OID")
    found = _HASH_BY_OID.get(data[fields[0][2] : fields[0][3]])
    if found is None:
        raise _bad("unknown CertID hash algorithm")
    # Parameters are absent or NULL for every hash above (RFC 5754 §2).
    if len(fields) > 2 or (
        len(fields) == 2 and data[fields[1][1] : fields[1][3]] != b"\x05\x00"
    ):
        raise _bad("unexpected hash algorithm parameters")
    return found


def _request_extensions(
    data: bytes, item: _der.Tlv
) -> tuple[bytes | None, bytes | None]:
    nonce: bytes | None = None
    nonce_extension: bytes | None = None
    for oid, critical, value, whole in _extensions(data, item):
        if oid == NONCE_OID:
            if nonce is not None:
                raise _bad("duplicate nonce extension")
            nonce = _nonce_value(value)
            nonce_extension = whole
        elif critical:
            # RFC 5280 §4.2 (applied by RFC 6960 §4.4): an unrecognised
            # critical extension must not be silently ignored.
            raise _bad(f"unsupported critical extension {oid.hex()}")
    return nonce, nonce_extension


def _nonce_value(value: bytes) -> bytes:
    # RFC 9654 §2.1: "the extnValue is the DER encoding of an OCTET STRING
    # containing the nonce", and "Nonce ::= OCTET STRING(SIZE(1..128))".
    inner = _der.read_tlv(value, 0, len(value))
    if inner[0] != OCTET_STRING or inner[3] != len(value):
        raise _bad("nonce is not an OCTET STRING")
    nonce = value[inner[2] : inner[3]]
    if not 1 <= len(nonce) <= MAX_NONCE_OCTETS:
        raise _bad("nonce must have 1 to 128 octets")
    return nonce


def _extensions(data: bytes, item: _der.Tlv) -> list[tuple[bytes, bool, bytes, bytes]]:
    """``(oid content, critical, extnValue content, whole Extension DER)`` list."""
    inner = _der.read_all(data, item[2], item[3])
    if len(inner) != 1 or inner[0][0] != SEQUENCE:
        raise _bad("Extensions is not a SEQUENCE")
    result = []
    for ext in _der.read_all(data, inner[0][2], inner[0][3]):
        _expect(ext, SEQUENCE, "Extension")
        fields = _der.read_all(data, ext[2], ext[3])
        if len(fields) not in (2, 3) or fields[0][0] != OID:
            raise _bad("bad Extension")
        critical = False
        if len(fields) == 3:
            flag = _expect(fields[1], BOOLEAN, "critical")
            critical = data[flag[2] : flag[3]] == b"\xff"
        value = _expect(fields[-1], OCTET_STRING, "extnValue")
        result.append(
            (
                data[fields[0][2] : fields[0][3]],
                critical,
                data[value[2] : value[3]],
                data[ext[1] : ext[3]],
            )
        )
    return result
