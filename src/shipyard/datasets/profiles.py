"""Column profiles of tabular data, computed in a streaming, mergeable way.

A :class:`PartialProfile` is the mergeable state of some rows of one schema: a file, a
batch stream, a version. :class:`ProfileBuilder` feeds it Arrow batches;
:func:`profile_parquet` makes one for a Parquet file from its footer and a small sample;
partials merge (matched by column name) and :meth:`PartialProfile.finish` turns one into
the :class:`~shipyard.datasets.types.Profile` stored with a version.

What is exact and what is not:

* Row counts, non-null counts, nulls, min and max are always exact. Strings compare as
  UTF-8 bytes (code points) and are cut to 200 characters; temporals are shown as
  ISO-8601 strings (dates too; time zones keep their UTC offset).
* Mean and std (population, ``ddof=0``) are exact for rows fed to a builder (Chan's
  merge of mean and M2). :func:`profile_parquet` estimates them from its sample when it
  does not read a file whole, and says so with ``approximate``.
* Quantiles and the histogram come from KLL sketches (Apache DataSketches) fed a seeded
  random sample of at most 16,384 values per batch; values sampled at different rates
  go to different sketches, mixed by the rows each stands for. Temporal quantiles and
  histograms are in epoch seconds (times of day: seconds after midnight; durations:
  seconds).
* Distinct counts are exact up to 256 values, then a HyperLogLog estimate (about 1.6%
  error); see :mod:`shipyard.datasets.profile_sketches`. Sampled parts extrapolate from
  how many sampled values were seen once (Haas and Stokes' Duj1 estimator).
* Frequent values keep the 64 most frequent values of each part with their counts;
  once a merge drops values, or counts were scaled up from a sample, they are
  approximate (a dropped value's count is lost).

``approximate`` is true when any figure of a column came from a sketch or a sample.

NaN and infinities (float columns): NaN is a value (counted in ``count``, one distinct
value) but is left out of min, max, mean, std, quantiles and the histogram. ±inf is
kept in min and max (they are true extremes) but left out of mean, std, quantiles and
the histogram, whose range is then the finite values'. ``-0.0`` and ``0.0`` are one value.

The byte format (:meth:`PartialProfile.to_bytes`) is versioned: JSON figures and
sketch bytes, never pickle.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shipyard.datasets.arrow_build import arrow_values
from shipyard.datasets.profile_sketches import singleton_share
from shipyard.datasets.profile_state import (
    UNITS,
    Column,
    Record,
    iso,
    live_record,
    merge_records,
    sample_numbers,
    seconds_per_raw,
    to_record,
    type_info,
)
from shipyard.datasets.types import ColumnProfile, FrequentValue, Histogram, Profile
from shipyard.errors import InvalidInput

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 20
TOP_VALUES = 10
PARQUET_SAMPLE_ROWS = 128
"""Rows :func:`profile_parquet` reads from a file by default (or 1/256 of a large one)."""

_MAGIC = b"SHPYPRF"
_FORMAT = 1
_SMALL_FILE = 4096  # rows of a Parquet file read whole rather than sampled


# --- finishing ---------------------------------------------------------------------------


def _finish_column(c: Column, rows: int) -> ColumnProfile:
    prof = ColumnProfile(
        name=c.name,
        type=c.type,
        kind=c.kind,
        count=c.count,
        nulls=c.nulls,
        null_fraction=c.nulls / rows if rows else 0.0,
    )
    approx = c.approx
    prof.approximate = approx
    if c.count == 0 or c.kind == "other":
        return prof
    scale = c.count / c.covered if c.covered else 0.0  # some parts only counted their values
    if c.kind == "boolean":
        prof.min, prof.max = c.lo, c.hi
        if c.covered:
            p = c.trues / c.covered
            trues = round(p * c.count)
            prof.mean, prof.std = p, math.sqrt(p * (1 - p))
            prof.distinct = int(trues > 0) + int(trues < c.count)
            tops = sorted([(True, trues), (False, c.count - trues)], key=lambda kv: -kv[1])
            prof.top_values = [FrequentValue(value=v, count=n) for v, n in tops if n > 0]
        return prof
    if c.spec is not None:
        prof.min = iso(c.spec, c.lo) if c.lo is not None else None
        prof.max = iso(c.spec, c.hi) if c.hi is not None else None
    else:
        prof.min, prof.max = c.lo, c.hi
    if c.mn > 0 and c.kind in ("integer", "float"):
        prof.mean, prof.std = c.mean, math.sqrt(max(c.m2, 0.0) / c.mn)
    prof.distinct, inexact = _distinct_count(c)
    approx = approx or inexact
    if c.rep:
        prof.quantiles, prof.histogram, inexact = _distribution(c, scale)
        approx = approx or inexact
    if c.fv:
        # Once values were dropped, one seen once is not frequent: it was kept by chance.
        seen = c.fv.items() if c.fv_complete else [kv for kv in c.fv.items() if kv[1] > 1]
        tops = sorted(seen, key=lambda kv: (-kv[1], kv[0]))[:TOP_VALUES]
        prof.top_values = [FrequentValue(value=v, count=round(n * scale)) for v, n in tops]
        approx = approx or not c.fv_complete
    prof.approximate = approx
    return prof


def _distinct_count(c: Column) -> tuple[int | None, bool]:
    """The distinct count and whether it is an estimate."""
    if c.hashed == 0:
        return None, True
    d = c.distinct.estimate()
    inexact = not c.distinct.exact
    if c.hashed < c.count:
        # Some values were only sampled: scale up by the share of the sampled values seen
        # once (Haas and Stokes' Duj1 estimator, d / (1 - (1 - q) * f1 / n)).
        q = c.hashed / c.count
        denom = 1.0 - (1.0 - q) * singleton_share(c.bottom) if c.bottom else 1.0
        d = c.count if denom <= 0 else d / denom
        inexact = True
    return int(round(min(max(d, 0.0), c.count))), inexact


def _distribution(
    c: Column, scale: float
) -> tuple[dict[str, float] | None, Histogram | None, bool]:
    """Quantiles and a histogram from the quantile sketches, mixed by the rows each
    stands for, and whether they are estimates."""
    for j in list(c.raw):
        c.flush_samples(j)
    classes = sorted(c.kll)
    if not classes:
        return None, None, True
    sketches = [c.kll[j] for j in classes]
    weights = np.array([c.rep[j] for j in classes])
    total = float(weights.sum())
    inexact = classes != [0] or sketches[0].is_estimation_mode() or scale != 1
    if len(sketches) == 1:
        qs = sketches[0].get_quantiles(list(QUANTILES), inclusive=True)

        def pmf(points: list[float]) -> np.ndarray:
            return np.array(sketches[0].get_pmf(points))
    else:
        grid = np.linspace(0.0, 1.0, 513).tolist()
        cands = np.unique(np.concatenate([sk.get_quantiles(grid) for sk in sketches]))
        wn = weights / total
        points = cands.tolist()
        cdf = sum(
            w * np.array(sk.get_cdf(points, True))[:-1] for w, sk in zip(wn, sketches, strict=True)
        )
        qs = [float(cands[min(np.searchsorted(cdf, r), len(cands) - 1)]) for r in QUANTILES]

        def pmf(points: list[float]) -> np.ndarray:
            return sum(wn[i] * np.array(sk.get_pmf(points)) for i, sk in enumerate(sketches))

    quantiles = {str(r): float(q) for r, q in zip(QUANTILES, qs, strict=True)}
    lo, hi = _finite_range(c, sketches)
    n = round(total * scale)
    if lo is None or n == 0:
        return quantiles, None, inexact
    if lo == hi:
        return quantiles, Histogram(edges=[lo, hi], counts=[n]), inexact
    edges = _histogram_edges(lo, hi)
    if edges is None:  # no room between lo and hi for as many distinct edges
        return quantiles, Histogram(edges=[lo, hi], counts=[n]), inexact
    mass = np.clip(pmf(edges[1:-1].tolist()), 0.0, None) * n
    counts = np.floor(mass).astype(np.int64)
    short = n - int(counts.sum())  # hand out what rounding down lost, largest remainders first
    if short > 0:
        counts[np.argsort(counts - mass)[:short]] += 1
    return quantiles, Histogram(edges=edges.tolist(), counts=counts.tolist()), inexact


def _finite_range(c: Column, sketches: list[Any]) -> tuple[float | None, float | None]:
    if c.spec is not None:
        scale = seconds_per_raw(c.spec)
        return c.lo * scale, c.hi * scale
    lo, hi = c.lo, c.hi
    if lo is None or not (math.isfinite(lo) and math.isfinite(hi)):
        lo = min(sk.get_min_value() for sk in sketches)
        hi = max(sk.get_max_value() for sk in sketches)
    return float(lo), float(hi)


# --- public API --------------------------------------------------------------------------


class PartialProfile:
    """Mergeable profile state of some rows of one schema (a file, a batch stream, a
    version). Merge parts with :meth:`merge`/:meth:`merge_all`, keep them with
    :meth:`to_bytes`, and turn one into a :class:`Profile` with :meth:`finish`."""

    __slots__ = ("_cols", "rows")

    def __init__(self, rows: int, columns: Sequence[Column]) -> None:
        self.rows = rows
        # A column read from bytes stays a record until it is needed (merging many
        # cached states works on the records directly).
        self._cols: dict[str, Column | Record] = {c.name: c for c in columns}

    @property
    def columns(self) -> list[str]:
        """The column names, in order."""
        return list(self._cols)

    @classmethod
    def empty(cls, schema: pa.Schema) -> PartialProfile:
        """The state of no rows of ``schema``."""
        if len(set(schema.names)) != len(schema.names):
            raise InvalidInput("a profile needs distinct column names")
        return cls(0, [Column.of(f) for f in schema])

    def merge(self, other: PartialProfile) -> PartialProfile:
        """The state of the rows of both (a new object; neither side changes)."""
        return PartialProfile.merge_all([self, other])

    @staticmethod
    def merge_all(parts: Sequence[PartialProfile]) -> PartialProfile:
        """The state of the rows of all ``parts`` (in any order or grouping: associative).
        Columns match by name; a column missing from a part counts that part's rows as
        nulls. The same name with different types is :class:`InvalidInput`, and so is a
        part read from bytes that turns out to be corrupt."""
        if not all(isinstance(p, PartialProfile) for p in parts):
            raise InvalidInput("merge_all takes PartialProfile objects")
        groups: dict[str, list[Record]] = {}
        covered: dict[str, int] = {}
        for p in parts:
            for name, c in p._cols.items():
                groups.setdefault(name, []).append(
                    (live_record(c), None) if type(c) is Column else c
                )
                covered[name] = covered.get(name, 0) + p.rows
        for name, items in groups.items():
            types = sorted({str(r[1]) for r, _ in items})
            if len(types) > 1:
                raise InvalidInput(
                    f"column {name!r} has different types in the parts merged: " + ", ".join(types),
                    {"column": name, "types": types},
                )
        rows = sum(p.rows for p in parts)
        return PartialProfile(
            rows, [_decoded(items, rows - covered[n]) for n, items in groups.items()]
        )

    def _columns(self) -> list[Column]:
        for name, c in self._cols.items():
            if type(c) is not Column:
                self._cols[name] = _decoded([c], 0)
        return list(self._cols.values())  # type: ignore[arg-type]

    def to_bytes(self) -> bytes:
        """A compact, versioned encoding (JSON figures and sketch bytes; no pickle)."""
        blob: list[bytes] = []
        at = [0]
        records = [to_record(c, blob, at) for c in self._columns()]
        head = orjson.dumps({"rows": self.rows, "columns": records})
        return b"".join([_MAGIC, struct.pack("<BI", _FORMAT, len(head)), head, *blob])

    @classmethod
    def from_bytes(cls, data: bytes) -> PartialProfile:
        """Decode :meth:`to_bytes`: :class:`InvalidInput` on anything else. The sketches
        are checked when first used (merged, finished or encoded again)."""
        try:
            data = bytes(data)
            if data[: len(_MAGIC)] != _MAGIC:
                raise ValueError("no profile state magic")
            version, size = struct.unpack_from("<BI", data, len(_MAGIC))
            if version != _FORMAT:
                raise InvalidInput(f"unknown profile state format {version}")
            start = len(_MAGIC) + 5
            head = orjson.loads(data[start : start + size])
            blob = data[start + size :]
            rows, records = head["rows"], head["columns"]
            if type(rows) is not int or rows < 0 or type(records) is not list:
                raise ValueError("bad header")
            for r in records:
                if type(r) is not list or len(r) != 21 or type(r[0]) is not str:
                    raise ValueError("bad column record")
                if type(r[4]) is not int or type(r[5]) is not int or r[4] + r[5] != rows:
                    raise ValueError(f"counts of column {r[0][:100]!r} do not add up")
            if len({r[0] for r in records}) != len(records):
                raise ValueError("repeated column names")
        except InvalidInput:
            raise
        except Exception as e:  # any decoding failure means the bytes are not ours
            raise InvalidInput(f"not a profile state: {e}") from None
        out = cls(rows, [])
        out._cols = {r[0]: (r, blob) for r in records}
        return out

    def finish(self) -> Profile:
        """The profile of these rows."""
        return Profile(
            rows=self.rows, columns=[_finish_column(c, self.rows) for c in self._columns()]
        )


def _decoded(items: list[Record], extra_nulls: int) -> Column:
    try:
        return merge_records(items, extra_nulls)
    except (ValueError, TypeError, KeyError, IndexError, RuntimeError) as e:
        raise InvalidInput(f"corrupt profile state: {e}") from None


class ProfileBuilder:
    """Profiles a stream of Arrow record batches of one schema, exactly for counts,
    nulls, min, max, mean and std, with sketches for the rest."""

    def __init__(self, schema: pa.Schema, *, seed: int = 0, threads: int | None = None) -> None:
        self._schema = schema
        self._state = PartialProfile.empty(schema)
        # One seeded generator per column: the same data is sampled alike, threads or not
        # (the quantile sketches still compact at random: their figures vary a little).
        self._rngs = [np.random.default_rng([seed, i]) for i in range(len(schema))]
        self._threads = max(1, min(4, os.cpu_count() or 1)) if threads is None else threads

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Take the rows of ``batch`` (its schema must have this builder's columns and
        types, in order)."""
        if not isinstance(batch, pa.RecordBatch | pa.Table):
            raise InvalidInput(f"expected an Arrow RecordBatch or Table, got {type(batch)}")
        if batch.schema.names != self._schema.names or not all(
            a.equals(b) for a, b in zip(batch.schema.types, self._schema.types, strict=True)
        ):
            raise InvalidInput(
                "batch schema differs from the profile's",
                {"expected": str(self._schema), "got": str(batch.schema)},
            )
        if isinstance(batch, pa.Table):
            if batch.num_rows < (1 << 14) * max(1, len(batch.to_batches())):
                batch = batch.combine_chunks()
            batches = batch.to_batches()
        else:
            batches = [batch]
        cols = list(self._state._cols.values())
        for rb in batches:
            self._state.rows += rb.num_rows
            work = list(zip(cols, rb.columns, self._rngs, strict=True))
            if self._threads > 1 and rb.num_rows >= 1 << 16 and len(cols) > 1:
                # numpy and Arrow kernels release the GIL: columns profile side by side
                with ThreadPoolExecutor(self._threads) as pool:
                    list(pool.map(lambda w: w[0].add(w[1], w[2]), work))
            else:
                for c, arr, rng in work:
                    c.add(arr, rng)

    def partial(self) -> PartialProfile:
        """A snapshot of the state so far (later adds do not change it)."""
        return PartialProfile.merge_all([self._state])


