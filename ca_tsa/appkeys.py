"""Typed aiohttp application keys shared by the CA, OCSP and TSA handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from jplink.storage import Database

from .config import CaTsaConfig

if TYPE_CHECKING:
    from .home import CaMaterial

__all__ = ["CONFIG", "DATABASE", "MATERIAL"]

CONFIG = web.AppKey("config", CaTsaConfig)
DATABASE = web.AppKey("database", Database)
MATERIAL: web.AppKey[CaMaterial] = web.AppKey("material")
