"""Storage shape of experiments, runs, params, metrics, tags and artifacts.

Times are integer milliseconds since the epoch. A NaN metric value is stored
as NULL (SQLite cannot hold NaN).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    literal_column,
)
from sqlalchemy.orm import Mapped, mapped_column

from shipyard.db.base import Base


class ExperimentRow(Base):
    __tablename__ = "experiments"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    lifecycle: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class ExperimentTagRow(Base):
    __tablename__ = "experiment_tags"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_experiment_lifecycle_start", "experiment_id", "lifecycle", "start_time"),
        # What the check for lost runs reads (tracking/liveness.py): running runs by
        # heartbeat. Not a partial index: its dialect options would import the
        # PostgreSQL dialect into every process, SQLite ones included.
        Index("ix_runs_status_heartbeat", "status", "heartbeat_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    parent_run_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(250))
    status: Mapped[str] = mapped_column(String(20))
    user: Mapped[str] = mapped_column(String(200))
    start_time: Mapped[int] = mapped_column(BigInteger)
    end_time: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    lifecycle: Mapped[str] = mapped_column(String(20), default="active")
    deleted_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    code_version: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    environment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # When the process logging into the run last said it was alive (the SDK's
    # heartbeat); None for runs no SDK process watches (the mlflow client's, say).
    heartbeat_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


VALUE_PREFIX = 100
"""How many leading characters of a param's or tag's value PostgreSQL indexes, with the
key (:func:`_value_prefix_index`): a whole value, up to 6,000 characters for a param
and unbounded for a tag, can be too long for a b-tree entry there (2,704 bytes)."""


def _value_prefix_index(name: str, table: Any) -> Index:
    """PostgreSQL's index on ``(key, left(value, VALUE_PREFIX))`` of ``table``, which a
    search's equality on a param or tag reaches (``tracking.search``) instead of reading
    every row of the table. SQLite has none: its search probes each candidate run's
    (run_id, key) key, and a whole-value index would only cost its writes."""
    prefix = func.left(table.c.value, literal_column(str(VALUE_PREFIX)))
    return Index(name, table.c.key, prefix).ddl_if(dialect="postgresql")


class ParamRow(Base):
    """A run's param. Search reaches params through the (run_id, key) key, and on
    PostgreSQL also through the key and the value's first characters (VALUE_PREFIX)."""

    __tablename__ = "params"
    __table_args__ = {"sqlite_with_rowid": False}  # see migration 0004

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(String(6000))


class RunTagRow(Base):
    __tablename__ = "run_tags"
    __table_args__ = {"sqlite_with_rowid": False}

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


_value_prefix_index("ix_params_key_value_prefix", ParamRow.__table__)
_value_prefix_index("ix_run_tags_key_value_prefix", RunTagRow.__table__)


class MetricRow(Base):
    """One point of a metric's history. Duplicated steps are allowed (as in MLflow).

    A point belongs to a series, one metric of one run: ``series_id`` is that
    series' ``latest_metrics.id`` (migration 0010). Before, each point carried the
    run's 32-character id and the key, and the history index was on (run_id, key,
    step): comparing strings on every index insert, in a table twice the size. A
    batch of 1,000 points on PostgreSQL cost 5.6 ms with them, 4.0 ms by series.

    No key of its own: a history is read by (series_id, step) and ordered by step,
    time, then value. A surrogate id cost PostgreSQL a sequence value and a unique
    index entry per point (migration 0005). The mapper's key below only satisfies
    the ORM, and is no constraint: the same point may be logged twice. Points are
    written and read with Core or the driver, never loaded as ORM objects (the
    identity map would merge equal points).
    """

    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_series_id_step", "series_id", "step"),)

    # No foreign key: PostgreSQL would check it for every point (the hot path). A
    # point's series is made or updated in the same transaction (the batch writes
    # latest_metrics first); a trigger deletes a series' points with it (migration
    # 0011), as when a run is deleted for good.
    series_id: Mapped[int] = mapped_column(BigInteger)
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)

    __mapper_args__ = {"primary_key": [series_id, step, timestamp]}


