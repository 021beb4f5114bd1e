"""Differences between two versions of a dataset.

Three layers, cheapest first: the schema and the per-column profile figures come from the
versions' stored metadata alone; the row diff (given key columns) joins the two versions'
Parquet files in DuckDB, which spills to disk past its memory limit, so versions larger than
memory diff without ever being loaded whole.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import uuid
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.datasets import duck
from shipyard.datasets.types import (
    ColumnChange,
    ColumnProfile,
    ColumnSchema,
    DatasetVersion,
    FrequentValue,
    Histogram,
    Profile,
    RowDiff,
    SchemaChange,
    VersionDiff,
)
from shipyard.errors import InvalidInput

MAX_SAMPLES = 1000
_PSI_EPSILON = 1e-4  # stands in for an empty bin's share, so the logarithm stays finite
_PSI_BINS = 10  # deciles of the old distribution: the usual PSI binning
# Below this a PSI alone does not make a column "changed": sketches of the same data
# (randomized quantile sketches, different file orders) can differ by about this much.
_PSI_NOTICE = 0.01

# --- schema ------------------------------------------------------------------------------


def _logical(arrow_type: str) -> str:
    """An Arrow type's text without the width of its offsets: ``large_string`` holds what
    ``string`` holds (pandas writes one, a CSV reader the other; Parquet stores both
    alike), so a new version read from another format is no type change."""
    for large, plain in (("large_string", "string"), ("large_binary", "binary")):
        arrow_type = arrow_type.replace(large, plain)
    return arrow_type.replace("large_list<", "list<")


def schema_changes(old: Sequence[ColumnSchema], new: Sequence[ColumnSchema]) -> list[SchemaChange]:
    """Columns removed, changed in type or nullability (in the old order), then added (in
    the new order)."""
    new_by_name = {c.name: c for c in new}
    old_names = {c.name for c in old}
    changes: list[SchemaChange] = []
    for col in old:
        now = new_by_name.get(col.name)
        if now is None:
            changes.append(SchemaChange(column=col.name, change="removed", old=col.type))
            continue
        if _logical(now.type) != _logical(col.type):
            changes.append(
                SchemaChange(column=col.name, change="type_changed", old=col.type, new=now.type)
            )
        if now.nullable != col.nullable:
            changes.append(
                SchemaChange(
                    column=col.name,
                    change="nullability_changed",
                    old=_nullability(col.nullable),
                    new=_nullability(now.nullable),
                )
            )
    changes.extend(
        SchemaChange(column=c.name, change="added", new=c.type)
        for c in new
        if c.name not in old_names
    )
    return changes


def _nullability(nullable: bool) -> str:
    return "nullable" if nullable else "not null"


# --- profiles ----------------------------------------------------------------------------


def column_changes(old: Profile | None, new: Profile | None) -> list[ColumnChange]:
    """How each column present in both profiles moved: the figures that differ as
    (old, new) pairs, and the population stability index of its distribution. Columns
    whose figures are all equal (and whose PSI is negligible) are left out."""
    if old is None or new is None:
        return []
    old_by_name = {c.name: c for c in old.columns}
    changes: list[ColumnChange] = []
    for now in new.columns:
        was = old_by_name.get(now.name)
        if was is None:
            continue
        moved: dict[str, tuple[Any, Any]] = {}
        for field in ("null_fraction", "distinct", "mean", "std", "min", "max"):
            a, b = getattr(was, field), getattr(now, field)
            if not _same_figure(a, b):
                moved[field] = (a, b)
        psi = population_stability(was, now)
        if moved or (psi is not None and psi >= _PSI_NOTICE):
            changes.append(ColumnChange(column=now.name, psi=psi, **moved))
    return changes


def _same_figure(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        if math.isnan(a) and math.isnan(b):
            return True
        # Exact statistics summed in another file order differ in the last bits.
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def population_stability(old: ColumnProfile, new: ColumnProfile) -> float | None:
    """PSI of ``new`` against ``old``: over their histograms when both have one (numeric
    columns), else over their frequent values; None when neither can be compared."""
    if old.histogram is not None and new.histogram is not None:
        return _histogram_psi(old.histogram, new.histogram)
    if old.histogram is None and new.histogram is None and (old.top_values or new.top_values):
        return _frequency_psi(old.count, old.top_values, new.count, new.top_values)
    return None


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI between two vectors of shares over the same buckets."""
    e = np.maximum(expected, _PSI_EPSILON)
    a = np.maximum(actual, _PSI_EPSILON)
    # Each term is >= 0 (both factors share a sign), so rounding cannot make it negative.
    return float(np.sum((a - e) * np.log(a / e)))


