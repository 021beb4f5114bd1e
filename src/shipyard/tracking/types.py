"""API shapes of experiments and runs: what the routes accept and return."""

from __future__ import annotations

import math
import re
import sys
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from shipyard.errors import InvalidInput
from shipyard.int64 import INT64_MAX, INT64_MIN

LARGEST_DOUBLE = sys.float_info.max


def storable_metric(value: float | None) -> float | None:
    """A metric value as it is stored and sent: NaN as None (neither SQLite nor JSON
    has NaN), an infinity as the largest double of its sign (JSON has none), as
    MLflow stores them: it still sorts above every other value, and a filter such
    as ``metrics.loss > 1e300`` finds it."""
    if value is None or math.isfinite(value):
        return value
    if math.isnan(value):
        return None
    return math.copysign(LARGEST_DOUBLE, value)


RUN_STATUSES = ("running", "finished", "failed", "killed")
TERMINAL_STATUSES = frozenset({"finished", "failed", "killed"})
ACTIVE = "active"
DELETED = "deleted"

RunStatus = Literal["running", "finished", "failed", "killed"]
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_SEARCH_RESULTS = 10_000
MAX_DESCRIPTION_LENGTH = 10_000


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid param/metric/tag key, or None when it is."""
    if not key:
        return "must not be empty"
    if len(key) > MAX_KEY_LENGTH:
        return f"is longer than {MAX_KEY_LENGTH} characters"
    if key.startswith("/"):
        return "must not start with '/'"
    if ".." in key:
        return "must not contain '..'"
    return text_problem(key)


NUL_PROBLEM = "must not contain NUL characters (\\x00)"
"""PostgreSQL's text holds none, so neither backend takes them."""

SURROGATE_PROBLEM = "must not contain lone UTF-16 surrogates (\\ud800-\\udfff)"
"""JSON's ``"\\ud800"`` escape decodes to one; it is no character, and UTF-8 (so
either database) cannot encode it."""

_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """Why neither backend can store ``text``, or None when both can."""
    if "\x00" in text:
        return NUL_PROBLEM
    if not text.isascii() and _SURROGATE.search(text):
        return SURROGATE_PROBLEM
    return None


def _storable(text: str) -> str:
    problem = text_problem(text)
    if problem is not None:
        raise ValueError(problem)
    return text


StoredText = Annotated[str, AfterValidator(_storable)]
"""A string an API stores as text: anything but NUL and lone surrogates."""


def _shown(key: str) -> str:
    return repr(key if len(key) <= 60 else key[:60] + "...")


def check_keys(keys: Any, what: str) -> None:
    """Raise InvalidInput naming the first bad key of ``keys`` (any iterable of str)."""
    for key in keys:
        problem = key_problem(key)
        if problem is not None:
            raise InvalidInput(
                f"invalid {what} key {_shown(key)}: a key {problem}",
                {"key": key[:MAX_KEY_LENGTH]},
            )


def _valid_key(key: str) -> str:
    problem = key_problem(key)
    if problem is not None:
        raise ValueError(f"key {_shown(key)} {problem}")
    return key


Key = Annotated[str, AfterValidator(_valid_key)]
ParamValue = Annotated[StoredText, Field(max_length=MAX_PARAM_VALUE_LENGTH)]
TagValue = Annotated[StoredText, Field(max_length=MAX_TAG_VALUE_LENGTH)]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Time = Annotated[int, Field(ge=0, le=INT64_MAX)]
Id = Annotated[int, Field(ge=1, le=INT64_MAX)]
ExperimentName = Annotated[StoredText, Field(min_length=1, max_length=500, pattern=r"^\S(.*\S)?$")]


class _Input(BaseModel):
    # A misspelled field must fail loudly rather than be ignored.
    model_config = ConfigDict(extra="forbid")


# --- experiments ------------------------------------------------------------------------


class ExperimentCreate(_Input):
    """Input of experiment creation."""

    name: ExperimentName = Field(description="Unique in the project.")
    description: StoredText = Field(default="", max_length=MAX_DESCRIPTION_LENGTH)
    tags: dict[Key, TagValue] = Field(default_factory=dict)


class ExperimentUpdate(_Input):
    """Fields of an experiment that can change (None leaves a field as it is)."""

    name: ExperimentName | None = None
    description: StoredText | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)


class Experiment(BaseModel):
    """A named group of runs in a project."""

    id: int
    project_id: int
    name: str
    description: str
    lifecycle: str
    created_at: int
    updated_at: int
    tags: dict[str, str]


# --- runs -------------------------------------------------------------------------------