_SAMPLED_GROUPS = 8
"""Row groups of one file the sample is drawn from, at most."""


def _histogram_edges(lo: float, hi: float) -> np.ndarray | None:
    """HISTOGRAM_BINS + 1 evenly spaced, strictly increasing edges from ``lo`` to ``hi``;
    None where doubles hold no such edges (a range a few units in the last place wide).
    Halved first where ``hi - lo`` would overflow a double (values near ±1.8e308)."""
    half = np.linspace(lo / 2, hi / 2, HISTOGRAM_BINS + 1)
    edges = (
        half * 2
        if abs(hi / 2 - lo / 2) > np.finfo(np.float64).max / 2
        else (np.linspace(lo, hi, HISTOGRAM_BINS + 1))
    )
    edges[0], edges[-1] = lo, hi
    return edges if bool(np.all(np.diff(edges) > 0)) else None


def profile_parquet(
    source: str | Path | pa.NativeFile | bytes, *, sample_rows: int = PARQUET_SAMPLE_ROWS
) -> tuple[PartialProfile, pa.Schema]:
    """Profile one Parquet file quickly; returns its state and Arrow schema.

    Rows, nulls, min and max come from the footer statistics where those are exact
    (flat integer, float, string, boolean, timestamp and date columns whose every row
    group has them); other columns are read whole, and so is a file of at most 4,096
    rows. The rest (sketches, mean, std, frequent values) come from the first rows of
    up to 8 row groups: about ``sample_rows`` rows in all (1/256 of a large file), so
    those figures are estimates. Where the footer shows those rows cannot stand for the
    file (a column sorted or clustered, by id or by time: see :func:`_stands_for`), the
    column is read whole, a row group at a time, for as many rows drawn at random from
    every row group. ``sample_rows=0`` reads the footer only; merged with sampled
    parts, a footer-only part's rows are taken to look like theirs.
    Paths are opened as given: callers check user-given paths first."""
    opened: pa.NativeFile | None = None
    src: Any
    try:
        if isinstance(source, str | Path):
            # An open file, not a path: pyarrow would resolve a file system for a path
            # each time, which doubles the cost of a footer-only profile.
            src = opened = pa.OSFile(str(source))
        else:
            src = pa.BufferReader(source) if isinstance(source, bytes | bytearray) else source
        pf = pq.ParquetFile(src, pre_buffer=False)
        schema = pf.schema_arrow
        return _profile_file(pf, schema, sample_rows), schema
    except InvalidInput:
        raise
    except (pa.ArrowException, OSError, ValueError) as e:
        raise InvalidInput(f"cannot read Parquet file: {e}") from None
    finally:
        if opened is not None:
            opened.close()