def _histogram_psi(old: Histogram, new: Histogram) -> float | None:
    old_edges, old_counts = _histogram_arrays(old)
    new_edges, new_counts = _histogram_arrays(new)
    if old_counts is None or new_counts is None:
        return None
    # Common edges: the deciles of the old distribution, open-ended at both sides, so
    # values the new version holds outside the old range still land in a bucket.
    qs = np.arange(1, _PSI_BINS) / _PSI_BINS
    inner = np.unique(_quantiles(old_edges, old_counts, qs))
    shares = []
    for edges, counts in ((old_edges, old_counts), (new_edges, new_counts)):
        cdf = _cdf(edges, counts, inner)
        shares.append(np.diff(np.concatenate(([0.0], cdf, [1.0]))))
    return _psi(shares[0], shares[1])


def _histogram_arrays(h: Histogram) -> tuple[np.ndarray, np.ndarray | None]:
    edges = np.asarray(h.edges, dtype=np.float64)
    counts = np.asarray(h.counts, dtype=np.float64)
    usable = (
        len(edges) == len(counts) + 1
        and len(counts) > 0
        and np.all(np.isfinite(edges))
        and np.all(np.diff(edges) >= 0)
        and np.all(counts >= 0)
        and counts.sum() > 0
    )
    return edges, (counts if usable else None)


