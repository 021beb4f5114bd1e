"""Expectations judged on Arrow batches and Parquet files: counts, samples, keep-masks,
whole-version checks, and the suites that must be refused."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.datasets import validation, version_checks
from shipyard.datasets.types import ExpectationResult, ExpectationSuite, ValidationReport
from shipyard.datasets.validation import Validator, check_suite, validate_files
from shipyard.errors import InvalidInput

DAY_MS = 86_400_000
NOW = dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def suite(*expectations: dict[str, Any], policy: str = "reject") -> ExpectationSuite:
    return ExpectationSuite.model_validate({"expectations": list(expectations), "policy": policy})


def batch(**columns: Any) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(columns)


def write(path: Path, data: pa.RecordBatch | pa.Table) -> Path:
    table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
    pq.write_table(table, path)
    return path


def judge_rows(
    data: pa.RecordBatch, *expectations: dict[str, Any]
) -> tuple[pa.BooleanArray | None, ValidationReport]:
    """Row-level expectations over one batch; the whole-version part sees no files."""
    v = Validator(suite(*expectations), data.schema)
    mask = v.check_batch(data)
    return mask, v.finish([], rows=data.num_rows, now_ms=NOW_MS)


def judge_files(
    files: list[Path], *expectations: dict[str, Any], rows: int | None = None
) -> list[ExpectationResult]:
    schema = pq.read_schema(files[0])
    total = sum(pq.ParquetFile(f).metadata.num_rows for f in files) if rows is None else rows
    return Validator(suite(*expectations), schema).finish(files, rows=total, now_ms=NOW_MS).results


# --- row-level expectations ----------------------------------------------------------------


def test_not_null_counts_nulls_and_samples_the_failing_rows() -> None:
    data = batch(id=[1, 2, 3, 4], age=[30, None, 41, None])
    mask, report = judge_rows(data, {"kind": "not_null", "column": "age"})
    assert mask.to_pylist() == [True, False, True, False]
    (r,) = report.results
    assert (r.passed, r.kind, r.failed_rows) == (False, "not_null", 2)
    assert r.message == "2 rows have null in 'age'"
    assert r.name == "not_null(age)"
    assert r.samples == [{"age": None, "id": 2}, {"age": None, "id": 4}]
    assert not report.passed and report.rows_checked == 4

    mask, report = judge_rows(batch(age=[1, 2]), {"kind": "not_null", "column": "age"})
    assert mask.to_pylist() == [True, True]
    assert report.passed and report.results[0].failed_rows == 0
    assert report.results[0].message == "" and report.results[0].samples == []


def test_range_on_numbers_ignores_nulls_and_fails_nan() -> None:
    data = batch(price=[0.0, 12.5, None, -1.0, 1000.0, 1000.5, float("nan")])
    mask, report = judge_rows(data, {"kind": "range", "column": "price", "min": 0, "max": 1000})
    assert mask.to_pylist() == [True, True, True, False, True, False, False]
    (r,) = report.results
    assert r.failed_rows == 3
    assert r.message == "'price' outside [0, 1000]: 3 rows"
    assert [s["price"] for s in r.samples] == [-1.0, 1000.5, "nan"]


def test_range_with_one_bound_on_integers_and_decimals() -> None:
    ints = batch(qty=pa.array([1, 5, 9, None], pa.int32()))
    mask, report = judge_rows(ints, {"kind": "range", "column": "qty", "min": 2.5})
    assert mask.to_pylist() == [False, True, True, True]
    assert report.results[0].message == "'qty' below 2.5: 1 row"

    mask, report = judge_rows(ints, {"kind": "range", "column": "qty", "max": 5})
    assert mask.to_pylist() == [True, True, False, True]
    assert report.results[0].message == "'qty' above 5: 1 row"

    money = batch(amount=pa.array([Decimal("1.50"), Decimal("99.99")], pa.decimal128(10, 2)))
    mask, report = judge_rows(money, {"kind": "range", "column": "amount", "max": 50})
    assert mask.to_pylist() == [True, False]
    assert report.results[0].samples == [{"amount": 99.99}]


def test_range_on_timestamps_and_dates_takes_iso_bounds() -> None:
    naive = [dt.datetime(2024, 1, 1), dt.datetime(2024, 6, 1), dt.datetime(2025, 1, 1)]
    aware = pa.array(naive, pa.timestamp("us", tz="UTC")).cast(
        pa.timestamp("ms", tz="Europe/Paris")
    )
    data = batch(
        ts=pa.array(naive, pa.timestamp("ns")),
        tz=aware,
        day=pa.array([d.date() for d in naive], pa.date32()),
    )
    bounds = {"min": "2024-01-01", "max": "2024-12-31T23:59:59"}
    for column in ("ts", "tz", "day"):
        mask, report = judge_rows(data, {"kind": "range", "column": column, **bounds})
        assert mask.to_pylist() == [True, True, False], column
    # An aware bound on a naive column is read in UTC; a naive bound on an aware one is UTC.
    mask, _ = judge_rows(data, {"kind": "range", "column": "ts", "max": "2024-01-01T02:00+02:00"})
    assert mask.to_pylist() == [True, False, False]
    mask, _ = judge_rows(data, {"kind": "range", "column": "tz", "min": "2024-06-01T00:00:01"})
    assert mask.to_pylist() == [False, False, True]
    (r,) = judge_rows(data, {"kind": "range", "column": "ts", **bounds})[1].results
    assert r.samples[0]["ts"] == "2025-01-01T00:00:00"
    assert r.samples[0]["tz"] == "2025-01-01T01:00:00+01:00"
    assert r.samples[0]["day"] == "2025-01-01"


def test_allowed_values_plain_and_dictionary_columns_let_nulls_pass() -> None:
    colors = ["red", "green", None, "blue", "mauve"]
    for column in (pa.array(colors), pa.array(colors).dictionary_encode()):
        mask, report = judge_rows(
            batch(color=column),
            {"kind": "allowed_values", "column": "color", "values": ["red", "green", "blue"]},
        )
        assert mask.to_pylist() == [True, True, True, True, False]
        (r,) = report.results
        assert r.failed_rows == 1 and r.samples == [{"color": "mauve"}]
        assert r.message == "'color' not among the allowed values: 1 row"
    mask, _ = judge_rows(
        batch(n=[1, 2, 3]), {"kind": "allowed_values", "column": "n", "values": [1, 3]}
    )
    assert mask.to_pylist() == [True, False, True]


def test_allowed_values_mixing_ints_and_floats_keep_every_int_exact() -> None:
    big = 2**53 + 1  # no double holds it: it must not be rounded to its neighbour
    mask, _ = judge_rows(
        batch(n=[big, big - 1, 2, 3]),
        {"kind": "allowed_values", "column": "n", "values": [big, 2.0]},
    )
    assert mask.to_pylist() == [True, False, True, False]
    mask, _ = judge_rows(
        batch(x=[0.5, 2.0, 3.0]), {"kind": "allowed_values", "column": "x", "values": [2, 0.5]}
    )
    assert mask.to_pylist() == [True, True, False]


def test_regex_searches_unanchored_and_lets_nulls_pass() -> None:
    emails = ["a@b.io", "nope", None, "x@y.org", "@"]
    for column in (pa.array(emails), pa.array(emails).dictionary_encode()):
        mask, report = judge_rows(
            batch(email=column), {"kind": "regex", "column": "email", "pattern": r"\w@\w"}
        )
        assert mask.to_pylist() == [True, False, True, True, False]
        (r,) = report.results
        assert r.failed_rows == 2 and [s["email"] for s in r.samples] == ["nope", "@"]
        assert r.message == "'email' does not match '\\\\w@\\\\w': 2 rows"
    mask, _ = judge_rows(
        batch(code=["AB-1", "xAB-12"]), {"kind": "regex", "column": "code", "pattern": "^AB-"}
    )
    assert mask.to_pylist() == [True, False]


def test_sql_predicate_counts_null_as_failure() -> None:
    data = batch(price=[10.0, -1.0, None, 5.0], qty=[1, 1, 1, 300])
    mask, report = judge_rows(
        data, {"kind": "sql", "predicate": "price >= 0 AND price * qty < 1000"}
    )
    assert mask.to_pylist() == [True, False, False, False]
    (r,) = report.results
    assert r.failed_rows == 3
    assert r.message == "3 rows break price >= 0 AND price * qty < 1000"
    assert r.samples[1] == {"price": None, "qty": 1}


def test_sql_predicates_see_the_batch_as_a_view_and_keep_row_order() -> None:
    # Bigger than one DuckDB vector and morsel, so a reordering scan would show.
    n = 300_000
    values = np.random.default_rng(7).integers(0, 1000, n)
    data = batch(v=pa.array(values), w=pa.array(values[::-1].copy()))
    v = Validator(
        suite(
            {"kind": "sql", "predicate": "v % 7 <> 3"},
            {"kind": "sql", "predicate": "w <= (SELECT max(v) FROM batch) - 10"},
            {"kind": "not_null", "column": "v"},
        ),
        data.schema,
    )
    mask = v.check_batch(data)
    expected = (values % 7 != 3) & (values[::-1] <= values.max() - 10)
    assert mask.to_numpy(zero_copy_only=False).tolist() == expected.tolist()
    report = v.finish([], rows=n, now_ms=NOW_MS)
    assert report.results[0].failed_rows == int(np.sum(values % 7 == 3))
    assert report.results[1].failed_rows == int(np.sum(values[::-1] > values.max() - 10))


def test_keep_mask_joins_every_row_check_and_counts_accumulate_over_batches() -> None:
    s = suite(
        {"kind": "not_null", "column": "a"},
        {"kind": "range", "column": "b", "min": 0},
        {"kind": "regex", "column": "c", "pattern": "^ok"},
        {"kind": "sql", "predicate": "a <> 13"},
        {"kind": "row_count", "min": 1},
    )
    first = batch(a=[1, None, 13, 4], b=[1, 1, 1, -1], c=["ok", "ok", "ok", "ok"])
    second = batch(a=[5, 6, None, 8], b=[1, -5, 1, 1], c=["no", "ok", None, "ok1"])
    v = Validator(s, first.schema)
    assert v.has_row_checks
    assert v.check_batch(first).to_pylist() == [True, False, False, False]
    assert v.check_batch(second).to_pylist() == [False, False, False, True]
    report = v.finish([], rows=2, now_ms=NOW_MS)
    assert [r.failed_rows for r in report.results] == [2, 2, 1, 3, 0]
    assert report.rows_checked == 8
    assert report.checked_at == NOW_MS and report.policy == "reject"
    assert [r.kind for r in report.results] == [
        "not_null", "range", "regex", "sql", "row_count",
    ]  # fmt: skip


def test_no_row_checks_gives_no_mask_and_rows_checked_from_rows() -> None:
    v = Validator(suite({"kind": "row_count", "max": 10}), pa.schema([("a", pa.int64())]))
    assert not v.has_row_checks
    assert v.check_batch(batch(a=[1, 2])) is None
    unfed = Validator(suite({"kind": "row_count", "max": 10}), pa.schema([("a", pa.int64())]))
    assert unfed.finish([], rows=7, now_ms=NOW_MS).rows_checked == 7
    assert v.finish([], rows=2, now_ms=NOW_MS).rows_checked == 2


def test_samples_stop_at_five_across_batches_and_are_json() -> None:
    schema = pa.schema(
        [
            ("x", pa.int64()),
            ("when", pa.timestamp("ns", tz="UTC")),
            ("blob", pa.binary()),
            ("money", pa.decimal128(8, 2)),
            ("tags", pa.list_(pa.string())),
            ("text", pa.string()),
        ]
    )
    v = Validator(suite({"kind": "range", "column": "x", "max": 0}), schema)
    for start in (0, 3, 6):
        rows = [
            {
                "x": start + k + 1,
                "when": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                "blob": b"\x00\xff",
                "money": Decimal("1.25"),
                "tags": ["a", "b"],
                "text": "t" * 500,
            }
            for k in range(3)
        ]
        v.check_batch(pa.RecordBatch.from_pylist(rows, schema=schema))
    (r,) = v.finish([], rows=9, now_ms=NOW_MS).results
    assert r.failed_rows == 9
    assert [s["x"] for s in r.samples] == [1, 2, 3, 4, 5]
    sample = r.samples[0]
    assert sample["when"] == "2024-01-01T00:00:00+00:00"
    assert sample["blob"] == "00ff" and sample["money"] == 1.25 and sample["tags"] == ["a", "b"]
    assert len(sample["text"]) < 250
    json.dumps(r.model_dump())


def test_quarantine_counts_rows_not_kept(tmp_path: Path) -> None:
    data = batch(a=[1, None, 3, None, 5])
    v = Validator(suite({"kind": "not_null", "column": "a"}, policy="quarantine"), data.schema)
    mask = v.check_batch(data)
    kept = write(tmp_path / "kept.parquet", data.filter(mask))
    report = v.finish([kept], rows=3, now_ms=NOW_MS)
    assert report.policy == "quarantine"
    assert report.rows_checked == 5 and report.quarantined_rows == 2
    assert not report.passed and report.results[0].failed_rows == 2
    v = Validator(suite({"kind": "not_null", "column": "a"}), data.schema)
    v.check_batch(data)
    assert v.finish([kept], rows=5, now_ms=NOW_MS, policy="warn").quarantined_rows == 0


# --- whole-version expectations -----------------------------------------------------------


def test_unique_counts_repeated_keys_with_samples(tmp_path: Path) -> None:
    f = write(tmp_path / "a.parquet", batch(id=[1, 2, 2, 3, 3, 3, 4]))
    (r,) = judge_files([f], {"kind": "unique", "columns": ["id"]})
    assert (r.passed, r.failed_rows) == (False, 5)
    assert r.message == "2 keys of (id) repeat (5 rows)"
    assert r.samples == [{"key": {"id": 3}, "count": 3}, {"key": {"id": 2}, "count": 2}]
    g = write(tmp_path / "b.parquet", batch(id=[1, 2, 3]))
    (r,) = judge_files([g], {"kind": "unique", "columns": ["id"]})
    assert r.passed and r.failed_rows == 0 and r.message == ""


def test_unique_over_several_columns_and_files_with_nulls_as_values(tmp_path: Path) -> None:
    files = [
        write(tmp_path / "p0.parquet", batch(a=[1, 1, 2], b=["x", "y", None], c=[0, 0, 0])),
        write(tmp_path / "p1.parquet", batch(a=[1, 3, 2], b=["x", "x", None], c=[0, 0, 0])),
        write(tmp_path / "p2.parquet", batch(a=[9, 8, 1], b=["z", "z", "x"], c=[0, 0, 0])),
    ]
    (r,) = judge_files(files, {"kind": "unique", "columns": ["a", "b"]})
    assert r.message == "2 keys of (a, b) repeat (5 rows)"
    assert r.samples == [
        {"key": {"a": 1, "b": "x"}, "count": 3},
        {"key": {"a": 2, "b": None}, "count": 2},
    ]
    (r,) = judge_files(files, {"kind": "unique", "columns": ["a", "b", "c"], "name": "pk"})
    assert r.name == "pk" and r.failed_rows == 5
    (r,) = judge_files(files[2:], {"kind": "unique", "columns": ["a", "b"]})
    assert r.passed
    (r,) = judge_files(files[:1], {"kind": "unique", "columns": ["a"]})
    assert r.message == "1 key of (a) repeats (2 rows)"


HIDDEN_NULL = pa.DictionaryArray.from_arrays(
    pa.array([0], pa.int32()), pa.array([None], pa.string())
)


def ordered_key_proves(*batches: pa.Array) -> bool:
    key = version_checks.OrderedKey("k")
    for values in batches:
        key.see(pa.RecordBatch.from_arrays([values], names=["k"]))
    return key.proven()


@pytest.mark.parametrize(
    ("batches", "proven"),
    [
        # Sorted batches whose ranges do not overlap, in any arrival order (dictionary
        # batches compare by value, whatever their dictionaries).
        ([pa.array([10, 11, 19]), pa.array([0, 1, 2]), pa.array([9, 6, 3])], True),
        ([pa.array([7]), pa.array([3]), pa.array([5])], True),
        ([pa.array(["a", "ab", "b"]), pa.array(["c", "d"])], True),
        ([pa.array([3, 1], pa.timestamp("us")), pa.array([5, 9], pa.timestamp("us"))], True),
        ([pa.array(["a"]).dictionary_encode(), pa.array(["c", "b"]).dictionary_encode()], True),
        ([pa.array(["b"]).dictionary_encode(), pa.array(["a", "b"]).dictionary_encode()], False),
        # A key shared at a boundary, overlapping ranges, or an unsorted batch.
        ([pa.array([1, 2, 3]), pa.array([3, 4])], False),
        ([pa.array([7]), pa.array([7])], False),
        ([pa.array([1, 5]), pa.array([3, 7])], False),  # unique, but left to the scan
        ([pa.array([1, 3, 2])], False),
        ([pa.array([1, 1, 2])], False),
        # Nulls, NaN, signed zeros and types without an order are left to the scan too.
        ([pa.array([1, None, 3])], False),
        ([pa.array([0.5, float("nan")])], False),
        ([pa.array([-0.0]), pa.array([0.0])], False),
        ([pa.array([[1], [2]])], False),
        # Nulls hidden in dictionaries (their indexes are valid) are no proof either: the
        # two one-row batches of the second case repeat the null.
        ([pa.DictionaryArray.from_arrays(pa.array([0, 1], pa.int32()), ["a", None])], False),
        (
            [
                pa.array(["a"]).dictionary_encode(),
                HIDDEN_NULL,
                pa.array(["b"]).dictionary_encode(),
                HIDDEN_NULL,
            ],
            False,
        ),
        ([], False),
    ],
)
def test_a_key_that_streams_in_order_is_proven_unique(
    batches: list[pa.Array], proven: bool
) -> None:
    assert ordered_key_proves(*batches) is proven


def test_an_ordered_key_skips_the_scan_only_when_every_row_was_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanned: list[str] = []
    real = version_checks.VersionScan._unique

    def counting(self: Any, exp: Any, result: ExpectationResult) -> None:
        scanned.append(exp.columns[0])
        real(self, exp, result)

    monkeypatch.setattr(version_checks.VersionScan, "_unique", counting)
    parts = [batch(id=[1, 2, 3], b=[5, 5, 5]), batch(id=[4, 5, 6], b=[5, 5, 5])]
    files = [write(tmp_path / f"p{i}.parquet", part) for i, part in enumerate(parts)]
    expectations = [{"kind": "unique", "columns": [c]} for c in ("id", "b")]

    def judge(checked_all: bool) -> list[ExpectationResult]:
        v = Validator(suite(*expectations), parts[0].schema)
        for part in parts:
            v.check_batch(part)
        return v.finish(files, rows=6, now_ms=NOW_MS, checked_all=checked_all).results

    ids, b = judge(checked_all=True)
    assert ids.passed and not b.passed and b.failed_rows == 6
    assert scanned == ["b"]  # the ids were proven from their order; b had to be grouped
    scanned.clear()
    ids, _ = judge(checked_all=False)  # e.g. an append: the parent's rows were not seen
    assert ids.passed and scanned == ["id", "b"]


def test_row_count_bounds() -> None:
    schema = pa.schema([("a", pa.int64())])

    def result(rows: int, **bounds: int) -> ExpectationResult:
        v = Validator(suite({"kind": "row_count", **bounds}), schema)
        return v.finish([], rows=rows, now_ms=NOW_MS).results[0]

    assert result(5, min=5, max=5).passed
    low = result(1_200, min=5_000)
    assert not low.passed and low.message == "1,200 rows, expected at least 5,000"
    assert low.failed_rows == 0
    assert result(11, max=10).message == "11 rows, expected at most 10"
    assert result(0, max=10).passed


@pytest.mark.parametrize(
    "arrow_type",
    [pa.timestamp("us"), pa.timestamp("ns"), pa.timestamp("ms", tz="America/New_York")],
)
def test_freshness_of_timestamps(tmp_path: Path, arrow_type: pa.DataType) -> None:
    newest = NOW - dt.timedelta(days=3)
    values = [newest - dt.timedelta(days=10), newest, None]
    if arrow_type.tz is None:  # naive values are taken as UTC
        values = [v and v.replace(tzinfo=None) for v in values]
    f = write(tmp_path / "ts.parquet", batch(ts=pa.array(values, arrow_type)))
    (old,) = judge_files([f], {"kind": "freshness", "column": "ts", "max_age_seconds": 86400})
    assert not old.passed and old.failed_rows == 0
    assert old.message == "newest 'ts' is 3 days old, allowed 1 day"
    assert old.samples[0]["age_seconds"] == pytest.approx(3 * 86400)
    (fresh,) = judge_files([f], {"kind": "freshness", "column": "ts", "max_age_seconds": 4 * 86400})
    assert fresh.passed


def test_freshness_of_dates_and_of_an_empty_column(tmp_path: Path) -> None:
    f = write(tmp_path / "d.parquet", batch(day=pa.array([dt.date(2024, 3, 8)]), e=[None]))
    (r,) = judge_files([f], {"kind": "freshness", "column": "day", "max_age_seconds": 3600})
    assert r.message == "newest 'day' is 2.5 days old, allowed 1 hour"
    (r,) = judge_files([f], {"kind": "freshness", "column": "day", "max_age_seconds": 3 * 86400})
    assert r.passed
    g = write(tmp_path / "n.parquet", batch(ts=pa.array([None], pa.timestamp("s"))))
    (r,) = judge_files([g], {"kind": "freshness", "column": "ts", "max_age_seconds": 60})
    assert not r.passed and r.message == "'ts' has no values"


def test_class_balance_min_fraction_and_max_ratio(tmp_path: Path) -> None:
    labels = ["cat"] * 70 + ["dog"] * 25 + ["eel"] * 5 + [None] * 0
    f = write(tmp_path / "l.parquet", batch(label=labels))
    (r,) = judge_files([f], {"kind": "class_balance", "column": "label", "min_fraction": 0.1})
    assert not r.passed
    assert r.message == (
        "1 of 3 classes of 'label' hold under 10.0% of rows (smallest: 'eel' with 5.0%)"
    )
    assert r.samples == [
        {"value": "cat", "count": 70, "fraction": 0.7},
        {"value": "dog", "count": 25, "fraction": 0.25},
        {"value": "eel", "count": 5, "fraction": 0.05},
    ]
    (r,) = judge_files([f], {"kind": "class_balance", "column": "label", "max_ratio": 10})
    assert r.message == "largest class 'cat' is 14.0x the smallest 'eel', allowed 10x"
    spec = {"kind": "class_balance", "column": "label", "min_fraction": 0.05, "max_ratio": 14}
    (r,) = judge_files([f], spec)
    assert r.passed and len(r.samples) == 3


def test_class_balance_ignores_null_labels_and_shows_both_ends(tmp_path: Path) -> None:
    labels = [k for k in range(30) for _ in range(k + 1)] + [None] * 50
    f = write(tmp_path / "l.parquet", batch(label=labels))
    (r,) = judge_files([f], {"kind": "class_balance", "column": "label", "max_ratio": 100})
    assert r.passed
    counts = [s["count"] for s in r.samples]
    assert counts[:3] == [30, 29, 28] and counts[-3:] == [3, 2, 1] and len(counts) == 20
    assert None not in [s["value"] for s in r.samples]


# --- schema and missing columns ------------------------------------------------------------


SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("price", pa.float64()),
        ("name", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("cat", pa.dictionary(pa.int32(), pa.string())),
    ]
)


def schema_result(columns: dict[str, str], exact: bool = False) -> ExpectationResult:
    v = Validator(suite({"kind": "schema", "columns": columns, "exact": exact}), SCHEMA)
    return v.finish([], rows=0, now_ms=NOW_MS).results[0]


def test_schema_by_arrow_name_alias_and_kind() -> None:
    assert schema_result(
        {"id": "int64", "price": "float64", "ts": "timestamp[us, tz=UTC]", "name": "string"}
    ).passed
    assert schema_result(
        {"id": "integer", "price": "float", "ts": "temporal", "cat": "string"}
    ).passed
    r = schema_result({"id": "string", "price": "int64", "gone": "integer"})
    assert not r.passed
    assert r.message == (
        "'id' is int64, expected string; 'price' is double, expected int64; missing column 'gone'"
    )
    assert r.samples[0] == {"column": "id", "expected": "string", "actual": "int64"}


def test_schema_exact_refuses_other_columns() -> None:
    assert schema_result({}).passed
    every = {"id": "integer", "price": "float", "name": "string", "ts": "temporal", "cat": "string"}
    assert schema_result(every, exact=True).passed
    r = schema_result({"id": "integer", "price": "float"}, exact=True)
    assert r.message == (
        "unexpected column 'name'; unexpected column 'ts'; unexpected column 'cat'"
    )


def test_expectations_on_missing_columns_fail_without_raising(tmp_path: Path) -> None:
    data = batch(a=[1, None])
    f = write(tmp_path / "a.parquet", data)
    v = Validator(
        suite(
            {"kind": "not_null", "column": "nope"},
            {"kind": "unique", "columns": ["a", "x", "y"]},
            {"kind": "freshness", "column": "when", "max_age_seconds": 1},
            {"kind": "class_balance", "column": "label"},
            {"kind": "not_null", "column": "a"},
        ),
        data.schema,
    )
    mask = v.check_batch(data)
    assert mask.to_pylist() == [True, False]  # only the check that can run shapes the mask
    report = v.finish([f], rows=2, now_ms=NOW_MS)
    assert [r.message for r in report.results[:4]] == [
        "column 'nope' does not exist",
        "columns 'x', 'y' do not exist",
        "column 'when' does not exist",
        "column 'label' does not exist",
    ]
    assert not any(r.passed for r in report.results)


# --- suites that can never be judged ------------------------------------------------------


# (expectation, what the refusal says, whether it is refused without knowing the schema)
BAD = [
    ({"kind": "regex", "column": "name", "pattern": "(unclosed"}, "bad regular expression", 1),
    ({"kind": "regex", "column": "id", "pattern": "1"}, "needs a string column", 0),
    ({"kind": "sql", "predicate": "no_such_column > 1"}, "cannot run", 0),
    ({"kind": "sql", "predicate": "price > 0; DROP TABLE batch"}, "';'", 1),
    ({"kind": "sql", "predicate": "price >"}, "not one SQL expression", 1),
    ({"kind": "sql", "predicate": "price > 0, id > 0"}, "not one SQL expression", 1),
    ({"kind": "sql", "predicate": "price + 1"}, "boolean", 0),
    ({"kind": "sql", "predicate": "sum(price) > 0"}, "not aggregate", 0),
    ({"kind": "range", "column": "price", "min": 10, "max": 1}, "above max", 1),
    ({"kind": "range", "column": "price"}, "give min, max or both", 1),
    ({"kind": "range", "column": "price", "min": "2024-01-01"}, "must be a finite number", 0),
    ({"kind": "range", "column": "ts", "min": 5}, "must be an ISO date/time", 0),
    ({"kind": "range", "column": "ts", "min": "yesterday"}, "neither a number nor", 1),
    ({"kind": "range", "column": "ts", "min": "2024-02-01", "max": "2024-01-01"}, "above max", 1),
    ({"kind": "range", "column": "ts", "min": 1, "max": "2024-01-01"}, "of one kind", 1),
    ({"kind": "range", "column": "name", "min": 1}, "numeric or date/time", 0),
    ({"kind": "allowed_values", "column": "id", "values": ["x", "y"]}, "do not fit", 0),
    ({"kind": "freshness", "column": "price", "max_age_seconds": 60}, "timestamp or date", 0),
    ({"kind": "row_count", "min": 10, "max": 5}, "above max", 1),
    ({"kind": "schema", "columns": {"id": "int99"}}, "unknown type 'int99'", 1),
]


@pytest.mark.parametrize(("expectation", "problem", "static"), BAD)
def test_malformed_expectations_are_refused_by_name(
    expectation: dict[str, Any], problem: str, static: int
) -> None:
    s = suite({"kind": "not_null", "column": "id"}, expectation)
    with pytest.raises(InvalidInput) as err:
        Validator(s, SCHEMA)
    assert problem in err.value.message
    assert err.value.message.startswith("expectation 2 (")
    assert err.value.details["expectation"] == 1
    with pytest.raises(InvalidInput, match=re.escape(problem)):
        check_suite(s, SCHEMA)
    if static:
        with pytest.raises(InvalidInput, match=re.escape(problem)):
            check_suite(s)
    else:  # judging it needs the column's type, or binding against the columns
        check_suite(s)


def test_check_suite_accepts_judgeable_suites() -> None:
    check_suite(suite({"kind": "not_null", "column": "anything"}))
    check_suite(suite({"kind": "sql", "predicate": "anything > 1"}))
    check_suite(suite({"kind": "range", "column": "t", "min": "2024-01-01", "max": "2024-01-02"}))
    check_suite(suite({"kind": "sql", "predicate": "x > 1"}), pa.schema([("x", pa.int8())]))
    # A missing column is not a malformed suite: it fails when judged.
    check_suite(suite({"kind": "unique", "columns": ["gone"]}), pa.schema([("x", pa.int8())]))


def test_sql_predicate_cannot_read_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("token\nhunter2\n")
    write(tmp_path / "data.parquet", batch(x=[1]))
    # The paths below are the test's own; the point is that the sandbox refuses them.
    for predicate in (
        "(SELECT count(*) FROM read_text('/etc/passwd')) > 0",
        f"(SELECT count(*) FROM read_csv('{secret}')) > 0",  # noqa: S608
        f"x IN (SELECT x FROM read_parquet('{tmp_path / 'data.parquet'}'))",  # noqa: S608
        "(SELECT count(*) FROM glob('/etc/*')) > 0",
    ):
        with pytest.raises(InvalidInput) as err:
            Validator(
                suite({"kind": "sql", "predicate": predicate}), pa.schema([("x", pa.int64())])
            )
        assert "expectation 1 (sql(" in err.value.message
        assert "hunter2" not in err.value.message and "root:" not in err.value.message


def test_sql_predicate_that_runs_too_long_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validation, "SQL_TIMEOUT_SECONDS", 0.2)
    data = batch(x=[1, 2, 3])
    endless = "(SELECT count(*) FROM range(1000000000000)) > 0"
    with pytest.raises(InvalidInput, match="ran longer than 0.2 s"):
        Validator(suite({"kind": "sql", "predicate": endless}), data.schema)
    # Work that grows with the data shows only when rows come.
    per_row = "(SELECT count(*) FROM range(x * 1000000000000)) > 0"
    v = Validator(suite({"kind": "sql", "predicate": per_row}), data.schema)
    with pytest.raises(InvalidInput, match="ran longer than 0.2 s"):
        v.check_batch(data)


def test_sql_predicate_error_on_the_data_is_invalid_input() -> None:
    data = batch(s=["1", "2", "x"])
    v = Validator(suite({"kind": "sql", "predicate": "CAST(s AS INTEGER) > 0"}), data.schema)
    with pytest.raises(InvalidInput, match="failed on the data"):
        v.check_batch(data)


# --- re-validating stored files ------------------------------------------------------------


def test_validate_files_streams_several_files(tmp_path: Path) -> None:
    files = [
        write(
            tmp_path / f"part-{k}.parquet",
            batch(
                id=list(range(k * 100, k * 100 + 100)),
                score=[float(k)] * 99 + [None],
                ts=pa.array(
                    [NOW.replace(tzinfo=None) - dt.timedelta(hours=k)] * 100, pa.timestamp("us")
                ),
            ),
        )
        for k in range(3)
    ]
    files.append(write(tmp_path / "part-3.parquet", batch(id=[5, 250], score=[-1.0, 1.0])))
    s = suite(
        {"kind": "not_null", "column": "score"},
        {"kind": "range", "column": "score", "min": 0},
        {"kind": "unique", "columns": ["id"]},
        {"kind": "row_count", "min": 300, "max": 302},
        {"kind": "freshness", "column": "ts", "max_age_seconds": 3600},
        {"kind": "sql", "predicate": "id >= 0"},
        policy="quarantine",
    )
    report = validate_files(s, files, now_ms=NOW_MS)
    assert report.rows_checked == 302 and report.quarantined_rows == 0
    assert report.policy == "quarantine" and report.checked_at == NOW_MS
    assert [r.passed for r in report.results] == [False, False, False, True, True, True]
    assert [r.failed_rows for r in report.results] == [3, 1, 4, 0, 0, 0]
    assert report.results[2].message == "2 keys of (id) repeat (4 rows)"
    assert report.results[1].samples[0]["id"] == 5
    assert report.results[0].samples[0]["ts"] is not None  # the file that has the column


def test_validate_files_without_row_checks_reads_only_metadata(tmp_path: Path) -> None:
    files = [write(tmp_path / f"{k}.parquet", batch(a=[k, k + 10])) for k in range(3)]
    report = validate_files(suite({"kind": "row_count", "max": 5}), files, now_ms=NOW_MS)
    assert report.rows_checked == 6 and not report.passed
    assert report.results[0].message == "6 rows, expected at most 5"
    empty = validate_files(suite(), [], now_ms=NOW_MS)
    assert empty.passed and empty.rows_checked == 0 and empty.results == []


# The child validates a CSV that has every kind of bound and value set: read, judged and
# reported, without pandas ever imported (pyarrow's own conversions would import it).
_NO_PANDAS_CHILD = """
import json, sys
import pyarrow.csv as pacsv
from shipyard.datasets.types import ExpectationSuite
from shipyard.datasets.validation import Validator
data = pacsv.read_csv(sys.argv[1])
suite = ExpectationSuite.model_validate({"expectations": json.loads(sys.argv[2])})
v = Validator(suite, data.schema)
for part in data.to_batches():
    v.check_batch(part)
