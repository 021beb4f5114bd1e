"""API shapes of datasets: versions and their manifests, profiles, expectations,
validation reports, diffs and lineage. The contract every datasets module shares."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_serializer, field_validator, model_validator

from shipyard.errors import InvalidInput, NotFound

DATASET_NAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,198}[A-Za-z0-9_-])?$"
_TAG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")
LATEST = "latest"
"""The tag every dataset has: its newest version that is not a quarantine version.
It moves by itself on every ingest and cannot be set by hand."""

Policy = Literal["reject", "warn", "quarantine"]
VersionKind = Literal["data", "quarantine"]
ColumnKind = Literal["integer", "float", "boolean", "string", "temporal", "binary", "other"]


def check_dataset_name(name: str) -> str:
    """Refuse names outside :data:`DATASET_NAME_PATTERN` (no '/', '@', ':' or spaces)."""
    if not isinstance(name, str) or not re.match(DATASET_NAME_PATTERN, name):
        raise InvalidInput(
            f"invalid dataset name {str(name)[:120]!r}: use 1-200 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return name


def is_latest(name: str) -> bool:
    """Whether ``name`` selects the automatic :data:`LATEST` version: in any case, as
    people type it. Selectors and :func:`check_tag` share this one rule, so no tag can be
    set that a selector would never reach."""
    return name.lower() == LATEST


def own_version_not_found(exc: NotFound, ref: str) -> NotFound:
    """``exc`` (no such version of the dataset being made) for a parent named without
    ``@``, saying how another dataset's version is named: the name was likely meant so."""
    return NotFound(
        f"{exc.message} (a version of another dataset is written dataset@version, "
        f"e.g. {str(ref)[:100]}@latest)",
        exc.details,
    )


def check_tag(tag: str) -> str:
    """Refuse tag names that could be read as a version number, and the automatic one
    (in any case)."""
    if not isinstance(tag, str) or not _TAG_RE.match(tag):
        raise InvalidInput(
            f"invalid tag {str(tag)[:120]!r}: use 1-100 letters, digits, '_', '.' or '-', "
            "starting with a letter"
        )
    if is_latest(tag):
        raise InvalidInput(
            f"tag {tag!r} is reserved: {LATEST!r}, in any case, names the newest version "
            "and moves by itself",
            {"tag": tag},
        )
    return tag


# --- schema and files --------------------------------------------------------------------


class ColumnSchema(BaseModel):
    """One column of a version's Arrow schema."""

    name: str
    type: str  # Arrow's spelling: "int64", "double", "string", "timestamp[us, tz=UTC]", ...
    nullable: bool = True


class DataFile(BaseModel):
    """One Parquet file of a version: a blob of the store, by hash."""

    path: str  # name inside the version: "part-00000.parquet", or the source's relative path
    hash: str
    size: int = Field(ge=0)
    rows: int = Field(ge=0)


# --- profiles ----------------------------------------------------------------------------


class Histogram(BaseModel):
    """Counts of values between consecutive edges (len(edges) == len(counts) + 1)."""

    edges: list[float]
    counts: list[int]


class FrequentValue(BaseModel):
    value: Any
    count: int


class ColumnProfile(BaseModel):
    """What a column holds. Counts, nulls, min and max are exact; mean and std are exact
    for converted data and estimated from a sample for Parquet files stored as they are;
    distinct, quantiles, histogram and frequent values come from sketches. Whenever a
    figure is not exact, ``approximate`` says so. Infinite figures travel as the strings
    "Infinity"/"-Infinity" (JSON has no number for them), inside any model that holds
    the profile: a model's ``ser_json_inf_nan`` applies only where it is the root."""

    name: str
    type: str
    kind: ColumnKind
    count: int  # non-null values
    nulls: int
    null_fraction: float
    distinct: int | None = None
    min: Any = None  # numbers as numbers, temporals as ISO-8601 strings, strings as strings
    max: Any = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] | None = None  # "0.01", "0.05", "0.25", "0.5", "0.75", ...
    histogram: Histogram | None = None
    top_values: list[FrequentValue] = []
    approximate: bool = False

    @model_validator(mode="after")
    def _numbers_back(self) -> ColumnProfile:
        # min/max hold any type; only a float column's are read back from their names.
        if self.kind == "float":
            for field in ("min", "max"):
                value = getattr(self, field)
                if value in _NAMED_FLOATS:
                    setattr(self, field, float(value))
        return self

    @field_serializer("min", "max", "mean", "std", "quantiles", when_used="json")
    def _finite_or_named(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: _json_float(v) for key, v in value.items()}
        return _json_float(value)


_NAMED_FLOATS = ("Infinity", "-Infinity", "NaN")


