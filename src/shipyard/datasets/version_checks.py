"""Whole-version expectations: unique keys, row counts, freshness and class balance,
judged over a version's Parquet files in DuckDB once its rows are all in; and the proof
that spares a unique key that streamed in order that scan."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.datasets import duck
from shipyard.datasets import expectation_text as text
from shipyard.datasets.types import (
    ClassBalanceExpectation,
    Expectation,
    ExpectationResult,
    FreshnessExpectation,
    RowCountExpectation,
    UniqueExpectation,
)

_CLASS_SAMPLES = 10  # class balance shows this many largest and smallest classes


class VersionScan:
    """Whole-version queries over a version's Parquet files on a DuckDB reader that may
    spill to a private temp folder (the user's SQL never runs here)."""

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = [Path(f) for f in files]
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._conn: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> VersionScan:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        if self._conn is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="shipyard-validate-")
            self._conn = duck.reader(temp_directory=Path(self._tmp.name))
        return self._conn.execute(sql, params or []).fetchall()

    def judge(self, exp: Expectation, name: str, *, rows: int, now_ms: int) -> ExpectationResult:
        result = ExpectationResult(name=name, kind=exp.kind, passed=True)
        match exp:
            case RowCountExpectation():
                if exp.min is not None and rows < exp.min:
                    result.message = f"{text.rows(rows)}, expected at least {exp.min:,}"
                elif exp.max is not None and rows > exp.max:
                    result.message = f"{text.rows(rows)}, expected at most {exp.max:,}"
            case UniqueExpectation() if self.files:
                self._unique(exp, result)
            case FreshnessExpectation():
                self._freshness(exp, result, now_ms)
            case ClassBalanceExpectation() if self.files:
                self._balance(exp, result, rows)
            case _:
                pass
        result.passed = not result.message
        return result

    def _unique(self, exp: UniqueExpectation, result: ExpectationResult) -> None:
        keys = ", ".join(duck.ident(c) for c in exp.columns)
        scan = duck.parquet_scan(self.files)
        # Identifiers are quoted and the paths escaped by parquet_scan; no value is spliced.
        found = self._query(
            f"WITH g AS (SELECT {keys}, count(*) AS n FROM {scan} GROUP BY ALL"  # noqa: S608
            f" HAVING count(*) > 1) SELECT {keys}, n, count(*) OVER (), sum(n) OVER ()"
            f" FROM g ORDER BY n DESC, {keys} LIMIT {text.SAMPLES}"
        )
        if not found:
            return
        width = len(exp.columns)
        groups, result.failed_rows = int(found[0][width + 1]), int(found[0][width + 2])
        what = "1 key" if groups == 1 else f"{groups:,} keys"
        verb = "repeats" if groups == 1 else "repeat"
        keys = ", ".join(exp.columns)
        result.message = f"{what} of ({keys}) {verb} ({text.rows(result.failed_rows)})"
        result.samples = [
            {
                "key": dict(zip(exp.columns, map(text.jsonable, row), strict=False)),
                "count": row[width],
            }
            for row in found
        ]

    def _freshness(self, exp: FreshnessExpectation, result: ExpectationResult, now: int) -> None:
        newest = None
        if self.files:
            (newest,) = self._query(
                f"SELECT max({duck.ident(exp.column)}) FROM {duck.parquet_scan(self.files)}"  # noqa: S608
            )[0]
        if newest is None:
            result.message = f"{exp.column!r} has no values"
            return
        if isinstance(newest, dt.datetime):
            if newest.tzinfo is None:  # naive timestamps are taken as UTC
                newest = newest.replace(tzinfo=dt.UTC)
        elif isinstance(newest, dt.date):
            newest = dt.datetime(newest.year, newest.month, newest.day, tzinfo=dt.UTC)
        age = now / 1000 - newest.timestamp()
        result.samples = [
            {"column": exp.column, "newest": newest.isoformat(), "age_seconds": round(age, 3)}
        ]
        if age > exp.max_age_seconds:
            result.message = (
                f"newest {exp.column!r} is {text.duration(age)} old, "
                f"allowed {text.duration(exp.max_age_seconds)}"
            )

    def _balance(self, exp: ClassBalanceExpectation, result: ExpectationResult, rows: int) -> None:
        col = duck.ident(exp.column)
        # The classes are grouped in DuckDB; only the largest and smallest few come back.
        found = self._query(
            f"WITH c AS (SELECT {col} AS v, count(*) AS n FROM {duck.parquet_scan(self.files)}"  # noqa: S608
            f" WHERE {col} IS NOT NULL GROUP BY 1),"
            " r AS (SELECT v, n, row_number() OVER (ORDER BY n DESC, v) AS hi,"
            " row_number() OVER (ORDER BY n, v) AS lo, count(*) OVER () AS k,"
            " count(*) FILTER (WHERE n < ?) OVER () AS few FROM c)"
            " SELECT v, n, k, few FROM r WHERE hi <= ? OR lo <= ? ORDER BY n DESC, v",
            [exp.min_fraction * rows, _CLASS_SAMPLES, _CLASS_SAMPLES],
        )
        if not found or rows <= 0:
            return
        result.samples = [
            {"value": text.jsonable(v), "count": int(n), "fraction": round(n / rows, 6)}
            for v, n, _, _ in found
        ]
        problems = []
        (big, most, classes, few), (small, least) = found[0], found[-1][:2]
        if few:
            share = f"{least / rows:.1%}"
            problems.append(
                f"{few:,} of {classes:,} classes of {exp.column!r} hold under "
                f"{exp.min_fraction:.1%} of rows (smallest: {text.jsonable(small)!r} with {share})"
            )
        if exp.max_ratio is not None and most > exp.max_ratio * least:
            problems.append(
                f"largest class {text.jsonable(big)!r} is {most / least:.1f}x the smallest "
                f"{text.jsonable(small)!r}, allowed {text.num(exp.max_ratio)}x"
            )
        result.message = "; ".join(problems)