class RunCreate(_Input):
    """Input of run creation: one request can carry the run's first params and tags."""

    name: StoredText | None = Field(default=None, min_length=1, max_length=250)
    parent_run_id: str | None = Field(default=None, max_length=32)
    start_time: Time | None = None
    tags: dict[Key, TagValue] = Field(default_factory=dict)
    params: dict[Key, ParamValue] = Field(default_factory=dict)
    code_version: dict[str, Any] = Field(default_factory=dict)
    environment: dict[str, Any] = Field(default_factory=dict)


class RunUpdate(_Input):
    """Fields of a run that can change (None leaves a field as it is)."""

    status: RunStatus | None = None
    end_time: Time | None = None
    name: StoredText | None = Field(default=None, min_length=1, max_length=250)
    description: StoredText | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)


class Run(BaseModel):
    """A run with its params, tags and the latest value of each metric."""

    id: str
    experiment_id: int
    name: str
    status: str
    user: str
    start_time: int
    end_time: int | None
    parent_run_id: str | None
    lifecycle: str
    description: str
    params: dict[str, str]
    metrics: dict[str, float | None] = Field(description="Latest value of each metric.")
    tags: dict[str, str]
    code_version: dict[str, Any] = Field(
        default_factory=dict, description="Empty in search results; GET /runs/{id} has it."
    )
    environment: dict[str, Any] = Field(
        default_factory=dict, description="Empty in search results; GET /runs/{id} has it."
    )


class ColumnarMetrics(_Input):
    """Metric points as parallel lists (cheap to encode and validate).

    ``steps`` defaults to 0 and ``timestamps`` to the time of the request.
    NaN is stored as null; an infinity as the largest double of its sign
    (:func:`storable_metric`).
    """

    keys: list[str]
    values: list[float | None]
    steps: list[Int64] | None = None
    timestamps: list[Time] | None = None


class RunBatch(_Input):
    """What one ``POST /runs/{id}/batch`` logs, all or nothing.

    With ``status`` the same request then sets the run's status, as
    ``PATCH /runs/{id}`` would: a terminal status without ``end_time`` ends
    the run now. Flushing the last metrics and ending a run is one request.
    """

    params: dict[Key, ParamValue] = Field(default_factory=dict)
    tags: dict[Key, TagValue] = Field(default_factory=dict)
    metrics: ColumnarMetrics | None = None
    status: RunStatus | None = Field(
        default=None, description="Set the run's status after logging (e.g. finished)."
    )
    end_time: Time | None = Field(
        default=None, description="End time with ``status`` (default: now for a final status)."
    )


MAX_RUNS_PER_REQUEST = 1000


class RunRecord(RunCreate):
    """A whole run in one record (bulk creation, imports, sweeps): what run creation
    takes, plus its metric points and, for a run that is over, its final status."""

    metrics: ColumnarMetrics | None = None
    status: RunStatus = "running"
    end_time: Time | None = Field(
        default=None, description="End time of a finished run (default: now for a final status)."
    )


class RunsCreate(_Input):
    """Runs to create in one experiment, all or nothing."""

    runs: list[RunRecord] = Field(min_length=1, max_length=MAX_RUNS_PER_REQUEST)


class RunsCreated(BaseModel):
    """The ids of the created runs, in the order they were given."""

    run_ids: list[str]


class MetricHistory(BaseModel):
    """Every point of one metric of a run, ordered by step then time (columnar)."""

    key: str
    steps: list[int]
    values: list[float | None]
    timestamps: list[int]


class MetricSeries(BaseModel):
    """One metric of a run for a chart: downsampled (each bucket's lowest and highest
    point, in x order) when it has more points than asked for."""

    key: str
    x_axis: Literal["step", "time"]
    total: int = Field(description="How many points were logged (in the step window).")
    downsampled: bool
    x: list[int] = Field(description="Steps, or epoch milliseconds when x_axis is time.")
    y: list[float | None]


class RunSearch(_Input):
    """A search over a project's runs."""

    experiment_ids: list[Id] | None = Field(
        default=None, description="Only these experiments (default: all of the project)."
    )
    filter: str | None = Field(default=None, max_length=10_000)
    order_by: list[str] | None = Field(default=None, max_length=20)
    max_results: int = Field(default=100, ge=1, le=MAX_SEARCH_RESULTS)
    page_token: str | None = Field(default=None, max_length=200)
    include_deleted: bool = False


class RunPage(BaseModel):
    """One page of search results; pass ``next_page_token`` back for the next."""

    runs: list[Run]
    next_page_token: str | None
