"""Metadata store: engine, sessions, declarative base, and the one migration tree."""

from shipyard.db.base import Base
from shipyard.db.engine import Database
from shipyard.db.migrate import upgrade

__all__ = ["Base", "Database", "upgrade"]
