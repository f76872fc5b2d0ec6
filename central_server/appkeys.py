"""Typed aiohttp application and request keys of the central server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from aiohttp import web

from jplink.clients.ca import CaEnrolmentClient
from jplink.clients.ocsp import OcspClient
from jplink.storage import Database

from .apikeys import Principal
from .config import CentralConfig

__all__ = ["CA_CLIENT", "CLOCK", "CONFIG", "DATABASE", "OCSP_CLIENT", "PRINCIPAL"]

CONFIG = web.AppKey("config", CentralConfig)
DATABASE = web.AppKey("database", Database)
#: The CA enrolment client; absent when no CA is configured.
CA_CLIENT: web.AppKey[CaEnrolmentClient] = web.AppKey("ca_client")
#: The OCSP transport used to check auth certificates at registration.
OCSP_CLIENT: web.AppKey[OcspClient] = web.AppKey("ocsp_client")
#: The time source (tests pin it).
CLOCK: web.AppKey[Callable[[], dt.datetime]] = web.AppKey("clock")
#: The authenticated caller of an admin request.
PRINCIPAL = web.RequestKey("principal", Principal)
