"""Storage shape of datasets: versions, their files, tags, parents, and the blobs a
project has stored for its datasets."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shipyard.db.base import Base


class DatasetRow(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # The ExpectationSuite (expectations + policy) as JSON.
    expectations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class DatasetVersionRow(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20), default="data")
    digest: Mapped[str] = mapped_column(String(64), index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(BigInteger)
    bytes: Mapped[int] = mapped_column(BigInteger)
    file_count: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    arrow_schema: Mapped[str] = mapped_column(Text, default="")
    profile: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Blob holding the mergeable profile state, so an append re-profiles only new rows.
    profile_state: Mapped[str | None] = mapped_column(String(64), nullable=True)
    validation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The parents as they were named when the version was made ({dataset, version,
    # digest, relation}; migration 0007): the edges below go with a deleted parent,
    # and lineage still names it, marked deleted. None for a version without parents.
    recorded_parents: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)


class DatasetFileRow(Base):
    __tablename__ = "dataset_files"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(1000), primary_key=True)
    # Where the file stands in its version's manifest (0, 1, ...; migration 0014): rows
    # are read in this order, so an append's files come after its parent's whatever
    # their names.
    position: Mapped[int] = mapped_column(Integer)
    blob_hash: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    rows: Mapped[int] = mapped_column(BigInteger)


class DatasetTagRow(Base):
    """A movable name for one version (``prod``); ``latest`` is not stored, it is derived."""

    __tablename__ = "dataset_tags"

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE"), index=True
    )


class DatasetParentRow(Base):
    """Lineage between versions: ``child`` was made from ``parent`` (any dataset of the
    same project)."""

    __tablename__ = "dataset_parents"

    child_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True
    )
    parent_id: Mapped[int] = mapped_column(
        ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    relation: Mapped[str] = mapped_column(String(20), default="derived")


class DatasetBlobRow(Base):
    """A blob this project stored for its datasets. A version may only name blobs of its
    own project: a hash known from elsewhere grants nothing."""

    __tablename__ = "dataset_blobs"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    blob_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
