"""XAdES qualifying properties of X-Road message signatures: build and read.

X-Road signs with the XAdES profile "signature/bdoc-1.0/ts" (PROTOCOLS.md
§6.1). The signed half (``xades:SignedProperties``) binds the signing time,
the signing certificate (digest plus issuer and serial) and the signature
policy; the unsigned half carries what a verifier needs offline: the OCSP
responses (``RevocationValues``), intermediate certificates
(``CertificateValues``) and, once the message log has time-stamped it, a
``SignatureTimeStamp``.

The element order, Ids and texts follow X-Road's ``SignatureXmlBuilder`` so
that a signature we make is byte-compatible with X-Road's own.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from jplink.errors import InvalidSignature, MalformedMessage
from jplink.ns import NS_DS, NS_XADES
from jplink.xml import parse_xml

from .c14n import MALFORMED_SIGNATURE, DigestAlgorithm, b64decode_text
from .certs import certificate_der

__all__ = [
    "SIGNED_PROPERTIES_TYPE",
    "XadesProperties",
    "build_qualifying_properties",
    "embed_signature_timestamp",
    "format_signing_time",
    "parse_signing_time",
    "read_qualifying_properties",
    "x509_issuer_name",
]

#: ``ds:Reference/@Type`` of the reference to ``xades:SignedProperties``.
SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"

# The signature policy X-Road declares (SignatureXmlBuilder): the
# "Profile for High Performance Digital Signatures" 1.2 and its SHA-512 hash.
_POLICY_ID = "urn:oid:1.3.6.1.4.1.3516.16.2"
_POLICY_DESCRIPTION = "Profile for High Performance Digital Signatures (version 1.2)"
_POLICY_SHA512 = (
    "BuO0EDNfkxSVlUbxCzmQPzX1AUF1/xx9ytWHk3/6SAOe"
    "PxQiniEfDYk+90QeYb3lWpV3Izhuz9fKaYyE+lTcXw=="
)
_POLICY_SPURI = "https://repo.cyber.ee/dsig-profile-1.2.pdf"

# Java's X500Principal.getName(RFC2253) knows only these keywords; every
# other attribute is written as <dotted OID>=#<hex of the DER value>.
_RFC2253_KEYWORDS = {
    "2.5.4.3": "CN",
    "2.5.4.6": "C",
    "2.5.4.7": "L",
    "2.5.4.8": "ST",
    "2.5.4.9": "STREET",
    "2.5.4.10": "O",
    "2.5.4.11": "OU",
    "0.9.2342.19200300.100.1.1": "UID",
    "0.9.2342.19200300.100.1.25": "DC",
}
_RFC2253_SPECIAL = re.compile(r'([,+"\\<>;])')
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
)


def _ds(tag: str) -> str:
    return f"{{{NS_DS}}}{tag}"


def _xades(tag: str) -> str:
    return f"{{{NS_XADES}}}{tag}"


def x509_issuer_name(cert: x509.Certificate) -> str:
    """The issuer DN as Java's ``X500Principal.getName()`` (RFC 2253) writes it.

    X-Road puts this string in ``ds:X509IssuerName``; matching it keeps our
    SignedProperties byte-identical to X-Road's.
    """
    tbs = asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))
    rdns = []
    for rdn in reversed(list(tbs["tbs_certificate"]["issuer"].chosen)):
        avas = []
        for ava in rdn:
            oid = ava["type"].dotted
            keyword = _RFC2253_KEYWORDS.get(oid)
            value = ava["value"]
            if keyword is None or not isinstance(value.native, str):
                avas.append(f"{oid}=#{value.dump().hex()}")
                continue
            text = _RFC2253_SPECIAL.sub(r"\\\1", value.native)
            if text.startswith(("#", " ")):
                text = "\\" + text
            if text.endswith(" ") and not text.endswith("\\ "):
                text = text[:-1] + "\\ "
            avas.append(f"{keyword}={text}")
        rdns.append("+".join(avas))
    return ",".join(rdns)


def format_signing_time(when: dt.datetime) -> str:
    """``xs:dateTime`` in UTC with milliseconds, as X-Road writes SigningTime."""
    if when.tzinfo is None:
        raise ValueError("signing_time must be timezone-aware")
    utc = when.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_signing_time(text: str | None) -> dt.datetime:
    """A ``xades:SigningTime`` text as an aware UTC datetime.

    Raises:
        MalformedMessage: ``MalformedSignature`` for anything else.
    """
    value = (text or "").strip()
    match = _DATETIME.match(value)
    if match is None:
        raise MalformedMessage(
            f"Invalid xades:SigningTime {value!r}", code=MALFORMED_SIGNATURE
        )
    fraction = match.group(1) or ""
    # fromisoformat accepts at most microseconds; cut longer fractions.
    base = value[: match.start(1)] if fraction else value[: match.start(2)]
    micro = fraction[:7].ljust(7, "0") if fraction else ""
    zone = "+00:00" if match.group(2) == "Z" else match.group(2)
    try:
        return dt.datetime.fromisoformat(base + micro + zone).astimezone(dt.UTC)
    except ValueError:  # the right shape, impossible values (month 13 ...)
        raise MalformedMessage(
            f"Invalid xades:SigningTime {value!r}", code=MALFORMED_SIGNATURE
        ) from None


def _digest_pair(
    parent: etree._Element, algorithm: DigestAlgorithm, value: str
) -> None:
    etree.SubElement(parent, _ds("DigestMethod"), Algorithm=algorithm.value)
    etree.SubElement(parent, _ds("DigestValue")).text = value


@functools.lru_cache(maxsize=256)
def _cert_identity(
    cert: x509.Certificate, alg: DigestAlgorithm
) -> tuple[str, str, str]:
    # A signer signs with the same certificate again and again; its digest
    # and RFC 2253 issuer name (an ASN.1 re-parse) are computed once.
    # Certificates are immutable and compare by their DER bytes, so the
    # cache can never hand out another certificate's identity.
    digest = base64.b64encode(alg.digest(cert.public_bytes(Encoding.DER))).decode()
    return digest, x509_issuer_name(cert), str(cert.serial_number)


def _cert_id(
    parent: etree._Element, cert: x509.Certificate, alg: DigestAlgorithm
) -> None:
    digest, issuer, serial_number = _cert_identity(cert, alg)
    _digest_pair(etree.SubElement(parent, _xades("CertDigest")), alg, digest)
    serial = etree.SubElement(parent, _xades("IssuerSerial"))
    etree.SubElement(serial, _ds("X509IssuerName")).text = issuer
    etree.SubElement(serial, _ds("X509SerialNumber")).text = serial_number


def build_qualifying_properties(
    obj: etree._Element,
    *,
    signature_id: str,
    signed_properties_id: str,
    data_objects: Sequence[tuple[str, str]],
    cert: x509.Certificate,
    digest_algorithm: DigestAlgorithm,
    signing_time: dt.datetime,
    ocsp_responses: Sequence[bytes] = (),
    extra_certificates: Sequence[x509.Certificate] = (),
) -> etree._Element:
    """Append ``xades:QualifyingProperties`` to a ``ds:Object``.

    Args:
        obj: the ``ds:Object`` element.
        signature_id: the ``ds:Signature/@Id`` the properties target.
        signed_properties_id: the Id of ``xades:SignedProperties``.
        data_objects: (reference Id, MIME type) per signed data reference.
        cert: the signing certificate.
        digest_algorithm: for the certificate digests.
        signing_time: the claimed signing time (timezone-aware).
        ocsp_responses: DER OCSP responses for the signing cert chain.
        extra_certificates: intermediate CA certificates to embed.

    Returns:
        The ``xades:SignedProperties`` element (to be digested).
    """
    qp = etree.SubElement(
        obj, _xades("QualifyingProperties"), Target="#" + signature_id
    )
    sp = etree.SubElement(qp, _xades("SignedProperties"), Id=signed_properties_id)
    ssp = etree.SubElement(sp, _xades("SignedSignatureProperties"))
    etree.SubElement(ssp, _xades("SigningTime")).text = format_signing_time(
        signing_time
    )
    signing_cert = etree.SubElement(ssp, _xades("SigningCertificate"))
    _cert_id(etree.SubElement(signing_cert, _xades("Cert")), cert, digest_algorithm)
    spi = etree.SubElement(ssp, _xades("SignaturePolicyIdentifier"))
    spid = etree.SubElement(spi, _xades("SignaturePolicyId"))
    sig_policy_id = etree.SubElement(spid, _xades("SigPolicyId"))
    ident = etree.SubElement(sig_policy_id, _xades("Identifier"), Qualifier="OIDAsURN")
    ident.text = _POLICY_ID
    etree.SubElement(sig_policy_id, _xades("Description")).text = _POLICY_DESCRIPTION
    policy_hash = etree.SubElement(spid, _xades("SigPolicyHash"))
    _digest_pair(policy_hash, DigestAlgorithm.SHA512, _POLICY_SHA512)
    qualifiers = etree.SubElement(spid, _xades("SigPolicyQualifiers"))
    qualifier = etree.SubElement(qualifiers, _xades("SigPolicyQualifier"))
    etree.SubElement(qualifier, _xades("SPURI")).text = _POLICY_SPURI
    sdop = etree.SubElement(sp, _xades("SignedDataObjectProperties"))
    for reference_id, mime_type in data_objects:
        dof = etree.SubElement(
            sdop, _xades("DataObjectFormat"), ObjectReference="#" + reference_id
        )
        etree.SubElement(dof, _xades("MimeType")).text = mime_type

    usp = etree.SubElement(
        etree.SubElement(qp, _xades("UnsignedProperties")),
        _xades("UnsignedSignatureProperties"),
    )
    if extra_certificates:
        refs = etree.SubElement(
            usp, _xades("CompleteCertificateRefs"), Id="complete-certificate-refs"
        )
        cert_refs = etree.SubElement(refs, _xades("CertRefs"))
        for i, extra in enumerate(extra_certificates, 1):
            ref = etree.SubElement(
                cert_refs, _xades("Cert"), URI=f"#encapsulated-cert-{i}"
            )
            _cert_id(ref, extra, digest_algorithm)
        values = etree.SubElement(usp, _xades("CertificateValues"))
        for i, extra in enumerate(extra_certificates, 1):
            enc = etree.SubElement(
                values,
                _xades("EncapsulatedX509Certificate"),
                Id=f"encapsulated-cert-{i}",
            )
            enc.text = base64.b64encode(certificate_der(extra)).decode()
    ocsp_values = etree.SubElement(
        etree.SubElement(usp, _xades("RevocationValues")), _xades("OCSPValues")
    )
    for i, der in enumerate(ocsp_responses, 1):
        enc = etree.SubElement(
            ocsp_values, _xades("EncapsulatedOCSPValue"), Id=f"ocsp-response-{i}"
        )
        enc.text = base64.b64encode(der).decode()
    return sp


@dataclass(frozen=True, slots=True)
class XadesProperties:
    """What the qualifying properties of a verified signature say.

    Attributes:
        signing_time: the signed ``xades:SigningTime`` (UTC).
        ocsp_responses: DER ``OCSPResponse`` values, in document order.
        certificates: DER certificates from ``CertificateValues``.
        timestamp_tokens: DER time-stamp tokens from ``SignatureTimeStamp``.
    """

    signing_time: dt.datetime
    ocsp_responses: tuple[bytes, ...]
    certificates: tuple[bytes, ...]
    timestamp_tokens: tuple[bytes, ...]


# Tags and paths read for every verified message, built once.
_SSP = _xades("SignedSignatureProperties")
_SIGNING_TIME = _xades("SigningTime")
_SIGNING_CERT = _xades("SigningCertificate")
_SIGNING_CERT_V2 = _xades("SigningCertificateV2")
_CERT = _xades("Cert")
_CERT_DIGEST = _xades("CertDigest")
_DS_DIGEST_METHOD = _ds("DigestMethod")
_DS_DIGEST_VALUE = _ds("DigestValue")
_SERIAL_PATH = f"{_xades('IssuerSerial')}/{_ds('X509SerialNumber')}"
_UNSIGNED_PATH = "/".join(
    _xades(t) for t in ("UnsignedProperties", "UnsignedSignatureProperties")
)
_OCSP_PATH = "/".join(
    _xades(t) for t in ("RevocationValues", "OCSPValues", "EncapsulatedOCSPValue")
)
_CERTS_PATH = f"{_xades('CertificateValues')}/{_xades('EncapsulatedX509Certificate')}"
_TOKENS_PATH = f"{_xades('SignatureTimeStamp')}/{_xades('EncapsulatedTimeStamp')}"


def _one(parent: etree._Element, tag: str, what: str) -> etree._Element:
    found = parent.findall(tag)
    if len(found) != 1:
        raise MalformedMessage(
            f"Expected exactly one {what}, found {len(found)}", code=MALFORMED_SIGNATURE
        )
    return found[0]


def read_qualifying_properties(
    signed_properties: etree._Element,
    *,
    signer_cert_der: bytes,
    accepted_digests: frozenset[DigestAlgorithm],
    signer_cert: x509.Certificate | None = None,
) -> XadesProperties:
    """Read and check the XAdES properties around a verified SignedProperties.

    The caller has already located ``signed_properties`` inside *its*
    signature and checked its digest. This checks that the signed
    SigningCertificate(V2) names the certificate in KeyInfo.

    Args:
        signed_properties: the ``xades:SignedProperties`` element.
        signer_cert_der: DER of the certificate in ``ds:KeyInfo``.
        accepted_digests: digest algorithms the policy accepts.
        signer_cert: that certificate, loaded (else loaded from the DER).

    Returns:
        The signing time and the embedded OCSP responses, certificates and
        time-stamp tokens.

    Raises:
        MalformedMessage: code ``MalformedSignature`` for missing elements,
            bad values or an unaccepted digest algorithm.
        InvalidSignature: the signed certificate digest does not match the
            KeyInfo certificate.
    """
    ssp = _one(signed_properties, _SSP, "SignedSignatureProperties")
    signing_time = parse_signing_time(_one(ssp, _SIGNING_TIME, "SigningTime").text)
    holders = ssp.findall(_SIGNING_CERT) + ssp.findall(_SIGNING_CERT_V2)
    if len(holders) != 1:
        raise MalformedMessage(
            "Expected exactly one xades:SigningCertificate(V2)",
            code=MALFORMED_SIGNATURE,
        )
    # XAdES (ETSI EN 319 132-1 §5.2.2): the first Cert element identifies the
    # signing certificate itself.
    first = holders[0].find(_CERT)
    if first is None:
        raise MalformedMessage(
            "SigningCertificate has no Cert", code=MALFORMED_SIGNATURE
        )
    cert_digest = _one(first, _CERT_DIGEST, "CertDigest")
    method = _one(cert_digest, _DS_DIGEST_METHOD, "CertDigest/DigestMethod")
    algorithm = DigestAlgorithm.from_uri(method.get("Algorithm"))
    if algorithm not in accepted_digests:
        raise MalformedMessage(
            f"Digest algorithm {algorithm.value} is not accepted",
            code=MALFORMED_SIGNATURE,
        )
    value = b64decode_text(
        _one(cert_digest, _DS_DIGEST_VALUE, "CertDigest/DigestValue").text,
        "CertDigest",
    )
    if value != algorithm.digest(signer_cert_der):
        raise InvalidSignature(
            "The signed SigningCertificate digest does not match the KeyInfo "
            "certificate"
        )
    serial = first.find(_SERIAL_PATH)
    if serial is not None:
        cert = signer_cert or x509.load_der_x509_certificate(signer_cert_der)
        if (serial.text or "").strip() != str(cert.serial_number):
            raise InvalidSignature(
                "The signed IssuerSerial does not match the KeyInfo certificate"
            )

    qp = signed_properties.getparent()
    unsigned = [] if qp is None else qp.findall(_UNSIGNED_PATH)
    ocsp: list[bytes] = []
    certs: list[bytes] = []
    tokens: list[bytes] = []
    for usp in unsigned:
        for el in usp.iterfind(_OCSP_PATH):
            ocsp.append(b64decode_text(el.text, "EncapsulatedOCSPValue"))
        for el in usp.iterfind(_CERTS_PATH):
            certs.append(b64decode_text(el.text, "EncapsulatedX509Certificate"))
        for el in usp.iterfind(_TOKENS_PATH):
            tokens.append(b64decode_text(el.text, "EncapsulatedTimeStamp"))
    return XadesProperties(signing_time, tuple(ocsp), tuple(certs), tuple(tokens))


_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>'


def embed_signature_timestamp(signature_xml: bytes, token_der: bytes) -> bytes:
    """Insert a single time-stamp into a signature, as X-Road's message log does.

    The token becomes ``xades:SignatureTimeStamp/xades:EncapsulatedTimeStamp``,
    the first child of ``xades:UnsignedSignatureProperties`` (PROTOCOLS.md
    §12.2). That is outside SignedInfo, so the signature stays valid; the
    document is re-serialised, so its hash (X-Road's ``signaturehash``)
    changes.

    Args:
        signature_xml: a signature document without a time-stamp.
        token_der: the DER TimeStampToken over the raw SignatureValue.

    Returns:
        The new signature document bytes.

    Raises:
        MalformedMessage: ``MalformedSignature`` when the document has no
            single UnsignedSignatureProperties or already holds a time-stamp.
        XmlSecurityError: the document is not acceptable XML.
    """
    root = parse_xml(signature_xml)
    found = list(root.iter(_xades("UnsignedSignatureProperties")))
    if len(found) != 1:
        raise MalformedMessage(
            "Expected exactly one xades:UnsignedSignatureProperties",
            code=MALFORMED_SIGNATURE,
        )
    usp = found[0]
    if usp.find(_xades("SignatureTimeStamp")) is not None:
        raise MalformedMessage(
            "The signature already holds a SignatureTimeStamp",
            code=MALFORMED_SIGNATURE,
        )
    holder = etree.Element(_xades("SignatureTimeStamp"))
    etree.SubElement(holder, _xades("EncapsulatedTimeStamp")).text = base64.b64encode(
        token_der
    ).decode("ascii")
    usp.insert(0, holder)
    return _XML_DECLARATION + etree.tostring(
        root, encoding="UTF-8", xml_declaration=False
    )
