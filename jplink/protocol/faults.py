"""SOAP 1.1 faults in X-Road style: build, parse, and map errors to faults.

X-Road answers technical errors with (PROTOCOLS.md §3)::

    <SOAP-ENV:Fault><faultcode>Server.ClientProxy.InvalidSignatureValue</faultcode>
      <faultstring>text</faultstring>[<faultactor>..</faultactor>]
      <detail><faultDetail xmlns="">id-for-log-correlation</faultDetail></detail>
    </SOAP-ENV:Fault>

A received fault is a :class:`jplink.errors.SoapFault`, which is both an
exception and the wire object (code, string, actor, detail).
"""

from __future__ import annotations

from lxml import etree

from ..errors import JPLinkError, MalformedMessage, SoapFault
from ..ns import NS_SOAP_ENV
from ..xml import parse_xml, serialize_xml

__all__ = [
    "FAULT_TAG",
    "build_fault",
    "fault_from_element",
    "fault_from_error",
    "parse_fault",
]

#: Clark name of the SOAP 1.1 Fault element.
FAULT_TAG = f"{{{NS_SOAP_ENV}}}Fault"


def build_fault(
    code: str, string: str, *, actor: str | None = None, detail: str | None = None
) -> bytes:
    """Build a SOAP 1.1 fault envelope.

    Args:
        code: the full fault code, e.g. ``Server.ClientProxy.InvalidSignatureValue``.
        string: the human-readable reason.
        actor: optional ``faultactor``.
        detail: optional ``faultDetail`` text (X-Road puts an id there for log
            correlation).

    Returns:
        The UTF-8 envelope bytes with an XML declaration.

    Raises:
        ValueError: for an empty fault code.
    """
    if not code:
        raise ValueError("a fault needs a faultcode")
    envelope = etree.Element(
        f"{{{NS_SOAP_ENV}}}Envelope", nsmap={"SOAP-ENV": NS_SOAP_ENV}
    )
    fault = etree.SubElement(
        etree.SubElement(envelope, f"{{{NS_SOAP_ENV}}}Body"), FAULT_TAG
    )
    # SOAP 1.1 §4.4: the Fault's children are unqualified.
    etree.SubElement(fault, "faultcode").text = code
    etree.SubElement(fault, "faultstring").text = string
    if actor is not None:
        etree.SubElement(fault, "faultactor").text = actor
    if detail is not None:
        etree.SubElement(etree.SubElement(fault, "detail"), "faultDetail").text = detail
    return serialize_xml(envelope)


def fault_from_error(
    err: JPLinkError, prefix: str, *, detail: str | None = None
) -> bytes:
    """Render an error as an X-Road fault.

    A :class:`SoapFault` received from a peer is passed on with its own code
    (it already carries a prefix); any other error gets ``prefix.code``.

    Args:
        err: the error.
        prefix: ``Server.ClientProxy``, ``Server.ServerProxy``, ``Client`` ...
        detail: the ``faultDetail`` text (e.g. a log-correlation id).

    Returns:
        The fault envelope bytes.
    """
    if isinstance(err, SoapFault):
        return build_fault(
            err.faultcode,
            err.faultstring,
            actor=err.faultactor,
            detail=detail if detail is not None else err.faultdetail,
        )
    return build_fault(err.with_prefix(prefix), err.message, detail=detail)


def _child_text(fault: etree._Element, name: str) -> str | None:
    for child in fault:
        if isinstance(child.tag, str) and etree.QName(child).localname == name:
            return "".join(child.itertext())
    return None


def fault_from_element(fault: etree._Element) -> SoapFault:
    """Read a ``SOAP-ENV:Fault`` element.

    Args:
        fault: the element.

    Returns:
        The fault as a :class:`SoapFault` (not raised).

    Raises:
        MalformedMessage: if ``faultcode`` or ``faultstring`` is missing.
    """
    code = _child_text(fault, "faultcode")
    string = _child_text(fault, "faultstring")
    if not code or string is None:
        raise MalformedMessage("SOAP fault without faultcode or faultstring")
    detail = None
    for child in fault:
        if isinstance(child.tag, str) and etree.QName(child).localname == "detail":
            inner = _child_text(child, "faultDetail")
            detail = inner if inner is not None else "".join(child.itertext()).strip()
    return SoapFault(
        code.strip(),
        string,
        faultactor=_child_text(fault, "faultactor"),
        faultdetail=detail,
    )


def parse_fault(data: bytes) -> SoapFault:
    """Parse a fault envelope received from the wire.

    Args:
        data: the envelope bytes.

    Returns:
        The fault (not raised).

    Raises:
        XmlSecurityError: for unsafe or malformed XML.
        MalformedMessage: if the document is not a SOAP 1.1 fault envelope.
    """
    root = parse_xml(data)
    body = root.find(f"{{{NS_SOAP_ENV}}}Body")
    if root.tag != f"{{{NS_SOAP_ENV}}}Envelope" or body is None:
        raise MalformedMessage("Not a SOAP 1.1 envelope")
    fault = body.find(FAULT_TAG)
    if fault is None:
        raise MalformedMessage("The SOAP body holds no Fault")
    return fault_from_element(fault)
