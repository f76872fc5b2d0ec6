"""The security server's administration roles (X-Road UG-SS §2.1).

X-Road defines these user roles for a security server, and the admin API
binds each API key to one or more of them:

- *security officer*: "responsible for the application of the security
  policy and security requirements, including the management of key
  settings, keys, and certificates" (token, keys, CSRs, certificates,
  initialisation, audit log);
- *registration officer*: "responsible for the registration and removal of
  security server clients" (clients, signing keys and certificates for them,
  registration requests);
- *service administrator*: "manages the data of and access rights to
  services" (service descriptions, services, access rights, local groups);
- *system administrator*: "responsible for the installation, configuration,
  and maintenance of the security server" (anchor, global configuration,
  diagnostics, API keys, audit log);
- *auditor*: X-Road's *security server observer*, who "can view the status
  of the security server without having access rights to edit the
  configuration" (read-only views).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from jplink.errors import InvalidRequest

__all__ = ["ALL_ROLES", "Role", "parse_roles", "roles_text"]


class Role(enum.Enum):
    """An admin role; the value is the word used by the API, CLI and database."""

    SECURITY_OFFICER = "security-officer"
    REGISTRATION_OFFICER = "registration-officer"
    SERVICE_ADMINISTRATOR = "service-administrator"
    SYSTEM_ADMINISTRATOR = "system-administrator"
    AUDITOR = "auditor"


#: Every role.
ALL_ROLES: frozenset[Role] = frozenset(Role)


def parse_roles(words: Iterable[object]) -> frozenset[Role]:
    """Role words (``security-officer`` ...) -> roles.

    Args:
        words: the words as given by a caller (untrusted).

    Returns:
        The roles, at least one.

    Raises:
        InvalidRequest: code ``InvalidRole`` for an unknown word, a non-string
            or an empty list.
    """
    roles: set[Role] = set()
    for word in words:
        try:
            roles.add(Role(word))
        except ValueError:
            known = ", ".join(r.value for r in Role)
            raise InvalidRequest(
                f"Unknown role {word!r}; use one of {known}", code="InvalidRole"
            ) from None
    if not roles:
        raise InvalidRequest("Give at least one role", code="InvalidRole")
    return frozenset(roles)


def roles_text(roles: Iterable[Role]) -> str:
    """The stored form: the role words, sorted, space-separated."""
    return " ".join(sorted(r.value for r in roles))