def _json_float(value: Any) -> Any:
    """``value``, or for a float JSON cannot hold, the name pydantic reads back."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


class Profile(BaseModel):
    """The profile of a whole version, column by column."""

    rows: int
    columns: list[ColumnProfile]


# --- expectations ------------------------------------------------------------------------


class _Expectation(BaseModel):
    name: str = ""  # shown in reports; defaults to a description of the check


class SchemaExpectation(_Expectation):
    """These columns exist with these types (Arrow type names, or a kind such as
    "integer"); with ``exact`` no other column may exist."""

    kind: Literal["schema"] = "schema"
    columns: dict[str, str]
    exact: bool = False


class NotNullExpectation(_Expectation):
    kind: Literal["not_null"] = "not_null"
    column: str


class UniqueExpectation(_Expectation):
    """No two rows share the values of ``columns`` (nulls count as values)."""

    kind: Literal["unique"] = "unique"
    columns: list[str] = Field(min_length=1)


class RangeExpectation(_Expectation):
    """Non-null values lie in [min, max] (either bound may be left out)."""

    kind: Literal["range"] = "range"
    column: str
    min: float | str | None = None
    max: float | str | None = None


class AllowedValuesExpectation(_Expectation):
    kind: Literal["allowed_values"] = "allowed_values"
    column: str
    values: list[Any] = Field(min_length=1)

    @field_validator("values")
    @classmethod
    def _only_storable_ints(cls, values: list[Any]) -> list[Any]:
        # No column holds a wider int, and JSON on the way to the server has no room
        # for one: refused here with the value named, not as a crash of the encoder.
        for value in values:
            if isinstance(value, int) and not -(2**63) <= value < 2**64:
                raise ValueError(f"{value} is outside the 64-bit integers a column can hold")
        return values


class RegexExpectation(_Expectation):
    """Non-null string values match ``pattern`` (RE2 syntax, searched, not anchored)."""

    kind: Literal["regex"] = "regex"
    column: str
    pattern: str


class RowCountExpectation(_Expectation):
    kind: Literal["row_count"] = "row_count"
    min: int | None = Field(None, ge=0, lt=2**63)
    max: int | None = Field(None, ge=0, lt=2**63)


class FreshnessExpectation(_Expectation):
    """The newest value of a timestamp column is at most ``max_age_seconds`` old at ingest."""

    kind: Literal["freshness"] = "freshness"
    column: str
    max_age_seconds: float = Field(gt=0)


class ClassBalanceExpectation(_Expectation):
    """Every class of a label column holds at least ``min_fraction`` of the rows, and
    (when given) the largest class is at most ``max_ratio`` times the smallest."""

    kind: Literal["class_balance"] = "class_balance"
    column: str
    min_fraction: float = Field(0.0, ge=0, le=1)
    max_ratio: float | None = Field(None, ge=1)


class SqlExpectation(_Expectation):
    """Every row satisfies ``predicate``: a DuckDB boolean expression over the row's
    columns, e.g. ``"price >= 0 AND qty * price < 1e6"``."""

    kind: Literal["sql"] = "sql"
    predicate: str = Field(min_length=1, max_length=4000)


Expectation = Annotated[
    SchemaExpectation
    | NotNullExpectation
    | UniqueExpectation
    | RangeExpectation
    | AllowedValuesExpectation
    | RegexExpectation
    | RowCountExpectation
    | FreshnessExpectation
    | ClassBalanceExpectation
    | SqlExpectation,
    Field(discriminator="kind"),
]

ROW_LEVEL_KINDS = frozenset({"not_null", "range", "allowed_values", "regex", "sql"})
"""Expectations judged row by row: under the quarantine policy their failing rows move to
the quarantine version. The others judge the whole version."""


class ExpectationSuite(BaseModel):
    """The expectations kept with a dataset and the policy applied on ingest."""

    expectations: list[Expectation] = []
    policy: Policy = "reject"


class ExpectationResult(BaseModel):
    """How one expectation fared."""

    name: str
    kind: str
    passed: bool
    failed_rows: int = 0  # rows that broke it (0 for whole-version checks that failed)
    message: str = ""  # what was wrong, for a person
    samples: list[dict[str, Any]] = []  # a few offending rows (or groups), JSON-able


class ValidationReport(BaseModel):
    """The outcome of a dataset's expectations on one ingest (or one re-validation)."""

    passed: bool
    policy: Policy
    rows_checked: int
    quarantined_rows: int = 0
    results: list[ExpectationResult] = []
    checked_at: int = 0  # epoch ms


# --- versions ----------------------------------------------------------------------------


class DatasetCreate(BaseModel):
    name: str
    description: str = ""
    expectations: ExpectationSuite = ExpectationSuite()


class Dataset(BaseModel):
    id: int
    name: str
    description: str
    expectations: ExpectationSuite
    tags: dict[str, int]  # tag -> version number, "latest" included
    latest_version: int | None
    created_at: int
    created_by: str
    updated_at: int


