"""RFC 3161 response and token parsing: untrusted DER in, typed values out.

Any ASN.1 error becomes a :class:`~jplink.errors.TimestampError`; nothing here
decides trust (that is :mod:`._tsp_verify`). Used by
:mod:`jplink.security.tsp`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509

from jplink.errors import TimestampError

from ._tsp_model import HashAlgorithm, MessageImprint

__all__ = [
    "PARSE_ERRORS",
    "ParsedToken",
    "TimeStampResp",
    "TstInfo",
    "load_asn1",
    "parse_token",
]

PARSE_ERRORS = (ValueError, TypeError, KeyError, OverflowError, AttributeError)


class TimeStampResp(core.Sequence):  # type: ignore[misc]
    """TimeStampResp with the token OPTIONAL, as RFC 3161 §2.4.2 defines it.

    (asn1crypto's ``tsp.TimeStampResp`` makes the token mandatory, so it
    cannot read rejections.)
    """

    _fields = [  # noqa: RUF012 - asn1crypto's spec attribute
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


@dataclass(frozen=True, slots=True)
class TstInfo:
    """The fields of a TSTInfo (RFC 3161 §2.4.2) that the checks use."""

    policy: str
    imprint: MessageImprint
    serial: int
    gen_time: dt.datetime
    accuracy: dt.timedelta | None
    nonce: int | None
    tsa_name: asn1_x509.GeneralName | None


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A TimeStampToken taken apart: TSTInfo, its DER, signer and certificates."""

    tst_info: TstInfo
    tst_der: bytes
    signer_info: cms.SignerInfo
    certificates: tuple[x509.Certificate, ...]


def load_asn1(
    spec: type[core.Asn1Value], der: bytes, what: str, *, values: bool = False
) -> core.Asn1Value:
    """Parse ``der`` strictly as ``spec``, every constructed field decoded.

    Args:
        spec: the ASN.1 type.
        der: the bytes.
        what: names the structure in the error message.
        values: also decode every primitive value (for a small structure
            whose fields are all read, and which is never re-encoded).

    Returns:
        Without ``values``, a fresh, lazily parsed value: its parts
        ``dump()`` their bytes as received.

    Raises:
        TimestampError: malformed DER (``what`` names it in the message).
    """
    data = bytes(der)
    try:
        # The whole structure is decoded once, on a copy, so that malformed
        # DER anywhere is refused here. Not with ``.native``: on a token
        # with an ESS SigningCertificateV2, filling in its DEFAULT fields
        # marks the tree as changed and asn1crypto re-encodes it over and
        # over (a 1.2 KB token took 45 ms, and 140 ms with the ``dump()``
        # after it); the recursive decode takes 0.3 ms. Primitive values are
        # checked where they are read (or here, with ``values``).
        checked = spec.load(data, strict=True)
        parse_all = getattr(checked, "_parse_children", None)
        if values or parse_all is None:
            checked.native  # noqa: B018 - decode every value
            return checked
        parse_all(recurse=True)
        value = spec.load(data, strict=True)
    except PARSE_ERRORS as exc:
        raise TimestampError(f"malformed {what}: {exc}") from exc
    return value


def parse_token(token_der: bytes) -> ParsedToken:
    """Take a TimeStampToken (CMS ContentInfo over a TSTInfo) apart.

    Raises:
        TimestampError: malformed, not SignedData over id-ct-TSTInfo, or not
            exactly one signer.
    """
    info = load_asn1(cms.ContentInfo, token_der, "TimeStampToken")
    try:
        if info["content_type"].native != "signed_data":
            raise TimestampError("a TimeStampToken must be a CMS SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        # "The content type ... MUST be id-ct-TSTInfo" (RFC 3161 §2.4.2).
        if encap["content_type"].native != "tst_info":
            raise TimestampError("the token's eContentType is not id-ct-TSTInfo")
        if isinstance(encap["content"], core.Void):
            raise TimestampError("the token has no TSTInfo content")
        tst_der = bytes(encap["content"])
        signer_infos = signed["signer_infos"]
        # "The time-stamp token MUST NOT contain any signatures other than
        # the signature of the TSA" (RFC 3161 §2.4.2).
        if len(signer_infos) != 1:
            raise TimestampError("a time-stamp token must have exactly one signer")
        certs = tuple(
            x509.load_der_x509_certificate(choice.chosen.dump())
            for choice in (signed["certificates"] or [])
            if choice.name == "certificate"
        )
        return ParsedToken(_parse_tst_info(tst_der), tst_der, signer_infos[0], certs)
    except PARSE_ERRORS as exc:
        raise TimestampError(f"malformed TimeStampToken: {exc}") from exc


def _parse_tst_info(tst_der: bytes) -> TstInfo:
    tst = load_asn1(tsp.TSTInfo, tst_der, "TSTInfo", values=True)
    if tst["version"].native != "v1":
        raise TimestampError("unsupported TSTInfo version")
    imprint = tst["message_imprint"]
    try:
        algorithm = HashAlgorithm(imprint["hash_algorithm"]["algorithm"].dotted)
    except ValueError:
        oid = imprint["hash_algorithm"]["algorithm"].dotted
        raise TimestampError(f"unsupported imprint algorithm {oid}") from None
    digest = imprint["hashed_message"].native
    if len(digest) != algorithm.digest_size:
        raise TimestampError("the imprint length does not fit its algorithm")
    gen_time = tst["gen_time"].native
    if gen_time.tzinfo is None:
        raise TimestampError("genTime without a time zone")
    accuracy = tst["accuracy"].native
    tsa = tst["tsa"]
    return TstInfo(
        policy=tst["policy"].dotted,
        imprint=MessageImprint(algorithm, digest),
        serial=tst["serial_number"].native,
        gen_time=gen_time.astimezone(dt.UTC),
        accuracy=None
        if accuracy is None
        else dt.timedelta(
            seconds=accuracy.get("seconds") or 0,
            milliseconds=accuracy.get("millis") or 0,
            microseconds=accuracy.get("micros") or 0,
        ),
        nonce=tst["nonce"].native,
        tsa_name=None if tsa.native is None else tsa,
    )