def _profile_file(pf: pq.ParquetFile, schema: pa.Schema, sample_rows: int) -> PartialProfile:
    md = pf.metadata
    rows = md.num_rows
    if rows <= _SMALL_FILE and sample_rows > 0:
        builder = ProfileBuilder(schema, threads=1)
        builder.add(pf.read(use_threads=False))
        return builder._state
    state = PartialProfile.empty(schema)
    state.rows = rows
    exact: list[Column] = []
    full: list[Column] = []
    spread: list[Column] = []  # exact, but the first rows of row groups are no sample
    heads: list[tuple[Column, pa.ChunkedArray]] = []  # exact columns and their samples
    spans: list[list[Span]] = [[] for _ in schema]
    footer = _footer(md, schema, spans if sample_rows > 0 else None)
    for col, stats in zip(state._cols.values(), footer, strict=True):
        if stats is None:
            full.append(col)
            continue
        exact.append(col)
        col.nulls, col.count = stats[0], rows - stats[0]
        col.extremes(stats[1], stats[2])
        col.approx, col.fv_complete = True, False
    if exact and sample_rows > 0:
        # A few row groups spread over the file: reading even a few rows of a row group
        # decodes its pages, so sampling every group of a big file reads all of it.
        groups = list(range(md.num_row_groups))
        if len(groups) > _SAMPLED_GROUPS:
            last = len(groups) - 1
            groups = sorted(
                {round(i * last / (_SAMPLED_GROUPS - 1)) for i in groups[:_SAMPLED_GROUPS]}
            )
        per_group = -(-max(sample_rows, rows >> 8) // len(groups))
        pieces, sampled = [], []
        for r in groups:
            take = min(md.row_group(r).num_rows, per_group)
            if take:
                names = [c.name for c in exact]
                it = pf.iter_batches(take, row_groups=[r], columns=names, use_threads=False)
                pieces.append(next(it))
                sampled.append(r)
        sample = pa.Table.from_batches(pieces)
        for col, chunked in zip(exact, sample.columns, strict=True):
            slot = schema.get_field_index(col.name)
            if _stands_for(chunked, col.kind, spans[slot], footer[slot], sampled):
                heads.append((col, chunked))
            else:
                # Sorted or clustered (by id, by time ...): rows drawn at random from
                # every row group instead, which costs reading the column whole.
                spread.append(col)
    rng = np.random.default_rng(0)
    budget = max(sample_rows, rows >> 8)  # as many rows as the first rows would have been
    drawn: dict[str, list[pa.Array]] = {c.name: [] for c in spread}
    names = [c.name for c in full + spread]
    for r in range(md.num_row_groups if names else 0):  # a row group at a time: bounded memory
        table = pf.read_row_group(r, columns=names, use_threads=False)
        for col in full:
            for chunk in table.column(col.name).chunks:
                col.add(chunk, rng)
        n = table.num_rows
        if spread and n:
            picked = np.sort(rng.choice(n, min(n, -(-budget * n // rows)), replace=False))
            for col in spread:
                drawn[col.name] += table.column(col.name).take(arrow_values(picked)).chunks
    for col in spread:
        heads.append((col, pa.chunked_array(drawn[col.name], schema.field(col.name).type)))
    _take_samples(heads)
    return state


def _take_samples(samples: list[tuple[Column, pa.ChunkedArray]]) -> None:
    """Feed columns whose count, nulls, min and max came from the footer a sample of
    their rows each (numbers all at once: see :func:`sample_numbers`)."""
    numbers = []
    for col, chunked in samples:
        arr = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
        x = col.sample(arr.drop_null() if arr.null_count else arr, col.count)
        if x is not None:
            numbers.append((col, x, col.count / len(x)))
    if numbers:
        sample_numbers(numbers)


_SPANNED = 0.25
"""Of a row group's [min, max] (of one column, from the footer), the least part its first
rows must span to stand for the group; and of the file's, the least part a row group's
must span to stand for the row groups not sampled."""
_NARROW = 0.25
"""Of a file's values, the most that may lie in row groups of a narrow [min, max] when
not every row group is sampled."""

Span = tuple[Any, Any, int]
"""A row group's min, max and non-null count of one column, from the footer."""


def _stands_for(
    sample: pa.ChunkedArray,
    kind: str,
    spans: list[Span],
    extremes: tuple[int, Any, Any],
    sampled: list[int],
) -> bool:
    """Whether the first rows of row groups ``sampled`` (one chunk each) stand for the
    column's values in the whole file, judged by what the footer says of every row
    group. Sorted or clustered columns fail: their first rows span a sliver of their
    group's [min, max], or their row groups each hold a sliver of the file's range (so
    the groups sampled say nothing of the others). Random data passes; a column that
    fails wrongly only costs reading it whole."""
    skip = 0
    if kind == "string" and extremes[1] is not None:  # a prefix every value shares
        skip = len(os.path.commonprefix([extremes[1].encode(), extremes[2].encode()]))

    def width(lo: Any, hi: Any) -> float:
        return _position(hi, kind, skip) - _position(lo, kind, skip)

    for r, chunk in zip(sampled, sample.chunks, strict=True):
        lo, hi, values = spans[r]
        if values == 0 or lo == hi:
            continue
        got = pc.min_max(chunk)
        if not got["min"].is_valid:
            return False
        span = width(_raw(got["min"], kind), _raw(got["max"], kind))
        if not span >= _SPANNED * width(lo, hi):  # an infinite width fails too
            return False
    whole = width(extremes[1], extremes[2]) if extremes[1] is not None else 0.0
    if len(sampled) == len(spans) or whole == 0:
        return True
    narrow = sum(v for lo, hi, v in spans if v and not width(lo, hi) >= _SPANNED * whole)
    return narrow <= _NARROW * sum(v for _, _, v in spans)


def _position(value: Any, kind: str, skip: int = 0) -> float:
    """Where a value lies in its column's order, as a float64 (only order and distance
    are meant): numbers and temporals (raw, as Parquet footer statistics hold them) as
    themselves, booleans as 0 and 1, strings as the 8 bytes (big-endian) after their
    first ``skip``, a prefix the values compared share."""
    if kind == "string":
        return float(int.from_bytes(value.encode()[skip : skip + 8].ljust(8, b"\0"), "big"))
    return float(value)


def _raw(value: pa.Scalar, kind: str) -> Any:
    """A scalar as Parquet footer statistics hold it (temporals raw)."""
    return value.value if kind == "temporal" else value.as_py()


def _footer(
    md: pq.FileMetaData, schema: pa.Schema, spans: list[list[Span]] | None = None
) -> list[tuple[int, Any, Any] | None]:
    """(nulls, min, max) of each column from the footer statistics, or None where they
    are missing or could be inexact for the column's type (nested, INT96, decimal, ...);
    with ``spans``, each such column's :data:`Span` of every row group is appended to
    ``spans[column]``."""
    pschema = md.schema
    plans = next((p for ps, sch, p in _PLANS if ps.equals(pschema) and sch.equals(schema)), None)
    if plans is None:
        plans = _plan(pschema, schema)
        _PLANS[:] = [(pschema, schema, plans), *_PLANS[:7]]  # files of a dataset look alike
    found: list[Any] = [None] * len(schema)
    for slot, *_ in plans:
        found[slot] = [0, None, None]
    for r in range(md.num_row_groups):
        rg = md.row_group(r)
        for slot, i, want, unit in plans:
            acc = found[slot]
            if acc is None:
                continue
            cc = rg.column(i)
            st = cc.statistics
            if st is None or not st.has_null_count:
                found[slot] = None
                continue
            acc[0] += st.null_count
            if not st.has_min_max:
                if st.null_count != cc.num_values:
                    found[slot] = None
                elif spans is not None:
                    spans[slot].append((None, None, 0))
                continue
            a, b = (st.min, st.max) if unit is None else (st.min_raw, st.max_raw)
            if type(a) is not want or type(b) is not want or a != a or b != b:  # NaN: inexact
                found[slot] = None
                continue
            if unit is not None:
                a, b = a * unit[0] // unit[1], b * unit[0] // unit[1]
            acc[1] = a if acc[1] is None else min(acc[1], a)
            acc[2] = b if acc[2] is None else max(acc[2], b)
            if spans is not None:
                spans[slot].append((a, b, cc.num_values - st.null_count))
    return [None if f is None else tuple(f) for f in found]


def _plan(pschema: pq.ParquetSchema, schema: pa.Schema) -> list[list[Any]]:
    """Which footer statistics are exact for which columns, and how to read them."""
    leaves = {pschema.column(i).path: i for i in range(len(pschema))}
    plans: list[list[Any]] = []  # [slot, leaf, type wanted, (times, by) or None: not temporal]
    for slot, field in enumerate(schema):
        t, i = field.type, leaves.get(field.name)
        kind = type_info(t)[1]
        if i is None or pa.types.is_dictionary(t):
            continue
        col = pschema.column(i)
        if col.max_repetition_level or col.max_definition_level > 1:
            continue
        if pa.types.is_timestamp(t):
            lt = str(col.logical_type)
            stored = next((u for u, w in _STORED.items() if w in lt), None)
            if stored is not None and col.physical_type == "INT64":
                ratio = UNITS[t.unit], UNITS[stored]  # Arrow's unit per Parquet's, exactly
                g = math.gcd(*ratio)
                plans.append([slot, i, int, (ratio[0] // g, ratio[1] // g)])
        elif pa.types.is_date32(t) or pa.types.is_date64(t):
            plans.append([slot, i, int, (1 if pa.types.is_date32(t) else 86_400_000, 1)])
        elif kind in ("integer", "string", "boolean") or t in (pa.float32(), pa.float64()):
            plans.append([slot, i, _EXACT_STATS[kind], None])
    return plans


_EXACT_STATS = {"integer": int, "float": float, "string": str, "boolean": bool}
_STORED = {"ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
_PLANS: list[tuple[pq.ParquetSchema, pa.Schema, list[list[Any]]]] = []