class LatestMetricRow(Base):
    """The last point of each metric of a run (highest step, then latest time): what
    search filters and orders by. A row is also the metric's series: its ``id`` is
    what the run's points of that key are stored under (``metrics.series_id``).

    ``id`` is an identity on PostgreSQL. SQLite has none outside the rowid, and this
    table keeps its (run_id, key) key as its layout (migration 0004), so writers
    there number new series from the highest id, under the write lock every SQLite
    write transaction takes first (``BEGIN IMMEDIATE``); the unique index makes that
    highest id one index probe.
    """

    __tablename__ = "latest_metrics"
    __table_args__ = (
        Index("ix_latest_metrics_key_value", "key", "value"),
        {"sqlite_with_rowid": False},
    )

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    id: Mapped[int] = mapped_column(BigInteger, Identity(), unique=True)


class RunSummaryRow(Base):
    """A run's params, tags and latest metrics as the text of three JSON objects (NULL
    where it has none), what a search returns of it; rebuilt from those tables whenever
    they change (tracking/summaries.py). Migration 0009 (PostgreSQL), 0012 and 0013
    (SQLite, where triggers on the three tables delete a run's summary whenever any
    process writes them, and a rowid table: summaries of a few KB are common)."""

    __tablename__ = "run_summaries"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    params: Mapped[str | None] = mapped_column(Text, nullable=True)
    tags: Mapped[str | None] = mapped_column(Text, nullable=True)
    metrics: Mapped[str | None] = mapped_column(Text, nullable=True)


class ArtifactRow(Base):
    """A file of a run: its path under the run and the blob that holds it."""

    __tablename__ = "artifacts"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(String(1000), primary_key=True)
    blob_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)


class LoggedModelRow(Base):
    """A logged model (MLflow 3's LoggedModel): a named set of files a run (usually)
    produced, with its own params and tags; registered model versions can be made
    from it. Ids are ``m-`` + 32 hex digits."""

    __tablename__ = "logged_models"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"), index=True)
    run_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(500))
    model_type: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    status_message: Mapped[str] = mapped_column(Text, default="")
    lifecycle: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class LoggedModelTagRow(Base):
    __tablename__ = "logged_model_tags"

    model_id: Mapped[str] = mapped_column(
        ForeignKey("logged_models.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class LoggedModelParamRow(Base):
    __tablename__ = "logged_model_params"

    model_id: Mapped[str] = mapped_column(
        ForeignKey("logged_models.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(String(6000))


class LoggedModelFileRow(Base):
    """A file of a logged model: its path under the model and the blob that holds it."""

    __tablename__ = "logged_model_files"

    model_id: Mapped[str] = mapped_column(
        ForeignKey("logged_models.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(1000), primary_key=True)
    blob_hash: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)


class RunOutputRow(Base):
    """A logged model a run produced (beyond the model's own source run), at a step."""

    __tablename__ = "run_outputs"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    model_id: Mapped[str] = mapped_column(
        ForeignKey("logged_models.id", ondelete="CASCADE"), primary_key=True
    )
    step: Mapped[int] = mapped_column(BigInteger, default=0)


MODEL_INPUT_SOURCE = "shipyard.logged_model"
"""``source_type`` of the run inputs that stand for a logged model a run read (MLflow
keeps those apart from its dataset inputs)."""


class RunInputRow(Base):
    """A dataset a run read: described by name and digest (MLflow's ``log_input``) and,
    once the dataset is a Shipyard dataset version, linked to it."""

    __tablename__ = "run_inputs"
    __table_args__ = (UniqueConstraint("run_id", "name", "digest", "context"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(500))
    digest: Mapped[str] = mapped_column(String(64))
    context: Mapped[str] = mapped_column(String(100), default="")
    source_type: Mapped[str] = mapped_column(String(100), default="")
    source: Mapped[str] = mapped_column(Text, default="")
    schema: Mapped[str] = mapped_column(Text, default="")
    profile: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dataset_version_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