def _cdf(edges: np.ndarray, counts: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Share of the values <= each x, taking values as spread evenly inside each bin (and
    a zero-width bin as all its values at one point)."""
    lo, hi = edges[:-1], edges[1:]
    width = hi - lo
    x = xs[:, None]
    spread = np.clip((x - lo) / np.where(width > 0, width, 1.0), 0.0, 1.0)
    frac = np.where(width > 0, spread, (x >= lo).astype(np.float64))
    return np.clip((frac * counts).sum(axis=1) / counts.sum(), 0.0, 1.0)


def _quantiles(edges: np.ndarray, counts: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """The inverse of :func:`_cdf` at each share in ``qs`` (0 < q < 1)."""
    cum = np.concatenate(([0.0], np.cumsum(counts))) / counts.sum()
    # The bin where the cumulative share first reaches q; it holds values (cum rises).
    i = np.clip(np.searchsorted(cum, qs, side="left"), 1, len(counts))
    c0, c1 = cum[i - 1], cum[i]
    step = np.where(c1 > c0, (qs - c0) / np.where(c1 > c0, c1 - c0, 1.0), 0.0)
    return edges[i - 1] + step * (edges[i] - edges[i - 1])


def _frequency_psi(
    old_count: int,
    old_top: Sequence[FrequentValue],
    new_count: int,
    new_top: Sequence[FrequentValue],
) -> float | None:
    if old_count <= 0 or new_count <= 0:
        return None
    old_known = {_value_key(f.value): f.count for f in old_top}
    new_known = {_value_key(f.value): f.count for f in new_top}
    values = list(dict.fromkeys([*old_known, *new_known]))
    buckets = []
    for count, known in ((old_count, old_known), (new_count, new_known)):
        listed = [known.get(v) for v in values]
        rest = max(0, count - sum(known.values()))
        # A value missing from a truncated frequent-values list was seen at most as often
        # as the rarest value listed (and no more than the rest holds): taking that upper
        # bound keeps a long tail of rare values that happen to differ between the two
        # lists from reading as drift. A complete list (rest == 0) really lacks it.
        ceiling = min(known.values(), default=0)
        shares = []
        for c in listed:
            if c is None:
                c = min(ceiling, rest)
                rest -= c
            shares.append(c)
        shares.append(rest)  # the "other" bucket
        buckets.append(np.asarray(shares, dtype=np.float64) / count)
    return _psi(buckets[0], buckets[1])


def _value_key(value: Any) -> str:
    # Frequent values are JSON values (possibly lists); repr tells 1, 1.0, "1" and True apart.
    return repr(value)


# --- rows --------------------------------------------------------------------------------


def row_diff(
    old_files: Sequence[Path],
    new_files: Sequence[Path],
    keys: Sequence[str],
    *,
    samples: int = 5,
    temp_directory: Path | None = None,
) -> RowDiff:
    """Rows added, removed and changed between two versions matched on ``keys``.

    One DuckDB full outer join counts every kind of row and the changed values of each
    column found in both versions, and keeps the ``samples`` rows of each kind with the
    smallest keys (null keys last). Keys must exist in both versions and be unique in each
    (nulls in a key match each other). NaN equals NaN; a null becoming a value (or back) is
    a change. Values of a column whose type changed are compared as DuckDB compares the two
    types (int64 with double), or as text when it cannot (int64 with string).
    """
    keys = _check_keys(keys)
    if not 0 <= samples <= MAX_SAMPLES:
        raise InvalidInput(f"samples must be between 0 and {MAX_SAMPLES}, not {samples}")
    if not old_files and not new_files:
        return RowDiff(keys=keys, added=0, removed=0, changed=0, unchanged=0, changed_columns={})
    conn = duck.reader(temp_directory=temp_directory)
    try:
        # A version without files reads as the other one's columns with no rows.
        some = duck.parquet_scan(old_files or new_files)
        none = f"(SELECT * FROM {some} WHERE false)"  # noqa: S608
        old_scan = duck.parquet_scan(old_files) if old_files else none
        new_scan = duck.parquet_scan(new_files) if new_files else none
        old_cols = _describe(conn, old_scan)
        new_cols = _describe(conn, new_scan)
        for side, cols in (("old", old_cols), ("new", new_cols)):
            _check_keys_exist(keys, cols, side)
        for side, scan in (("old", old_scan), ("new", new_scan)):
            _check_unique(conn, scan, keys, side)
        return _join(conn, old_scan, new_scan, old_cols, new_cols, keys, samples)
    finally:
        conn.close()


def _check_keys(keys: Sequence[str]) -> list[str]:
    if isinstance(keys, str) or not all(isinstance(k, str) and k for k in keys):
        raise InvalidInput("keys must be a list of column names")
    if not keys:
        raise InvalidInput("a row diff needs at least one key column")
    if len(set(keys)) != len(keys):
        raise InvalidInput(f"key columns repeat: {list(keys)}")
    return list(keys)


def _check_keys_exist(
    keys: Sequence[str], columns: Sequence[str] | dict[str, str], side: str
) -> None:
    """Raise :class:`InvalidInput` naming the first key missing from ``columns``."""
    for key in keys:
        if key not in columns:
            raise InvalidInput(
                f"key column {key!r} is not in the {side} version",
                {"key": key, "version": side},
            )


def _describe(conn: Any, scan: str) -> dict[str, str]:
    """Column name -> DuckDB type of a scan, in order."""
    rows = conn.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()  # noqa: S608
    return {str(r[0]): str(r[1]) for r in rows}


def _check_unique(conn: Any, scan: str, keys: list[str], side: str) -> None:
    cols = ", ".join(duck.ident(k) for k in keys)
    example = ", ".join(f"k{i} := {duck.ident(k)}" for i, k in enumerate(keys))
    # Identifiers are quoted and the scan comes from duck.parquet_scan: nothing user-built.
    repeats, first = conn.execute(
        f"SELECT count(*), min(struct_pack({example}, n := n)) FROM "  # noqa: S608
        f"(SELECT {cols}, count(*) AS n FROM {scan} GROUP BY {cols} HAVING count(*) > 1) AS d"
    ).fetchone()
    if repeats:
        key = {k: _jsonable(first[f"k{i}"]) for i, k in enumerate(keys)}
        raise InvalidInput(
            f"key ({', '.join(keys)}) is not unique in the {side} version: {repeats} "
            f"{'key repeats' if repeats == 1 else 'keys repeat'}, e.g. {key} ({first['n']} rows)",
            {"version": side, "repeated_keys": repeats, "example": key},
        )


def _comparable(conn: Any, old_scan: str, new_scan: str, column: str) -> bool:
    """Whether DuckDB compares a column's old and new values without an explicit cast
    (int64 with double does; varchar with int64 does not)."""
    col = duck.ident(column)
    try:
        conn.execute(
            f"SELECT o.x IS DISTINCT FROM n.x FROM "  # noqa: S608
            f"(SELECT {col} AS x FROM {old_scan} LIMIT 0) AS o, "
            f"(SELECT {col} AS x FROM {new_scan} LIMIT 0) AS n"
        )
    except Exception:  # a BinderException: DuckDB has no comparison for this pair
        return False
    return True


def _join(
    conn: Any,
    old_scan: str,
    new_scan: str,
    old_cols: dict[str, str],
    new_cols: dict[str, str],
    keys: list[str],
    samples: int,
) -> RowDiff:
    old_names, new_names = list(old_cols), list(new_cols)
    # Columns travel under positional aliases (o0.., n0..): no clash with the flags, and
    # no quoting of user names inside the generated structs.
    o = {name: f"o{i}" for i, name in enumerate(old_names)}
    n = {name: f"n{i}" for i, name in enumerate(new_names)}
    compared = [c for c in new_names if c in old_cols and c not in keys]

    def pair(col: str) -> tuple[str, str]:
        if old_cols[col] == new_cols[col] or _comparable(conn, old_scan, new_scan, col):
            return f"o.{o[col]}", f"n.{n[col]}"
        return f"CAST(o.{o[col]} AS VARCHAR)", f"CAST(n.{n[col]} AS VARCHAR)"

    on = " AND ".join(f"{a} IS NOT DISTINCT FROM {b}" for a, b in map(pair, keys))
    flags = [f"({a} IS DISTINCT FROM {b}) AS d{i}" for i, (a, b) in enumerate(map(pair, compared))]
    any_diff = " OR ".join(f"d{i}" for i in range(len(compared))) or "false"
    both = "o_in AND n_in"
    aggregates = [
        "count(*) FILTER (WHERE n_in IS NULL)",
        "count(*) FILTER (WHERE o_in IS NULL)",
        f"count(*) FILTER (WHERE {both} AND ({any_diff}))",
        f"count(*) FILTER (WHERE {both})",
        *(f"count(*) FILTER (WHERE {both} AND d{i})" for i in range(len(compared))),
    ]
    if samples:
        okey = _struct([o[k] for k in keys], "k")
        nkey = _struct([n[k] for k in keys], "k")
        changed_row = (
            f"struct_pack(k := {okey}, o := {_struct([o[c] for c in compared], 'c')}, "
            f"n := {_struct([n[c] for c in compared], 'c')}, "
            f"d := [{', '.join(f'd{i}' for i in range(len(compared)))}]::BOOLEAN[])"
        )
        aggregates += [
            f"min_by({_struct(list(o.values()), 'c')}, {okey}, {samples}) "
            "FILTER (WHERE n_in IS NULL)",
            f"min_by({_struct(list(n.values()), 'c')}, {nkey}, {samples}) "
            "FILTER (WHERE o_in IS NULL)",
            f"min_by({changed_row}, {okey}, {samples}) FILTER (WHERE {both} AND ({any_diff}))",
        ]
    old_select = ", ".join(f"{duck.ident(c)} AS {o[c]}" for c in old_names)
    new_select = ", ".join(f"{duck.ident(c)} AS {n[c]}" for c in new_names)
    joined = ", ".join(["o.*", "n.*", *flags])
    # Every name in this statement is quoted or generated here; the scans are built by
    # duck.parquet_scan with each path bound as an escaped literal.
    sql = (
        f"SELECT {', '.join(aggregates)} FROM ("  # noqa: S608
        f"SELECT {joined} "
        f"FROM (SELECT {old_select}, true AS o_in FROM {old_scan}) AS o "
        f"FULL OUTER JOIN (SELECT {new_select}, true AS n_in FROM {new_scan}) AS n ON {on}"
        ") AS j"
    )
    row = conn.execute(sql).fetchone()
    removed, added, changed, matched = row[:4]
    per_column = row[4 : 4 + len(compared)]
    result = RowDiff(
        keys=keys,
        added=added,
        removed=removed,
        changed=changed,
        unchanged=matched - changed,
        changed_columns={c: k for c, k in zip(compared, per_column, strict=True) if k},
    )
    if samples:
        removed_s, added_s, changed_s = row[4 + len(compared) :]
        result.removed_samples = [_unpack(s, old_names) for s in removed_s or []]
        result.added_samples = [_unpack(s, new_names) for s in added_s or []]
        result.changed_samples = [_changed_sample(s, keys, compared) for s in changed_s or []]
    return result


def _struct(aliases: list[str], prefix: str) -> str:
    """A struct of the given columns with fields named ``<prefix>0``, ``<prefix>1``..."""
    if not aliases:
        return "NULL::INTEGER"
    return "struct_pack(" + ", ".join(f"{prefix}{i} := {a}" for i, a in enumerate(aliases)) + ")"


def _unpack(struct: dict[str, Any] | None, names: list[str], prefix: str = "c") -> dict[str, Any]:
    if struct is None:
        return {}
    return {name: _jsonable(struct[f"{prefix}{i}"]) for i, name in enumerate(names)}


def _changed_sample(item: dict[str, Any], keys: list[str], compared: list[str]) -> dict[str, Any]:
    old = _unpack(item["o"], compared)
    new = _unpack(item["n"], compared)
    moved = [c for c, d in zip(compared, item["d"], strict=True) if d]
    return {
        "key": _unpack(item["k"], keys, "k"),
        "old": {c: old[c] for c in moved},
        "new": {c: new[c] for c in moved},
    }


def _jsonable(value: Any) -> Any:
    """A DuckDB value as JSON can carry it: temporals as ISO-8601 (UTC when zoned), bytes
    as base64, decimals and UUIDs as strings, NaN and infinities as "NaN"/"Infinity"/
    "-Infinity" (JSON has no such numbers, and null would read as a missing value)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


# --- versions ----------------------------------------------------------------------------


def diff_versions(
    dataset: str,
    old: DatasetVersion,
    new: DatasetVersion,
    *,
    keys: Sequence[str] | None = None,
    old_files: Sequence[Path] | None = None,
    new_files: Sequence[Path] | None = None,
    samples: int = 5,
    temp_directory: Path | None = None,
) -> VersionDiff:
    """The diff of two versions: schema and profile changes from their metadata; with
    ``keys``, the row diff over their files too. Equal digests skip the join (the same
    files hold the same rows: every row unchanged), so ``old_files`` and ``new_files`` are
    needed only when the digests differ."""
    same = old.digest == new.digest
    rows: RowDiff | None = None
    if keys:
        checked = _check_keys(keys)
        _check_keys_exist(checked, [c.name for c in old.columns], "old")
        _check_keys_exist(checked, [c.name for c in new.columns], "new")
        if same:
            rows = RowDiff(
                keys=checked, added=0, removed=0, changed=0, unchanged=new.rows, changed_columns={}
            )
        else:
            if old_files is None or new_files is None:
                raise ValueError("a row diff of different data needs old_files and new_files")
            rows = row_diff(
                old_files, new_files, checked, samples=samples, temp_directory=temp_directory
            )
    return VersionDiff(
        dataset=dataset,
        old=old.version,
        new=new.version,
        rows=(old.rows, new.rows),
        schema_changes=schema_changes(old.columns, new.columns),
        column_changes=column_changes(old.profile, new.profile),
        same_data=same,
        rows_diff=rows,
    )
