"""Diffs between dataset versions: schema, profile figures and PSI, and keyed row diffs over
small Parquet files."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.client import Client
from shipyard.datasets.diff import (
    column_changes,
    diff_versions,
    population_stability,
    row_diff,
    schema_changes,
)
from shipyard.datasets.types import (
    ColumnProfile,
    ColumnSchema,
    DatasetVersion,
    FrequentValue,
    Histogram,
    Profile,
    SchemaChange,
)
from shipyard.errors import InvalidInput

UTC = dt.UTC


def write(path: Path, table: dict[str, Any] | pa.Table) -> Path:
    pq.write_table(table if isinstance(table, pa.Table) else pa.table(table), path)
    return path


def numeric_profile(name: str, values: np.ndarray, bins: int = 20) -> ColumnProfile:
    counts, edges = np.histogram(values, bins=bins)
    return ColumnProfile(
        name=name,
        type="double",
        kind="float",
        count=len(values),
        nulls=0,
        null_fraction=0.0,
        min=float(values.min()),
        max=float(values.max()),
        mean=float(values.mean()),
        std=float(values.std()),
        histogram=Histogram(edges=edges.tolist(), counts=counts.tolist()),
    )


def string_profile(name: str, counts: dict[Any, int], *, other: int = 0) -> ColumnProfile:
    total = sum(counts.values()) + other
    return ColumnProfile(
        name=name,
        type="string",
        kind="string",
        count=total,
        nulls=0,
        null_fraction=0.0,
        distinct=len(counts) + (1 if other else 0),
        top_values=[FrequentValue(value=v, count=c) for v, c in counts.items()],
    )


def version(
    number: int,
    digest: str,
    columns: list[ColumnSchema],
    *,
    rows: int = 0,
    profile: Profile | None = None,
) -> DatasetVersion:
    return DatasetVersion(
        id=number,
        dataset="d",
        version=number,
        kind="data",
        digest=digest,
        message="",
        source="",
        created_by="me",
        created_at=0,
        rows=rows,
        bytes=0,
        file_count=1,
        columns=columns,
        profile=profile,
    )


# --- schema ------------------------------------------------------------------------------


def test_schema_changes_lists_removed_retyped_nullability_and_added_columns() -> None:
    old = [
        ColumnSchema(name="id", type="int64", nullable=False),
        ColumnSchema(name="price", type="int64"),
        ColumnSchema(name="gone", type="string"),
        ColumnSchema(name="note", type="string", nullable=False),
    ]
    new = [
        ColumnSchema(name="id", type="int64", nullable=False),
        ColumnSchema(name="fresh", type="timestamp[us, tz=UTC]"),
        ColumnSchema(name="price", type="double", nullable=False),
        ColumnSchema(name="note", type="string"),
    ]
    assert schema_changes(old, new) == [
        SchemaChange(column="price", change="type_changed", old="int64", new="double"),
        SchemaChange(column="price", change="nullability_changed", old="nullable", new="not null"),
        SchemaChange(column="gone", change="removed", old="string"),
        SchemaChange(column="note", change="nullability_changed", old="not null", new="nullable"),
        SchemaChange(column="fresh", change="added", new="timestamp[us, tz=UTC]"),
    ]
    assert schema_changes(old, old) == []
    # The width of offsets is no change: pandas writes large_string, a CSV reader string.
    wide = [
        ColumnSchema(name="s", type="large_string"),
        ColumnSchema(name="b", type="large_binary"),
        ColumnSchema(name="l", type="large_list<item: large_string>"),
    ]
    narrow = [
        ColumnSchema(name="s", type="string"),
        ColumnSchema(name="b", type="binary"),
        ColumnSchema(name="l", type="list<item: string>"),
    ]
    assert schema_changes(wide, narrow) == []
    assert schema_changes(narrow, [ColumnSchema(name="s", type="large_binary"), *narrow[1:]]) == [
        SchemaChange(column="s", change="type_changed", old="string", new="large_binary")
    ]


# --- profiles ----------------------------------------------------------------------------


def test_column_changes_report_only_moved_figures_of_shared_columns() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=2000)
    same = numeric_profile("same", values)
    old_label = string_profile("label", {"a": 50, "b": 50})
    new_label = string_profile("label", {"a": 50, "b": 50}).model_copy(update={"distinct": 3})
    old_x = numeric_profile("x", values)
    new_x = old_x.model_copy(update={"max": 99.0, "null_fraction": 0.25})
    old = Profile(rows=2000, columns=[same, old_x, old_label, numeric_profile("gone", values)])
    new = Profile(rows=2000, columns=[same, new_x, new_label, numeric_profile("added", values)])

    changes = {c.column: c for c in column_changes(old, new)}

    assert set(changes) == {"x", "label"}
    x = changes["x"]
    assert x.max == (old_x.max, 99.0)
    assert x.null_fraction == (0.0, 0.25)
    assert x.mean is None and x.std is None and x.min is None and x.distinct is None
    assert x.psi == 0.0  # the histogram itself did not move
    assert changes["label"].distinct == (2, 3)
    assert changes["label"].psi == 0.0
    assert column_changes(old, old) == []
    assert column_changes(None, new) == [] and column_changes(old, None) == []


def test_psi_of_numeric_columns_is_near_zero_for_the_same_distribution_and_large_when_shifted() -> (
    None
):
    rng = np.random.default_rng(7)
    reference = numeric_profile("x", rng.normal(0, 1, 20_000), bins=30)
    # Another draw of the same distribution, binned on its own (different) edges.
    redraw = numeric_profile("x", rng.normal(0, 1, 20_000), bins=17)
    shifted = numeric_profile("x", rng.normal(1, 1, 20_000), bins=30)
    wider = numeric_profile("x", rng.normal(0, 3, 20_000), bins=30)

    assert population_stability(reference, reference) == 0.0
    assert population_stability(reference, redraw) < 0.02
    assert population_stability(reference, shifted) > 0.5
    assert population_stability(reference, wider) > 0.5

    (change,) = column_changes(
        Profile(rows=1, columns=[reference]), Profile(rows=1, columns=[shifted])
    )
    assert change.psi == pytest.approx(population_stability(reference, shifted))
    assert change.mean is not None and change.mean[1] > change.mean[0] + 0.9


def test_psi_handles_constant_columns_and_missing_histograms() -> None:
    def constant(value: float) -> ColumnProfile:
        return numeric_profile("c", np.full(100, value)).model_copy(
            update={"histogram": Histogram(edges=[value, value], counts=[100])}
        )

    assert population_stability(constant(5.0), constant(5.0)) == 0.0
    assert population_stability(constant(5.0), constant(6.0)) > 5
    no_histogram = constant(5.0).model_copy(update={"histogram": None})
    assert population_stability(constant(5.0), no_histogram) is None
    empty = constant(5.0).model_copy(update={"histogram": Histogram(edges=[0, 1], counts=[0])})
    assert population_stability(constant(5.0), empty) is None


def test_psi_of_strings_and_booleans_compares_frequent_values_with_an_other_bucket() -> None:
    old = string_profile("s", {"a": 600, "b": 300, "c": 100})
    # The same shares at ten times the rows.
    assert population_stability(old, string_profile("s", {"a": 6000, "b": 3000, "c": 1000})) == (
        pytest.approx(0.0, abs=1e-12)
    )
    # Mass moved to values the old version never held.
    shifted = string_profile("s", {"a": 100, "d": 500, "e": 400})
    assert population_stability(old, shifted) > 1.0
    # Truncated lists: a value listed on one side only, out of a long tail on the other,
    # is taken at most as frequent as the other side's rarest listed value.
    tail_old = string_profile("s", {"a": 500, "b": 10}, other=490)
    tail_new = string_profile("s", {"a": 500, "z": 10}, other=490)
    assert population_stability(tail_old, tail_new) < 0.01
    # The "other" bucket carries mass that left the listed values.
    drained = string_profile("s", {"a": 100, "b": 10}, other=890)
    assert population_stability(tail_old, drained) > 0.5

    def flags(true: int, false: int) -> ColumnProfile:
        profile = string_profile("f", {True: true, False: false})
        return profile.model_copy(update={"kind": "boolean", "type": "bool"})

    assert population_stability(flags(50, 50), flags(500, 500)) == pytest.approx(0.0, abs=1e-12)
    assert population_stability(flags(50, 50), flags(95, 5)) > 0.5


# --- rows --------------------------------------------------------------------------------


def ts(day: int) -> dt.datetime:
    return dt.datetime(2024, 1, day, 12, 30, tzinfo=UTC)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    nan = float("nan")
    old = {
        "region": ["eu", "eu", "us", "us", "ap", None],
        "id": [1, 2, 1, 2, 1, 9],
        "price": [1.0, nan, None, 4.0, 5.0, 6.0],
        "seen": [ts(1), ts(2), ts(3), ts(4), ts(5), ts(6)],
        "name": ["a", "b", None, "d", "e", "f"],
        "only_old": [1, 2, 3, 4, 5, 6],
    }
    new = {
        "region": ["eu", "eu", "us", "us", None, "ap"],
        "id": [1, 2, 1, 3, 9, 7],
        # eu/1 same; eu/2 NaN == NaN; us/1 null -> 3.0; (None, 9) null key still matches
        "price": [1.0, nan, 3.0, 7.0, nan, 8.0],
        "seen": [ts(1), ts(2), ts(3), ts(4), ts(6), ts(7)],
        "name": ["a", "b", None, "x", "f", "g"],
        "only_new": [b"\x00\x01", b"", None, b"z", b"y", b"x"],
    }
    return write(tmp_path / "old.parquet", old), write(tmp_path / "new.parquet", new)


def test_row_diff_counts_and_samples_on_composite_keys(pair: tuple[Path, Path]) -> None:
    old, new = pair
    result = row_diff([old], [new], ["region", "id"])

    assert (result.added, result.removed, result.changed, result.unchanged) == (2, 2, 2, 2)
    assert result.keys == ["region", "id"]
    assert result.changed_columns == {"price": 2}  # only_old/only_new are not compared
    assert result.changed_samples == [
        {"key": {"region": "us", "id": 1}, "old": {"price": None}, "new": {"price": 3.0}},
        {
            "key": {"region": None, "id": 9},
            "old": {"price": 6.0},
            "new": {"price": "NaN"},
        },  # null keys sort last
    ]
    assert result.removed_samples == [
        {
            "region": "ap",
            "id": 1,
            "price": 5.0,
            "seen": "2024-01-05T12:30:00+00:00",
            "name": "e",
            "only_old": 5,
        },
        {
            "region": "us",
            "id": 2,
            "price": 4.0,
            "seen": "2024-01-04T12:30:00+00:00",
            "name": "d",
            "only_old": 4,
        },
    ]
    assert [s["id"] for s in result.added_samples] == [7, 3]
    assert result.added_samples[0] == {
        "region": "ap",
        "id": 7,
        "price": 8.0,
        "seen": "2024-01-07T12:30:00+00:00",
        "name": "g",
        "only_new": "eA==",
    }
    # Everything a sample holds survives strict JSON.
    json.dumps(result.model_dump(), allow_nan=False)


def test_row_diff_compares_timestamps_nulls_and_retyped_columns(tmp_path: Path) -> None:
    old = write(
        tmp_path / "old.parquet",
        {
            "k": [1, 2, 3, 4],
            "at": [ts(1), ts(2), None, ts(4)],
            "code": [10, 20, 30, 40],
            "tag": ["x", None, "z", None],
        },
    )
    new = write(
        tmp_path / "new.parquet",
        {
            "k": [4, 3, 2, 1],
            "at": [ts(4), ts(3), ts(2), ts(1) + dt.timedelta(microseconds=1)],
            "code": ["40", "30", "21", "10"],  # int64 -> string: compared as text
            "tag": [None, "z", "y", "x"],
        },
    )
    result = row_diff([old], [new], ["k"], samples=10)

    assert (result.added, result.removed, result.changed, result.unchanged) == (0, 0, 3, 1)
    assert result.changed_columns == {"at": 2, "code": 1, "tag": 1}
    assert result.changed_samples == [
        {
            "key": {"k": 1},
            "old": {"at": "2024-01-01T12:30:00+00:00"},
            "new": {"at": "2024-01-01T12:30:00.000001+00:00"},
        },
        {"key": {"k": 2}, "old": {"code": 20, "tag": None}, "new": {"code": "21", "tag": "y"}},
        {"key": {"k": 3}, "old": {"at": None}, "new": {"at": "2024-01-03T12:30:00+00:00"}},
    ]


def test_row_diff_over_keys_spread_across_several_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ids = np.arange(300)
    values = rng.normal(size=300)
    new_values = values.copy()
    new_values[[5, 150, 250]] += 1.0
    old_order, new_order = rng.permutation(300), rng.permutation(300)
    # Old: rows 0-289 over three files; new: rows 10-299 over two, shuffled differently.
    old_rows = [i for i in old_order if i < 290]
    new_rows = [i for i in new_order if i >= 10]
    old_files = [
        write(tmp_path / f"old-{n}.parquet", {"id": ids[part], "v": values[part]})
        for n, part in enumerate(np.array_split(np.array(old_rows), 3))
    ]
    new_files = [
        write(tmp_path / f"new-{n}.parquet", {"id": ids[part], "v": new_values[part]})
        for n, part in enumerate(np.array_split(np.array(new_rows), 2))
    ]
    result = row_diff(old_files, new_files, ["id"], samples=3)

    assert (result.added, result.removed, result.changed, result.unchanged) == (10, 10, 2, 278)
    assert result.changed_columns == {"v": 2}
    assert [s["key"]["id"] for s in result.changed_samples] == [150, 250]
    assert [s["id"] for s in result.removed_samples] == [0, 1, 2]
    assert [s["id"] for s in result.added_samples] == [290, 291, 292]

    counts_only = row_diff(old_files, new_files, ["id"], samples=0)
    assert counts_only.changed_samples == counts_only.added_samples == []
    assert counts_only.changed == 2


def test_row_diff_with_one_side_empty(tmp_path: Path) -> None:
    new = write(tmp_path / "new.parquet", {"id": [1, 2], "v": ["a", "b"]})
    result = row_diff([], [new], ["id"])
    assert (result.added, result.removed, result.changed, result.unchanged) == (2, 0, 0, 0)
    assert result.added_samples == [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]
    with pytest.raises(InvalidInput, match="'nope'"):
        row_diff([new], [], ["nope"])


def test_row_diff_refuses_missing_keys(pair: tuple[Path, Path]) -> None:
    old, new = pair
    with pytest.raises(InvalidInput, match="'only_new' is not in the old version") as err:
        row_diff([old], [new], ["region", "only_new"])
    assert err.value.details == {"key": "only_new", "version": "old"}
    with pytest.raises(InvalidInput, match="'only_old' is not in the new version"):
        row_diff([old], [new], ["only_old"])


def test_row_diff_refuses_keys_that_repeat(tmp_path: Path) -> None:
    old = write(tmp_path / "old.parquet", {"k": [1, 2, 3], "g": ["a", "a", "b"]})
    # Unique inside each file, repeated across the version's two files.
    new_a = write(tmp_path / "new-a.parquet", {"k": [1, 2, 3], "g": ["a", "a", "b"]})
    new_b = write(tmp_path / "new-b.parquet", {"k": [3, 4, 2], "g": ["b", "b", "a"]})

    with pytest.raises(InvalidInput, match=r"not unique in the old version: 1 key repeats") as err:
        row_diff([old], [new_a], ["g"])
    assert err.value.details["example"] == {"g": "a"}
    assert "(2 rows)" in err.value.message

    with pytest.raises(InvalidInput, match=r"not unique in the new version: 2 keys repeat") as err:
        row_diff([old], [new_a, new_b], ["k"])
    assert err.value.details["repeated_keys"] == 2
    assert err.value.details["example"]["k"] in (2, 3)

    assert row_diff([old], [new_a], ["k", "g"]).unchanged == 3


@pytest.mark.parametrize(
    ("keys", "samples", "message"),
    [
        ([], 5, "at least one key"),
        (["k", "k"], 5, "repeat"),
        ("k", 5, "list of column names"),
        (["k"], -1, "samples"),
        (["k"], 10_000, "samples"),
    ],
)
def test_row_diff_refuses_bad_arguments(
    tmp_path: Path, keys: Any, samples: int, message: str
) -> None:
    path = write(tmp_path / "v.parquet", {"k": [1]})
    with pytest.raises(InvalidInput, match=message):
        row_diff([path], [path], keys, samples=samples)


# --- versions ----------------------------------------------------------------------------

COLUMNS = [ColumnSchema(name="id", type="int64"), ColumnSchema(name="v", type="double")]


def test_diff_versions_from_metadata_alone() -> None:
    rng = np.random.default_rng(5)
    old_profile = Profile(rows=100, columns=[numeric_profile("v", rng.normal(size=100))])
    new_profile = Profile(rows=120, columns=[numeric_profile("v", rng.normal(3, 1, 120))])
    old = version(1, "d1", COLUMNS, rows=100, profile=old_profile)
    new = version(2, "d2", [*COLUMNS, ColumnSchema(name="w", type="string")], rows=120)
    new = new.model_copy(update={"profile": new_profile})

    result = diff_versions("d", old, new)

    assert (result.dataset, result.old, result.new, result.rows) == ("d", 1, 2, (100, 120))
    assert result.same_data is False and result.rows_diff is None
    assert result.schema_changes == [SchemaChange(column="w", change="added", new="string")]
    (change,) = result.column_changes
    assert change.column == "v" and change.psi is not None and change.psi > 1


def test_diff_versions_with_keys_joins_the_files(tmp_path: Path) -> None:
    old_file = write(tmp_path / "old.parquet", {"id": [1, 2], "v": [1.0, 2.0]})
    new_file = write(tmp_path / "new.parquet", {"id": [2, 3], "v": [2.5, 3.0]})
    old, new = version(1, "d1", COLUMNS, rows=2), version(2, "d2", COLUMNS, rows=2)

    result = diff_versions("d", old, new, keys=["id"], old_files=[old_file], new_files=[new_file])

    rows = result.rows_diff
    assert rows is not None
    assert (rows.added, rows.removed, rows.changed, rows.unchanged) == (1, 1, 1, 0)
    assert rows.changed_samples == [{"key": {"id": 2}, "old": {"v": 2.0}, "new": {"v": 2.5}}]


def test_equal_digests_skip_the_join(tmp_path: Path) -> None:
    old, new = version(1, "same", COLUMNS, rows=7), version(2, "same", COLUMNS, rows=7)
    missing = [tmp_path / "not-there.parquet"]  # never opened: the digests say it all

    result = diff_versions("d", old, new, keys=["id"], old_files=missing, new_files=missing)

    assert result.same_data is True
    assert result.rows_diff is not None
    assert result.rows_diff.model_dump() == {
        "keys": ["id"],
        "added": 0,
        "removed": 0,
        "changed": 0,
        "unchanged": 7,
        "changed_columns": {},
        "added_samples": [],
        "removed_samples": [],
        "changed_samples": [],
    }
    assert result.schema_changes == [] and result.column_changes == []


def test_equal_digests_need_no_files() -> None:
    old, new = version(1, "same", COLUMNS, rows=3), version(2, "same", COLUMNS, rows=3)

    for other in (new, old):  # another version with the same data, or the version itself
        result = diff_versions("d", old, other, keys=["id"])

        rows = result.rows_diff
        assert result.same_data is True and rows is not None
        assert (rows.added, rows.removed, rows.changed, rows.unchanged) == (0, 0, 0, 3)
    with pytest.raises(InvalidInput, match="'nope' is not in the old version"):
        diff_versions("d", old, new, keys=["nope"])


def test_keyed_diff_of_the_same_data_through_the_sdk(client: Client) -> None:
    """Re-ingesting an unchanged export, then diffing by key (embedded, and over REST)."""
    table = pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]})
    client.datasets.ingest("t", table)
    client.datasets.ingest("t", table)
    client.datasets.set_tag("t", "prod", 2)

    for old, new in ((1, 2), (1, 1), ("prod", "latest")):
        result = client.datasets.diff("t", old, new, keys=["id"])

        rows = result.rows_diff
        assert result.same_data is True and rows is not None
        assert (rows.added, rows.removed, rows.changed, rows.unchanged) == (0, 0, 0, 3)
        assert rows.keys == ["id"] and rows.changed_columns == {}
    with pytest.raises(InvalidInput, match="'nope' is not in the old version"):
        client.datasets.diff("t", 1, 2, keys=["nope"])


def test_diff_versions_checks_keys_before_reading_files(tmp_path: Path) -> None:
    old, new = version(1, "d1", COLUMNS), version(2, "d2", COLUMNS[:1])
    missing = [tmp_path / "not-there.parquet"]
    with pytest.raises(InvalidInput, match="'v' is not in the new version"):
        diff_versions("d", old, new, keys=["v"], old_files=missing, new_files=missing)
    with pytest.raises(InvalidInput, match="'nope' is not in the old version"):
        diff_versions("d", old, old, keys=["nope"], old_files=missing, new_files=missing)
    with pytest.raises(ValueError, match="old_files and new_files"):
        diff_versions("d", old, new, keys=["id"], old_files=missing)
