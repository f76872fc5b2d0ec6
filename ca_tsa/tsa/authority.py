"""The time-stamping authority's pure core: query bytes in, TimeStampResp out.

:class:`TimestampAuthority` is built once from the TSA certificate and key;
everything that is the same in every token is encoded then (with asn1crypto),
so issuing a token costs one hash of the TSTInfo, one signature and a few
byte concatenations. The serial number and genTime are parameters: the HTTP
layer allocates serials (``serials.py``) and reads the clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from jplink.errors import ConfigurationError, InvalidRequest
from jplink.security.tsp import FailInfo, HashAlgorithm, PKIStatus

from . import _der
from .query import TimestampQuery, parse_timestamp_query

__all__ = ["TimestampAuthority", "build_rejection"]

_DER = serialization.Encoding.DER
_OID_MESSAGE_DIGEST = core.ObjectIdentifier("1.2.840.113549.1.9.4").dump()
_OID_TST_INFO = core.ObjectIdentifier("1.2.840.113549.1.9.16.1.4").dump()
_OID_SIGNED_DATA = core.ObjectIdentifier("1.2.840.113549.1.7.2").dump()
_STATUS_GRANTED = _der.tlv(0x30, _der.integer(PKIStatus.GRANTED))
_V1 = _der.integer(1)
_V3 = _der.integer(3)


def build_rejection(fail_info: FailInfo, text: str) -> bytes:
    """A TimeStampResp with status rejection, the failInfo bit and a text.

    Args:
        fail_info: the PKIFailureInfo bit to set (RFC 3161 §2.4.2).
        text: a short statusString for humans.

    Returns:
        The DER to send as ``application/timestamp-reply``.
    """
    status = tsp.PKIStatusInfo(
        {
            "status": "rejection",
            "status_string": [text],
            "fail_info": {fail_info.asn1_name},
        }
    )
    # asn1crypto's TimeStampResp wants a token, so the SEQUENCE is written here.
    return _der.tlv(0x30, status.dump())


def _signer_hash(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {256: "sha256", 384: "sha384"}.get(key.curve.key_size, "sha512")
    return "sha256"


@dataclass(frozen=True, slots=True)
class TimestampAuthority:
    """A TSA unit: certificate, key, policy and accuracy, with precomputed DER.

    Build it with :meth:`create`. Instances are immutable and safe to share.
    """

    policy_oid: str
    accuracy: dt.timedelta
    tsa_cert: x509.Certificate
    _key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = field(repr=False)
    _hash: str = field(repr=False)
    _parts: dict[str, bytes] = field(repr=False)
    _imprint_algs: dict[tuple[HashAlgorithm, bool], bytes] = field(repr=False)

    @classmethod
    def create(
        cls,
        *,
        tsa_cert: x509.Certificate,
        tsa_key: object,
        chain: tuple[x509.Certificate, ...] = (),
        policy_oid: str,
        accuracy_ms: int,
    ) -> TimestampAuthority:
        """Precompute every constant part of the responses.

        Args:
            tsa_cert: the TSA certificate (critical EKU timeStamping).
            tsa_key: its RSA or EC private key.
            chain: issuing CA first, root last; the non-root CAs are sent
                together with the TSA certificate when certReq is set.
            policy_oid: the policy put into every TSTInfo.
            accuracy_ms: the declared accuracy of genTime (0: none declared).

        Raises:
            ConfigurationError: unsupported key type, bad policy or accuracy.
        """
        if not isinstance(tsa_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ConfigurationError("the TSA key must be an RSA or EC key")
        if accuracy_ms < 0:
            raise ConfigurationError("tsa.accuracy_ms must not be negative")
        try:
            policy = core.ObjectIdentifier(policy_oid).dump()
        except ValueError as exc:
            raise ConfigurationError(f"tsa.policy_oid {policy_oid!r}: {exc}") from exc
        hash_name = _signer_hash(tsa_key)
        cert = asn1_x509.Certificate.load(tsa_cert.public_bytes(_DER))
        sig_alg = "rsa" if isinstance(tsa_key, rsa.RSAPrivateKey) else "ecdsa"
        parts = {
            "policy": policy,
            "accuracy": _accuracy(accuracy_ms),
            # tsa [0] GeneralName (explicit: GeneralName is a CHOICE).
            "tsa": _der.tlv(
                0xA0,
                asn1_x509.GeneralName(name="directory_name", value=cert.subject).dump(),
            ),
            "content_type_attr": cms.CMSAttribute(
                {"type": "content_type", "values": ["tst_info"]}
            ).dump(),
            "ess_attr": _ess_attribute(tsa_cert, cert),
            "signed_data_head": _V3
            + _der.tlv(0x31, algos.DigestAlgorithm({"algorithm": hash_name}).dump()),
            "signer_head": _V1
            + cms.IssuerAndSerialNumber(
                {"issuer": cert.issuer, "serial_number": cert.serial_number}
            ).dump()
            + algos.DigestAlgorithm({"algorithm": hash_name}).dump(),
            "signature_alg": algos.SignedDigestAlgorithm(
                {"algorithm": f"{hash_name}_{sig_alg}"}
            ).dump(),
            "certificates": _certificates(tsa_cert, chain),
        }
        imprint_algs = {
            (alg, null): _der.tlv(
                0x30,
                core.ObjectIdentifier(alg.value).dump()
                + (b"\x05\x00" if null else b""),
            )
            for alg in HashAlgorithm
            for null in (False, True)
        }
        return cls(
            policy_oid=policy_oid,
            accuracy=dt.timedelta(milliseconds=accuracy_ms),
            tsa_cert=tsa_cert,
            _key=tsa_key,
            _hash=hash_name,
            _parts=parts,
            _imprint_algs=imprint_algs,
        )

    def respond(self, der: bytes, *, serial: int, gen_time: dt.datetime) -> bytes:
        """Answer a request body; bad input gives a rejection, never an error.

        Args:
            der: the TimeStampReq as received.
            serial: the serial number for the token (unused on rejection).
            gen_time: the time to certify.

        Returns:
            A DER TimeStampResp (granted or rejection).
        """
        try:
            query = parse_timestamp_query(der, policy_oid=self.policy_oid)
        except InvalidRequest as exc:
            return build_rejection(exc.detail["fail_info"], exc.message)
        return self.issue(query, serial=serial, gen_time=gen_time)

    def issue(
        self, query: TimestampQuery, *, serial: int, gen_time: dt.datetime
    ) -> bytes:
        """Sign a time-stamp token for an accepted query.

        Args:
            query: a parsed request (:func:`parse_timestamp_query`).
            serial: a serial number never used before by this TSA.
            gen_time: the time to certify (aware; truncated to milliseconds).

        Returns:
            A granted DER TimeStampResp.
        """
        p = self._parts
        gen_time = gen_time.replace(microsecond=gen_time.microsecond // 1000 * 1000)
        tst_info = _der.tlv(
            0x30,
            _V1
            + p["policy"]
            + _der.tlv(
                0x30,
                self._imprint_algs[(query.algorithm, query.null_params)]
                + _der.octet_string(query.digest),
            )
            + _der.integer(serial)
            + _der.generalized_time(gen_time)
            + p["accuracy"]
            # "The nonce field MUST be present if it was present in the
            # TimeStampReq" (RFC 3161 §2.4.2).
            + (b"" if query.nonce is None else _der.integer(query.nonce))
            + p["tsa"],
        )
        digest = hashlib.new(self._hash, tst_info).digest()
        md_attr = _der.tlv(
            0x30, _OID_MESSAGE_DIGEST + _der.tlv(0x31, _der.octet_string(digest))
        )
        # DER SET OF: elements in ascending order of their encodings.
        attrs = b"".join(sorted((p["content_type_attr"], md_attr, p["ess_attr"])))
        signature = self._sign(_der.tlv(0x31, attrs))
        signer_info = _der.tlv(
            0x30,
            p["signer_head"]
            + _der.tlv(0xA0, attrs)
            + p["signature_alg"]
            + _der.octet_string(signature),
        )
        encap = _der.tlv(
            0x30, _OID_TST_INFO + _der.tlv(0xA0, _der.octet_string(tst_info))
        )
        # "If the certReq field is missing or if the certReq field is present
        # and set to false then the certificates field from the SignedData
        # structure MUST not be present in the response." (RFC 3161 §2.4.1)
        certificates = p["certificates"] if query.cert_req else b""
        signed_data = _der.tlv(
            0x30,
            p["signed_data_head"] + encap + certificates + _der.tlv(0x31, signer_info),
        )
        token = _der.tlv(0x30, _OID_SIGNED_DATA + _der.tlv(0xA0, signed_data))
        return _der.tlv(0x30, _STATUS_GRANTED + token)

    def _sign(self, data: bytes) -> bytes:
        algorithm = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}.get(
            self._hash, hashes.SHA512
        )()
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), algorithm)
        return self._key.sign(data, ec.ECDSA(algorithm))


def _accuracy(accuracy_ms: int) -> bytes:
    if accuracy_ms == 0:
        return b""
    seconds, millis = divmod(accuracy_ms, 1000)
    fields = {}
    if seconds:
        fields["seconds"] = seconds
    if millis:
        fields["millis"] = millis
    return bytes(tsp.Accuracy(fields).dump())


def _ess_attribute(tsa_cert: x509.Certificate, cert: asn1_x509.Certificate) -> bytes:
    # RFC 5816 §2.2.1: ESSCertIDv2 with SHA-256 (the DEFAULT, so omitted
    # from the DER) over the whole TSA certificate, plus issuerSerial.
    ess_id = {
        "hash_algorithm": {"algorithm": "sha256"},
        "cert_hash": hashlib.sha256(tsa_cert.public_bytes(_DER)).digest(),
        "issuer_serial": {
            "issuer": [asn1_x509.GeneralName(name="directory_name", value=cert.issuer)],
            "serial_number": cert.serial_number,
        },
    }
    attribute = cms.CMSAttribute(
        {"type": "signing_certificate_v2", "values": [{"certs": [ess_id]}]}
    )
    return bytes(attribute.dump())


def _certificates(
    tsa_cert: x509.Certificate, chain: tuple[x509.Certificate, ...]
) -> bytes:
    # The TSA certificate MUST be there when certReq is set; the
    # intermediate CAs help verifiers that only hold the root.
    certs = [tsa_cert, *(c for c in chain if c.issuer != c.subject)]
    encoded = sorted({c.public_bytes(_DER) for c in certs})
    return _der.tlv(0xA0, b"".join(encoded))  # [0] IMPLICIT SET OF
