"""The JP-LINK security server: configuration, storage, software token, admin services.

The modules here are the security server's service layer, shared by the
``jplink ss`` CLI now and the admin API and proxies later:

- :mod:`.config`: ``<home>/ss.toml``;
- :mod:`.models`, :mod:`.db`: tables and migrations;
- :mod:`.identity`: initialisation (anchor, owner, server code);
- :mod:`.softtoken`, :mod:`.keystore`: the PIN-protected software token;
- :mod:`.keys`, :mod:`.csrs`, :mod:`.certificates`: keys, CSRs, certificates;
- :mod:`.clients`, :mod:`.services`, :mod:`.local_groups`,
  :mod:`.access_rights`: clients, services and who may call them;
- :mod:`.audit`: the audit log every change writes to.
"""

from __future__ import annotations

from .config import SecurityServerConfig, load_ss_config
from .db import open_database

__all__ = ["SecurityServerConfig", "load_ss_config", "open_database"]
