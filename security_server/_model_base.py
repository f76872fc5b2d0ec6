"""The declarative base and column types shared by the security server's models."""

from __future__ import annotations

from sqlalchemy import BigInteger, DateTime, Integer
from sqlalchemy.orm import DeclarativeBase

__all__ = ["BIGID", "CODE_LEN", "ID_LEN", "TIMESTAMP", "Base"]

#: Text form of the longest identifier (several 255-character parts).
ID_LEN = 600
#: Codes, names and file names.
CODE_LEN = 255
TIMESTAMP = DateTime(timezone=True)
#: 64-bit ids on PostgreSQL; SQLite only auto-increments INTEGER PRIMARY KEY.
BIGID = BigInteger().with_variant(Integer, "sqlite")


class Base(DeclarativeBase):
    """Declarative base of every security-server table."""