class VersionCreate(BaseModel):
    """What a client sends to make a version once its files are in the blob store."""

    files: list[DataFile]
    columns: list[ColumnSchema]
    arrow_schema: str = ""  # base64 of the Arrow IPC schema, for exact round trips
    profile: Profile | None = None
    profile_state: str | None = None  # hash of the blob holding the mergeable profile state
    validation: ValidationReport | None = None
    message: str = ""
    kind: VersionKind = "data"
    parents: list[int] = []  # version numbers of this dataset it derives from (append)
    # An append: onto ``parents`` (which must hold the latest version) or, with none, onto
    # a dataset that has no data version yet (Conflict where one was recorded meanwhile).
    append: bool = False
    parent_refs: list[str] = []  # other datasets' versions it derives from: "name@3"
    quarantine_of: int | None = None  # kind "quarantine": the data version it was split from
    source: str = ""  # where the data came from, for people: a path, a URL, a query
    tags: list[str] = []
    # Make the dataset (empty suite) with this version when it does not exist yet, in the
    # same transaction: an ingest that fails leaves no empty dataset behind.
    create_dataset: bool = False


class DatasetVersion(BaseModel):
    id: int
    dataset: str
    version: int
    kind: VersionKind
    digest: str  # BLAKE3 of the sorted (path, hash) list: equal digests, equal data
    message: str
    source: str
    created_by: str
    created_at: int
    rows: int
    bytes: int
    file_count: int
    columns: list[ColumnSchema]
    arrow_schema: str = ""
    tags: list[str] = []
    profile: Profile | None = None
    profile_state: str | None = None
    validation: ValidationReport | None = None


class DatasetVersionDetail(DatasetVersion):
    files: list[DataFile]


class DatasetPage(BaseModel):
    datasets: list[Dataset]
    next_page_token: str | None = None


class VersionPage(BaseModel):
    versions: list[DatasetVersion]
    next_page_token: str | None = None


# --- diffs -------------------------------------------------------------------------------


class SchemaChange(BaseModel):
    column: str
    change: Literal["added", "removed", "type_changed", "nullability_changed"]
    old: str | None = None
    new: str | None = None


class ColumnChange(BaseModel):
    """How one column's profile moved between two versions (new minus old)."""

    column: str
    null_fraction: tuple[float, float] | None = None
    distinct: tuple[int | None, int | None] | None = None
    mean: tuple[float | None, float | None] | None = None
    std: tuple[float | None, float | None] | None = None
    min: tuple[Any, Any] | None = None
    max: tuple[Any, Any] | None = None
    # Population stability index between the two histograms (numeric columns), or
    # between the frequent values (strings): a number a person can threshold.
    psi: float | None = None


class RowDiff(BaseModel):
    keys: list[str]
    added: int
    removed: int
    changed: int
    unchanged: int
    changed_columns: dict[str, int]  # column -> rows whose value changed
    added_samples: list[dict[str, Any]] = []
    removed_samples: list[dict[str, Any]] = []
    changed_samples: list[dict[str, Any]] = []  # {"key": {...}, "old": {...}, "new": {...}}


class VersionDiff(BaseModel):
    dataset: str
    old: int
    new: int
    rows: tuple[int, int]
    schema_changes: list[SchemaChange]
    column_changes: list[ColumnChange]
    same_data: bool  # equal digests
    rows_diff: RowDiff | None = None


# --- lineage -----------------------------------------------------------------------------


class VersionRef(BaseModel):
    project: str
    dataset: str
    version: int
    relation: str = ""  # "append", "derived", "quarantine"
    deleted: bool = Field(
        False,
        description="A parent deleted since this version was made from it (named as it "
        "was then, with its digest).",
    )
    digest: str = Field("", description="The deleted parent's manifest digest.")


class RunRef(BaseModel):
    run_id: str
    experiment_id: int
    name: str
    context: str = ""
    lifecycle: Literal["active", "deleted"] = Field(
        "active", description="A deleted run still read the version: lineage keeps it."
    )


class DatasetInput(BaseModel):
    """A dataset version a run read."""

    run_id: str
    project: str
    dataset: str
    version: int
    digest: str
    context: str = ""
    created_at: int = 0
    deleted: bool = False  # the dataset was deleted since; the reference is as logged


class Lineage(BaseModel):
    """Both directions around one version."""

    version: VersionRef
    parents: list[VersionRef]
    children: list[VersionRef]
    runs: list[RunRef] = Field(
        description="The newest runs that read this version (at most 100, newest first); "
        "all of them are a page at a time at .../readers."
    )
    runs_total: int = Field(0, description="How many runs read this version.")


class ReaderPage(BaseModel):
    """One page of the runs that read a dataset version, newest first."""

    runs: list[RunRef]
    next_page_token: str | None