class OrderedKey:
    """Proof that a key column is unique from the order its values streamed in.

    Key columns often arrive sorted (auto-increment ids, event times, exports ordered by
    key). When every batch is strictly increasing or strictly decreasing, holds no null,
    and no two batches' value ranges overlap, no value can repeat: one comparison per
    value, where the whole-version check groups every key in DuckDB (about a second per
    10M rows here). Anything else (an unsorted batch, a null, a NaN, a type that does not
    compare) gives the proof up and leaves the judgement to that query.
    """

    def __init__(self, column: str) -> None:
        self.column = column
        self.holds = True
        self._lows: list[pa.Array] = []
        self._highs: list[pa.Array] = []

    def see(self, batch: pa.RecordBatch) -> None:
        """Take one batch (in any order relative to the others)."""
        if not self.holds or batch.num_rows == 0:
            return
        values = batch.column(self.column)
        n = len(values)
        first, last = values.slice(0, 1), values.slice(n - 1, 1)
        if pa.types.is_dictionary(values.type):  # batches may hold different dictionaries
            first, last = first.dictionary_decode(), last.dictionary_decode()
        try:
            head, tail = values.slice(0, n - 1), values.slice(1)
            if values.null_count:
                self.holds = False
            elif n == 1 or _every(pc.greater(tail, head)):
                self._lows.append(first)
                self._highs.append(last)
            elif _every(pc.less(tail, head)):
                self._lows.append(last)
                self._highs.append(first)
            else:
                self.holds = False
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
            self.holds = False  # a type without an order (lists, structs)

    def proven(self) -> bool:
        """Whether the batches seen prove the column unique."""
        if not self.holds or not self._lows:
            return False
        try:
            lows, highs = pa.concat_arrays(self._lows), pa.concat_arrays(self._highs)
            order = pc.sort_indices(lows)
            lows, highs = lows.take(order), highs.take(order)
            n = len(lows)
            # Sorted by their lows, each range must end before the next one starts.
            return n == 1 or _every(pc.less(highs.slice(0, n - 1), lows.slice(1)))
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
            return False


def _every(mask: pa.BooleanArray) -> bool:
    """True when every comparison held; a null one (a null value hidden in a dictionary)
    counts as not holding."""
    return pc.all(mask, skip_nulls=False).as_py() is True
