"""X-Road identifiers: clients, services, security servers and groups.

Every identifier is a frozen value object whose constructor validates each part,
so an instance that exists is always valid. Three forms are supported:

- objects (:class:`ClientId`, :class:`ServiceId`, :class:`SecurityServerId`,
  :class:`GlobalGroupId`, :class:`LocalGroupId`);
- the text form used in logs, ACLs and the admin UI
  (``SUBSYSTEM:JP/COM/1234/sub``, ``SERVICE:JP/COM/1234/sub/getData/v1``), via
  ``str(ident)`` and :func:`parse_identifier`;
- the XML form of ``http://x-road.eu/xsd/identifiers`` (PR-MESS Annex A), via
  :func:`identifier_to_xml` and :func:`identifier_from_xml`.

Allowed characters. X-Road's proxy (``checkIdentifier``) refuses an identifier
part containing an ISO control character (U+0000..U+001F, U+007F..U+009F),
``%``, ``:``, ``;``, ``/``, ``\\``, U+200B or U+FEFF. We apply that rule and,
failing closed, also refuse empty parts, leading or trailing whitespace, any
other non-printable character (``str.isprintable``) and parts longer than
:data:`MAX_PART_LENGTH`. Because ``:`` and ``/`` can never occur in a part, the
text form splits unambiguously. PR-REST §4.8 recommends the stricter set
``A-Z a-z 0-9 '()+,-.=?``; that is a recommendation for operators, not a check.

Text form of a service without a subsystem but with a version: the subsystem
segment is left empty (``SERVICE:JP/COM/1234//getData/v1``) so that five
segments always mean "with subsystem, without version" and every identifier
round-trips through its text.

The code lives in private modules by concept, every public name re-exported
here: ``_model`` (the objects and the character rule), ``_text`` (the text
form) and ``_xml`` (the XML form).
"""

from __future__ import annotations

from ._model import (
    MAX_PART_LENGTH,
    ClientId,
    GlobalGroupId,
    LocalGroupId,
    SecurityServerId,
    ServiceId,
    XRoadId,
    XRoadObjectType,
    validate_part,
)
from ._text import (
    parse_client_id,
    parse_identifier,
    parse_security_server_id,
    parse_service_id,
)
from ._xml import identifier_from_xml, identifier_to_xml

__all__ = [
    "MAX_PART_LENGTH",
    "ClientId",
    "GlobalGroupId",
    "LocalGroupId",
    "SecurityServerId",
    "ServiceId",
    "XRoadId",
    "XRoadObjectType",
    "identifier_from_xml",
    "identifier_to_xml",
    "parse_client_id",
    "parse_identifier",
    "parse_security_server_id",
    "parse_service_id",
    "validate_part",
]
