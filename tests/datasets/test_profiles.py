"""Column profiles: exact figures on small tables, mergeable states (merge equals the
profile of the concatenation), the byte format, sketches at a moderate scale, and the
Parquet fast path against the builder."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.client import Client
from shipyard.datasets.arrow_build import numpy_values
from shipyard.datasets.profile_sketches import hash_numbers, hash_strings
from shipyard.datasets.profiles import PartialProfile, ProfileBuilder, profile_parquet
from shipyard.datasets.types import ColumnProfile, Profile, VersionCreate
from shipyard.errors import InvalidInput

QUANTILE_KEYS = ["0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99"]
EXACT_FIELDS = ("name", "type", "kind", "count", "nulls", "null_fraction", "min", "max")


def profile(table: pa.Table, **kw: int) -> PartialProfile:
    builder = ProfileBuilder(table.schema, **kw)
    builder.add(table)
    return builder.partial()


def column(prof: Profile, name: str) -> ColumnProfile:
    return next(c for c in prof.columns if c.name == name)


def exact(c: ColumnProfile) -> tuple[object, ...]:
    return tuple(getattr(c, f) for f in EXACT_FIELDS)


def assert_alike(a: Profile, b: Profile) -> None:
    """Equal but for what comes from quantile sketches, whose compactions are random:
    those within a tenth of the range (a step of a few integers)."""
    assert a.rows == b.rows
    for x, y in zip(a.columns, b.columns, strict=True):
        assert exact(x) == exact(y)
        for f in ("distinct", "top_values", "approximate"):
            assert getattr(x, f) == getattr(y, f)
        for f in ("mean", "std"):
            u, v = getattr(x, f), getattr(y, f)
            assert (u is None and v is None) or u == pytest.approx(v, rel=1e-9, abs=1e-9)
        assert (x.quantiles is None) == (y.quantiles is None)
        if x.quantiles is not None and y.quantiles is not None:
            span = x.histogram.edges[-1] - x.histogram.edges[0] if x.histogram else 1.0
            for key, q in x.quantiles.items():
                assert abs(q - y.quantiles[key]) <= 0.1 * span
            assert sum(x.histogram.counts) == sum(y.histogram.counts)


def small_table() -> pa.Table:
    return pa.table(
        {
            "i": pa.array([3, 1, None, 4, 1, 5], pa.int64()),
            "f": pa.array([2.5, None, -1.0, 0.5, 8.0, None]),
            "s": pa.array(["pear", "apple", None, "fig", "apple", "apple"]),
            "b": pa.array([True, False, None, True, True, None]),
            "ts": pa.array(
                [
                    dt.datetime(2024, 1, 2, 3, 4, 5, 600000),
                    None,
                    dt.datetime(2023, 6, 1),
                    dt.datetime(2024, 1, 2),
                    None,
                    None,
                ],
                pa.timestamp("us", "UTC"),
            ),
            "d": pa.array([dt.date(2024, 2, 29), None, dt.date(1999, 12, 31), None, None, None]),
        }
    )


# --- exact figures -------------------------------------------------------------------------


def test_small_table_has_exact_figures() -> None:
    prof = profile(small_table()).finish()
    assert prof.rows == 6
    assert [c.name for c in prof.columns] == ["i", "f", "s", "b", "ts", "d"]

    i = column(prof, "i")
    values = np.array([3, 1, 4, 1, 5])
    assert (i.kind, i.count, i.nulls, i.min, i.max) == ("integer", 5, 1, 1, 5)
    assert i.null_fraction == pytest.approx(1 / 6)
    assert i.mean == pytest.approx(values.mean())
    assert i.std == pytest.approx(values.std())
    assert i.distinct == 4
    assert [(v.value, v.count) for v in i.top_values] == [(1, 2), (3, 1), (4, 1), (5, 1)]
    assert list(i.quantiles) == QUANTILE_KEYS
    assert i.quantiles["0.5"] == 3
    assert i.approximate is False

    f = column(prof, "f")
    assert (f.kind, f.count, f.nulls, f.min, f.max) == ("float", 4, 2, -1.0, 8.0)
    assert f.mean == pytest.approx(np.mean([2.5, -1.0, 0.5, 8.0]))
    assert f.std == pytest.approx(np.std([2.5, -1.0, 0.5, 8.0]))
    assert f.top_values == []  # frequent values are for strings, booleans and integers
    assert f.histogram is not None and sum(f.histogram.counts) == 4
    assert len(f.histogram.edges) == 21 and f.histogram.edges[0] == -1.0
    assert f.histogram.edges[-1] == 8.0
    assert f.histogram.counts[0] == 1 and f.histogram.counts[-1] == 1

    s = column(prof, "s")
    assert (s.kind, s.count, s.nulls, s.distinct) == ("string", 5, 1, 3)
    assert (s.min, s.max) == ("apple", "pear")
    assert [(v.value, v.count) for v in s.top_values] == [("apple", 3), ("fig", 1), ("pear", 1)]
    assert s.mean is None and s.quantiles is None and s.approximate is False

    b = column(prof, "b")
    assert (b.kind, b.count, b.nulls, b.min, b.max, b.distinct) == ("boolean", 4, 2, False, True, 2)
    assert b.mean == 0.75 and b.std == pytest.approx(math.sqrt(0.75 * 0.25))
    assert [(v.value, v.count) for v in b.top_values] == [(True, 3), (False, 1)]

    ts = column(prof, "ts")
    assert (ts.kind, ts.count, ts.nulls) == ("temporal", 3, 3)
    assert (ts.min, ts.max) == ("2023-06-01T00:00:00Z", "2024-01-02T03:04:05.600Z")
    assert ts.distinct == 3 and ts.mean is None
    epoch = dt.datetime(2024, 1, 2, tzinfo=dt.UTC).timestamp()
    assert ts.quantiles is not None and ts.quantiles["0.5"] == epoch  # epoch seconds

    d = column(prof, "d")
    assert (d.kind, d.min, d.max, d.count) == ("temporal", "1999-12-31", "2024-02-29", 2)


def test_nan_is_a_value_but_not_in_min_max_mean() -> None:
    values = [1.0, float("nan"), float("inf"), -2.0, float("nan"), float("-inf"), 4.0, None]
    c = profile(pa.table({"x": pa.array(values)})).finish().columns[0]
    assert (c.count, c.nulls) == (7, 1)
    assert (c.min, c.max) == (float("-inf"), float("inf"))  # true extremes
    assert c.mean == pytest.approx(1.0)  # finite values only
    assert c.std == pytest.approx(np.std([1.0, -2.0, 4.0]))
    assert c.distinct == 6  # 1, nan, inf, -2, -inf, 4
    assert c.quantiles is not None and c.quantiles["0.01"] == -2.0
    assert c.quantiles["0.99"] == 4.0
    assert c.histogram is not None and sum(c.histogram.counts) == 3
    assert (c.histogram.edges[0], c.histogram.edges[-1]) == (-2.0, 4.0)

    only_nan = profile(pa.table({"x": [float("nan")] * 3})).finish().columns[0]
    assert (only_nan.count, only_nan.min, only_nan.max, only_nan.mean) == (3, None, None, None)
    assert only_nan.distinct == 1 and only_nan.quantiles is None


def test_infinite_figures_survive_json_inside_the_version_that_holds_them() -> None:
    prof = profile(pa.table({"x": [float("inf"), 1.0], "y": [float("-inf"), 2.0]})).finish()
    detail = VersionCreate(files=[], columns=[], profile=prof)
    back = VersionCreate.model_validate_json(detail.model_dump_json()).profile
    assert back is not None
    assert [(c.min, c.max) for c in back.columns] == [(1.0, math.inf), (-math.inf, 2.0)]
    assert '"max":"Infinity"' in Profile(rows=2, columns=prof.columns[:1]).model_dump_json()


@pytest.mark.parametrize(
    "values",
    [[-1e308, 0.0, 1e308], [-1.7e308, 1.7e308, 0.0], [1.0, math.nextafter(1.0, 2.0)] * 3],
)
def test_a_histogram_over_any_finite_range(values: list[float]) -> None:
    """Near the limits of a double, ``hi - lo`` overflows (the edges were inf and nan, and
    profiling failed); a range a few units in the last place wide holds no 20 edges."""
    c = profile(pa.table({"x": values})).finish().columns[0]
    assert c.histogram is not None and sum(c.histogram.counts) == len(values)
    edges = c.histogram.edges
    assert (edges[0], edges[-1]) == (min(values), max(values))
    assert all(math.isfinite(e) for e in edges) and all(np.diff(edges) > 0)


def test_negative_zero_is_zero() -> None:
    c = profile(pa.table({"x": [0.0, -0.0, 0.0, 1.0]})).finish().columns[0]
    assert c.distinct == 2


def test_empty_table_and_all_null_columns() -> None:
    schema = pa.schema(
        [("i", pa.int64()), ("s", pa.string()), ("t", pa.timestamp("ms")), ("n", pa.null())]
    )
    empty = PartialProfile.empty(schema).finish()
    assert empty.rows == 0
    for c in empty.columns:
        assert (c.count, c.nulls, c.null_fraction, c.min, c.distinct) == (0, 0, 0.0, None, None)
        assert c.quantiles is None and c.histogram is None and c.top_values == []
    assert profile(schema.empty_table()).finish() == empty

    nulls = pa.table({name: pa.nulls(4, schema.field(name).type) for name in schema.names})
    prof = profile(nulls).finish()
    assert prof.rows == 4
    for c in prof.columns:
        assert (c.count, c.nulls, c.null_fraction) == (0, 4, 1.0)
        assert c.min is None and c.max is None and c.mean is None and c.distinct is None
    assert column(prof, "n").kind == "other"


def test_temporal_types_render_as_iso_8601() -> None:
    table = pa.table(
        {
            "paris": pa.array([1_700_000_000_123_456_789], pa.timestamp("ns", "Europe/Paris")),
            "naive": pa.array([0], pa.timestamp("s")),
            "offset": pa.array([86_400_000], pa.timestamp("ms", "+05:30")),
            "date64": pa.array([dt.date(2020, 1, 31)], pa.date64()),
            "time": pa.array([dt.time(1, 2, 3, 500)], pa.time64("us")),
            "dur": pa.array([-1500], pa.duration("ms")),
        }
    )
    prof = profile(table).finish()
    got = {c.name: c.min for c in prof.columns}
    assert got == {
        "paris": "2023-11-14T23:13:20.123456789+01:00",
        "naive": "1970-01-01T00:00:00",
        "offset": "1970-01-02T05:30:00+05:30",
        "date64": "2020-01-31",
        "time": "01:02:03.000500",
        "dur": "-PT1.5S",
    }
    assert all(c.kind == "temporal" for c in prof.columns)


def test_long_strings_are_cut_and_compared_as_code_points() -> None:
    long = "z" * 300
    c = profile(pa.table({"s": ["b", long, "é", "a"]})).finish().columns[0]
    assert c.min == "a" and c.max == "é"  # U+00E9 sorts after "z"
    c = profile(pa.table({"s": [long, long + "!"]})).finish().columns[0]
    assert c.min == c.max == "z" * 200
    assert c.distinct == 2  # distinct counts look at whole values


def test_string_encodings_profile_alike() -> None:
    words = ["kiwi", None, "plum", "kiwi", "", "lime"] * 5
    plain = profile(pa.table({"s": pa.array(words)})).finish().columns[0]
    for arr in (
        pa.array(words, pa.large_string()),
        pa.array(words, pa.string_view()),
        pa.array(words).dictionary_encode(),
    ):
        other = profile(pa.table({"s": arr})).finish().columns[0]
        assert exact(other)[2:] == exact(plain)[2:]
        assert (other.distinct, other.top_values) == (plain.distinct, plain.top_values)


# --- merging -------------------------------------------------------------------------------


def mixed_table(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    nulls = rng.random(n) < 0.1
    return pa.table(
        {
            "x": pa.array(rng.normal(10, 3, n), mask=nulls),
            "k": pa.array(rng.integers(0, 20, n)),
            "id": pa.array(np.arange(n) + seed * n),
            "s": pa.array(rng.choice(["red", "green", "blue"], n)),
            "t": pa.array(rng.integers(0, 10**12, n), pa.timestamp("ms")),
            "ok": pa.array(rng.random(n) < 0.3),
        }
    )


def test_merge_equals_profile_of_concatenation() -> None:
    parts = [mixed_table(n, seed) for seed, n in enumerate((40_000, 25_000, 7, 30_000))]
    whole = profile(pa.concat_tables(parts)).finish()
    merged = PartialProfile.merge_all([profile(p) for p in parts]).finish()
    assert merged.rows == whole.rows == 95_007
    for a, b in zip(merged.columns, whole.columns, strict=True):
        assert exact(a) == exact(b)
        if a.mean is not None:
            assert a.mean == pytest.approx(b.mean, rel=1e-12)
            assert a.std == pytest.approx(b.std, rel=1e-9)
    for name in ("k", "s", "ok"):  # few values: exact distinct and counts
        a, b = column(merged, name), column(whole, name)
        assert a.distinct == b.distinct and a.top_values == b.top_values
    assert not column(merged, "s").approximate and not column(merged, "ok").approximate
    assert column(merged, "k").approximate  # its quantiles come from samples of big batches
    ids, truth = column(merged, "id"), len(np.unique(pa.concat_tables(parts)["id"]))
    assert ids.approximate and abs(ids.distinct - truth) / truth < 0.05
    x, values = column(merged, "x"), pa.concat_tables(parts)["x"].drop_null().to_numpy()
    for key, q in x.quantiles.items():
        assert abs(np.mean(values <= q) - float(key)) < 0.03  # rank error of a KLL sketch
    assert sum(x.histogram.counts) == x.count


def test_merge_is_associative_and_leaves_parts_alone() -> None:
    a, b, c = (profile(mixed_table(3_000, seed)) for seed in range(3))
    before = a.finish()
    assert_alike(a.merge(b).merge(c).finish(), a.merge(b.merge(c)).finish())
    assert_alike(a.merge(b).merge(c).finish(), PartialProfile.merge_all([c, a, b]).finish())
    assert a.finish() == before


def test_column_in_one_side_only_counts_the_other_rows_as_nulls() -> None:
    old = profile(pa.table({"a": [1, 2, 3], "b": ["x", "y", None]}))
    new = profile(pa.table({"a": [4, 5], "c": [1.5, None]}))
    merged = old.merge(new)
    assert merged.columns == ["a", "b", "c"]
    prof = merged.finish()
    assert prof.rows == 5
    a, b, c = prof.columns
    assert (a.count, a.nulls, a.min, a.max, a.distinct) == (5, 0, 1, 5, 5)
    assert (b.count, b.nulls, b.null_fraction, b.distinct) == (2, 3, 0.6, 2)
    assert (c.count, c.nulls, c.mean) == (1, 4, 1.5)
    assert [(v.value, v.count) for v in b.top_values] == [("x", 1), ("y", 1)]


def test_same_name_different_types_is_refused() -> None:
    ints = profile(pa.table({"a": [1, 2]}))
    strings = profile(pa.table({"a": ["1", "2"]}))
    with pytest.raises(InvalidInput, match="different types"):
        ints.merge(strings)
    ms = profile(pa.table({"a": pa.array([1], pa.timestamp("ms"))}))
    us = profile(pa.table({"a": pa.array([1], pa.timestamp("us"))}))
    with pytest.raises(InvalidInput):
        PartialProfile.merge_all([us, ms])
    assert ints.finish().columns[0].max == 2  # nothing changed


def test_builder_refuses_other_schemas_and_changes_nothing() -> None:
    builder = ProfileBuilder(pa.schema([("a", pa.int64())]))
    builder.add(pa.table({"a": [1, 2]}))
    with pytest.raises(InvalidInput):
        builder.add(pa.table({"a": ["x"]}))
    with pytest.raises(InvalidInput):
        builder.add(pa.table({"b": [1]}))
    with pytest.raises(InvalidInput):
        builder.add([1, 2])  # type: ignore[arg-type]
    assert builder.partial().finish().rows == 2
    with pytest.raises(InvalidInput):
        PartialProfile.empty(pa.schema([("a", pa.int64()), ("a", pa.string())]))


def test_partial_is_a_snapshot_and_threads_do_not_change_results() -> None:
    table = mixed_table(70_000, 5)
    builder = ProfileBuilder(table.schema, threads=1)
    builder.add(table.slice(0, 1000))
    snap = builder.partial()
    before = snap.finish()
    builder.add(table.slice(1000))
    assert snap.finish() == before
    assert_alike(profile(table.slice(0, 1000)).finish(), before)
    two = ProfileBuilder(table.schema, threads=2)
    two.add(table.slice(0, 1000))
    two.add(table.slice(1000))
    assert_alike(two.partial().finish(), builder.partial().finish())


# --- bytes ---------------------------------------------------------------------------------


def test_bytes_round_trip() -> None:
    part = profile(pa.concat_tables([small_table()] * 3))
    data = part.to_bytes()
    assert data.startswith(b"SHPYPRF")
    back = PartialProfile.from_bytes(data)
    assert back.rows == part.rows and back.columns == part.columns
    assert back.finish() == part.finish()
    assert PartialProfile.from_bytes(back.to_bytes()).finish() == part.finish()
    big = profile(mixed_table(50_000, 1))
    assert PartialProfile.from_bytes(big.to_bytes()).finish() == big.finish()
    merged = PartialProfile.merge_all([PartialProfile.from_bytes(big.to_bytes()), big]).finish()
    assert_alike(merged, big.merge(big).finish())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        bytes(range(256)),
        b"SHPYPRF",
        b"SHPYPRF\x01\xff\xff\xff\xff",
        b"SHPYPRF\x01\x05\x00\x00\x00{oops",
        b"\x80\x04\x95pickle",
    ],
)
def test_garbage_bytes_are_invalid_input(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        PartialProfile.from_bytes(data)


def test_unknown_format_version_is_invalid_input() -> None:
    data = bytearray(profile(small_table()).to_bytes())
    data[7] = 99
    with pytest.raises(InvalidInput, match="format 99"):
        PartialProfile.from_bytes(bytes(data))


def test_corrupt_states_are_invalid_input() -> None:
    data = profile(mixed_table(2_000, 3)).to_bytes()
    head_end = 12 + int.from_bytes(data[8:12], "little")
    head, blob = data[12:head_end], data[head_end:]

    def with_head(new: bytes) -> bytes:
        return data[:8] + len(new).to_bytes(4, "little") + new + blob

    bad_heads = [
        head.replace(b'"integer"', b'"imaginary"', 1),  # unknown kind
        head.replace(b',"int64",', b',"int64","extra",', 1),  # record of the wrong shape
        head.replace(b'"rows":2000', b'"rows":1999', 1),  # counts do not add up
        head.replace(b'"rows":2000', b'"rows":"many"', 1),
    ]
    for bad in bad_heads:
        assert bad != head
        with pytest.raises(InvalidInput):
            PartialProfile.from_bytes(with_head(bad)).finish()
    torn = data[:8] + data[8:12] + head + blob[: len(blob) // 2]  # sketches cut short
    with pytest.raises(InvalidInput):
        PartialProfile.from_bytes(torn).finish()
    with pytest.raises(InvalidInput):
        PartialProfile.merge_all([PartialProfile.from_bytes(torn)])


def test_state_stays_small() -> None:
    rng = np.random.default_rng(0)
    part = profile(pa.table({"x": rng.normal(size=200_000)}))
    assert len(part.to_bytes()) < 12_000


# --- sketches at scale ---------------------------------------------------------------------


def test_frequent_values_of_a_high_cardinality_integer_column() -> None:
    rng = np.random.default_rng(3)
    n = 200_000
    x = rng.integers(0, 10**9, n)
    x[rng.random(n) < 0.3] = -1  # a sentinel among a million-odd ids
    c = profile(pa.table({"x": x})).finish().columns[0]
    assert c.approximate and [v.value for v in c.top_values] == [-1]
    assert abs(c.top_values[0].count - int((x == -1).sum())) / n < 0.02


def test_high_cardinality_estimates() -> None:
    rng = np.random.default_rng(7)
    n = 300_000
    ints = rng.integers(0, 10**12, n)
    words = np.char.add("user-", rng.integers(0, 10**6, n).astype(str))
    draws = np.random.default_rng(8)
    prof = profile(pa.table({"i": ints, "w": words, "x": draws.exponential(2.0, n)})).finish()
    for name, truth in (("i", len(np.unique(ints))), ("w", len(np.unique(words)))):
        c = column(prof, name)
        assert c.approximate and abs(c.distinct - truth) / truth < 0.05
    x, values = column(prof, "x"), np.random.default_rng(8).exponential(2.0, n)
    assert x.quantiles is not None
    for key, q in x.quantiles.items():
        assert abs(np.mean(values <= q) - float(key)) < 0.03
    assert column(prof, "w").top_values == []  # nothing is frequent


def test_quantiles_of_a_long_stream_past_the_lighter_sampling() -> None:
    """Past a million values a column's batches feed its quantile sketch a quarter as
    many values; the quantiles stay within the sketch's own error. The stream drifts
    (its later batches hold larger values), so a sample that weighed the lightly
    sampled batches wrong would show."""
    rng = np.random.default_rng(11)
    builder = ProfileBuilder(pa.schema([("x", pa.float64())]))
    parts = []
    for k in range(32):  # 2.9M values in batches of ~90k, as from a CSV
        part = rng.normal(k / 8, 1.0, 90_000)
        parts.append(part)
        builder.add(pa.record_batch([pa.array(part)], names=["x"]))
    values = np.concatenate(parts)
    x = column(builder.partial().finish(), "x")
    assert x.quantiles is not None and x.count == len(values)
    for key, q in x.quantiles.items():
        assert abs(np.mean(values <= q) - float(key)) < 0.02, key


def test_frequent_values_survive_a_high_cardinality_column() -> None:
    rng = np.random.default_rng(3)
    n = 100_000
    words = np.where(rng.random(n) < 0.3, "unknown", np.char.add("u", np.arange(n).astype(str)))
    c = profile(pa.table({"w": words})).finish().columns[0]
    top = c.top_values[0]
    assert top.value == "unknown" and abs(top.count - np.sum(words == "unknown")) < 0.1 * n * 0.3
    assert c.approximate


def test_hashes_never_change() -> None:
    # The hashes are part of the stored format: old states merge with new ones.
    assert hash_numbers(np.array([0, 1, -1], np.int64)).tolist() == [
        0,
        12994781566227106604,
        7256831767414464289,
    ]
    assert hash_numbers(np.array([1.5, -0.0, np.nan])).tolist() == (
        hash_numbers(np.array([1.5, 0.0, -np.nan])).tolist()
    )
    got = hash_strings(pa.array(["", "a", "hello world!", "x" * 300])).tolist()
    assert got == [0, 9481746186512598051, 14632481587427152128, 10260777139900957614]
    assert hash_strings(pa.array(["a", "hello world!"], pa.large_binary())).tolist() == got[1:3]


# --- Parquet fast path ---------------------------------------------------------------------


def test_profile_parquet_agrees_with_builder(tmp_path: Path) -> None:
    table = mixed_table(30_000, 9).append_column(
        "d", pa.array(np.arange(30_000, dtype=np.int32), pa.date32())
    )
    table = table.append_column("tags", pa.array([[1]] * 30_000))  # nested: read whole
    stamps = 1_700_000_000_123_456_789 + np.arange(30_000) * 7  # exact to the nanosecond
    table = table.append_column("ns", pa.array(stamps, pa.timestamp("ns", "UTC")))
    path = tmp_path / "part.parquet"
    pq.write_table(table, path, row_group_size=7_000)
    table = pq.read_table(path)  # as Parquet keeps it (list fields are renamed)
    built = profile(table).finish()
    for source in (path, str(path), path.read_bytes(), pa.OSFile(str(path))):
        part, schema = profile_parquet(source)
        assert schema.equals(table.schema)
        fast = part.finish()
        assert fast.rows == built.rows
        for a, b in zip(fast.columns, built.columns, strict=True):
            assert exact(a) == exact(b), a.name
            if b.mean is not None and a.name != "ok":
                assert a.mean == pytest.approx(b.mean, rel=0.1, abs=0.2)
        assert column(fast, "x").approximate and not column(fast, "tags").approximate
        assert column(fast, "s").distinct == 3
        assert {v.value for v in column(fast, "s").top_values} == {"red", "green", "blue"}
    footer_only = profile_parquet(path, sample_rows=0)[0].finish()
    assert [exact(c) for c in footer_only.columns] == [exact(c) for c in built.columns]
    assert column(footer_only, "x").quantiles is None
    assert column(footer_only, "x").distinct is None


def test_small_parquet_file_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "small.parquet"
    pq.write_table(small_table(), path)
    part, _ = profile_parquet(path)
    assert part.finish() == profile(small_table()).finish()


def test_sampled_and_footer_only_parts_merge(tmp_path: Path) -> None:
    tables = [mixed_table(20_000, seed) for seed in range(3)]
    parts = []
    for k, table in enumerate(tables):
        path = tmp_path / f"{k}.parquet"
        pq.write_table(table, path)
        parts.append(profile_parquet(path, sample_rows=0 if k else 512)[0])
    merged = PartialProfile.merge_all(parts).finish()
    whole = profile(pa.concat_tables(tables)).finish()
    assert [exact(c) for c in merged.columns] == [exact(c) for c in whole.columns]
    s = column(merged, "s")
    assert abs(sum(v.count for v in s.top_values) - s.count) < 0.1 * s.count  # scaled up
    ids = column(merged, "id")
    assert abs(ids.distinct - 60_000) / 60_000 < 0.3  # extrapolated from one sample


def test_profile_parquet_refuses_what_is_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "not.parquet"
    path.write_text("a,b\n1,2\n")
    for source in (path, b"PAR1 nothing here", tmp_path / "missing.parquet"):
        with pytest.raises(InvalidInput):
            profile_parquet(source)


@pytest.mark.parametrize(
    "arr",
    [
        pa.array(np.arange(-5, 20, dtype=np.int8)),
        pa.array(np.arange(1000, dtype=np.uint64) * 7919),
        pa.array(np.linspace(-1.0, 1.0, 33, dtype=np.float32)),
        pa.array(np.linspace(-1e300, 1e300, 50)).slice(7, 20),  # a view with an offset
        pa.array([1, None, 3], pa.int32()),  # nulls: converted, not viewed
        pa.array([True, False, True]),  # bit-packed: converted
    ],
    ids=["int8", "uint64", "float32", "sliced-float64", "nulls", "bool"],
)
def test_numpy_values_match_pyarrows_conversion(arr: pa.Array) -> None:
    got = numpy_values(arr)
    want = arr.to_numpy(zero_copy_only=False)
    assert got.dtype == want.dtype and len(got) == len(arr)
    np.testing.assert_array_equal(got, want)


# --- Parquet samples of sorted data --------------------------------------------------------


def sorted_table(rows: int) -> pa.Table:
    """Ids and times in order, cities in runs (an export sorted by them), random noise."""
    ids = np.arange(rows)
    cities = np.array(["kyiv", "lima", "oslo", "pune", "rome"])
    return pa.table(
        {
            "id": ids,
            "at": pa.array(1_700_000_000 + ids * 60, pa.timestamp("s")),
            "city": cities[ids * len(cities) // rows],
            "x": np.random.default_rng(3).normal(size=rows),
        }
    )


def assert_near(got: ColumnProfile, truth: np.ndarray) -> None:
    """A sampled column's figures near the truth: mean and std within 2% of the column's
    range, quantiles within 3% of rank, at most 10% of the histogram's rows in the wrong
    bins."""
    span = float(truth.max() - truth.min())
    if got.mean is not None:
        assert got.mean == pytest.approx(truth.mean(), abs=0.02 * span), got.name
        assert got.std == pytest.approx(truth.std(), abs=0.02 * span), got.name
    assert got.quantiles is not None and got.histogram is not None
    ordered = np.sort(truth)
    for q, value in got.quantiles.items():
        rank = np.searchsorted(ordered, value) / len(ordered)
        assert rank == pytest.approx(float(q), abs=0.03), (got.name, q, value)
    want, _ = np.histogram(truth, bins=got.histogram.edges)
    misplaced = np.abs(np.array(got.histogram.counts) - want).sum() / 2
    assert misplaced <= 0.1 * len(truth), (got.name, got.histogram.counts)


def assert_like_the_truth(prof: Profile, table: pa.Table) -> None:
    for name in ("id", "at", "x"):
        arr = table.column(name).combine_chunks()
        raw = arr.view(pa.int64()) if name == "at" else arr  # in seconds, as profiles are
        assert_near(column(prof, name), numpy_values(raw).astype(np.float64))
    city = column(prof, "city")
    assert city.distinct == 5
    shares = {v.value: v.count / city.count for v in city.top_values}
    assert shares == pytest.approx(
        dict.fromkeys(["kyiv", "lima", "oslo", "pune", "rome"], 0.2), abs=0.05
    )


def test_a_sorted_parquet_file_is_sampled_from_all_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit's case: one row group, sorted by id and time. Its first rows span 1/256
    of the ids (every row fell in the first histogram bin, the mean was 1,952 for
    499,999.5): those columns are sampled from every row instead."""
    table = sorted_table(1_000_000)
    path = tmp_path / "sorted.parquet"
    pq.write_table(table, path)
    assert pq.ParquetFile(path).metadata.num_row_groups == 1

    prof = profile_parquet(path)[0].finish()

    assert_like_the_truth(prof, table)
    assert prof.rows == 1_000_000 and column(prof, "id").min == 0
    assert column(prof, "id").max == 999_999 and column(prof, "id").approximate

    # Random data keeps the fast path: the first rows of row groups, nothing read whole.
    shuffled = table.take(np.random.default_rng(4).permutation(table.num_rows))
    for groups in (1, 20):  # with more row groups than are sampled, too
        pq.write_table(shuffled, path, row_group_size=-(-table.num_rows // groups))
        with monkeypatch.context() as m:
            m.setattr(pq.ParquetFile, "read_row_group", None)  # would fail if called
            assert_like_the_truth(profile_parquet(path)[0].finish(), shuffled)


def test_sorted_parquet_in_many_small_row_groups(tmp_path: Path) -> None:
    """Eight of 1,000 row groups are sampled, each nearly whole: the ranges of the others
    (from the footer) hold no sampled value, so those columns are sampled again."""
    table = sorted_table(200_000)
    path = tmp_path / "groups.parquet"
    pq.write_table(table, path, row_group_size=200)
    assert_like_the_truth(profile_parquet(path)[0].finish(), table)


def test_the_profile_of_an_ingested_sorted_parquet_file(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"id": np.arange(1_000_000)}), path)
    client.datasets.ingest("t", path)

    detail = client.datasets.get_version("t")
    assert detail.profile is not None
    assert_near(detail.profile.columns[0], np.arange(1_000_000, dtype=np.float64))
