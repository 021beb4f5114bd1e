"""Declarative base shared by every domain's tables (one metadata, one migration tree)."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every table; rows are storage shapes, not API shapes."""

    metadata = MetaData(naming_convention=NAMING)


def all_tables() -> MetaData:
    """Import every domain's tables and return the shared metadata."""
    from shipyard.auth import tables as _auth  # noqa: F401
    from shipyard.datasets import tables as _datasets  # noqa: F401
    from shipyard.projects import tables as _projects  # noqa: F401
    from shipyard.registry import tables as _registry  # noqa: F401
    from shipyard.tracking import tables as _tracking  # noqa: F401

    return Base.metadata