report = v.finish([], rows=data.num_rows, now_ms=0)
print(json.dumps({"pandas": "pandas" in sys.modules,
                  "failed": [r.failed_rows for r in report.results]}))
"""


def test_bounds_and_value_sets_are_built_without_pandas(tmp_path: Path) -> None:
    pytest.importorskip("pandas")  # without it installed, there is nothing to keep out
    csv = tmp_path / "d.csv"
    csv.write_text(
        "n,x,s,d,ts,t\n"
        "1,0.5,red,2024-01-02,2024-01-02T10:00:00,08:00:00\n"
        "7,2.5,blue,2023-12-31,2024-01-01T00:30:00,23:30:00\n"
    )
    expectations = [
        {"kind": "range", "column": "n", "min": 0, "max": 5},
        {"kind": "range", "column": "x", "min": 0.25, "max": 1},
        {"kind": "range", "column": "d", "min": "2024-01-01"},
        {"kind": "range", "column": "ts", "max": "2024-01-01T01:00:00+02:00"},
        {"kind": "range", "column": "t", "max": "12:00:00"},
        {"kind": "allowed_values", "column": "s", "values": ["red", "green"]},
        {"kind": "allowed_values", "column": "n", "values": [1, 2, 3]},
        {"kind": "allowed_values", "column": "x", "values": [0.5, 1]},
        {"kind": "regex", "column": "s", "pattern": "^r"},
    ]
    run = subprocess.run(
        [sys.executable, "-c", _NO_PANDAS_CHILD, str(csv), json.dumps(expectations)],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(run.stdout)
    # The second row breaks each expectation but the timestamp's: 01:00+02:00 is
    # 2023-12-31T23:00 UTC, before both rows.
    assert out == {"pandas": False, "failed": [1, 1, 1, 2, 1, 1, 1, 1, 1]}


def test_judged_by_row_leaves_out_expectations_on_missing_columns() -> None:
    """What a quarantine may move aside: the row-level expectations judged on rows (SQL
    included), not those whose column is missing nor the whole-version ones."""
    v = Validator(
        suite(
            {"kind": "not_null", "column": "x"},
            {"kind": "not_null", "column": "gone"},
            {"kind": "unique", "columns": ["x"]},
            {"kind": "range", "column": "x", "min": 0},
            {"kind": "regex", "column": "gone", "pattern": "a"},
            {"kind": "sql", "predicate": "x > 0"},
        ),
        pa.schema([("x", pa.int64())]),
    )
    assert v.judged_by_row == {0, 3, 5}
    v.close()
