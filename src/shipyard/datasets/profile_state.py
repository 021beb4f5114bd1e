"""The mergeable state of one profiled column, and how states are fed, merged and
stored. :mod:`shipyard.datasets.profiles` is the public face (what is exact and what is
estimated is described there); the sketches themselves live in
:mod:`shipyard.datasets.profile_sketches`.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from typing import Any
from zoneinfo import ZoneInfo

import datasketches as ds
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.datasets.arrow_build import arrow_values, numpy_values
from shipyard.datasets.profile_sketches import (
    BOTTOM_K,
    SPARSE_MAX,
    Bottom,
    Distinct,
    bottom_from_bytes,
    bottom_to_bytes,
    hash_numbers,
    hash_strings,
    merge_bottoms,
    mix64,
    number_bits,
    unique_counts,
)
from shipyard.datasets.schema import column_kind
from shipyard.datasets.types import ColumnKind

STRING_LIMIT = 200
UNITS = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}
KLL_K = 200
_KLL_FEED = 1 << 14  # values per batch a quantile sketch takes before sampling
# Past this many values a column's later batches feed a quarter as many: the sample is
# already far larger than the sketch's own error needs (1/sqrt(n) of rank from sampling
# against KLL's ~1.7% at k=200), and sketching is a fifth of profiling a wide CSV.
_KLL_PLENTY = 1 << 20
_FV_CAP = 64
_FV_SAMPLE = 1 << 14  # values whose counts stand for a high-cardinality string batch
_PROBE = 2048  # values looked at to tell a low-cardinality batch


# --- kinds and temporals -----------------------------------------------------------------


def _temporal_spec(t: pa.DataType) -> list[Any] | None:
    """What finishing a temporal column needs of its type: [kind, unit, tz]."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_timestamp(t):
        return ["timestamp", t.unit, t.tz]
    if pa.types.is_date32(t) or pa.types.is_date64(t):
        return ["date", "D" if pa.types.is_date32(t) else "ms", None]
    if pa.types.is_time(t) or pa.types.is_duration(t):
        return ["time" if pa.types.is_time(t) else "duration", t.unit, None]
    return None


@functools.lru_cache(maxsize=512)
def type_info(t: pa.DataType) -> tuple[str, ColumnKind, list[Any] | None]:
    return str(t), column_kind(t), _temporal_spec(t)


def seconds_per_raw(spec: list[Any]) -> float:
    return 86400.0 if spec[1] == "D" else 1.0 / UNITS[spec[1]]


def iso(spec: list[Any], v: int) -> str:
    """An exact ISO-8601 rendering of a raw temporal value."""
    kind, unit, tz = spec
    if kind == "date":
        day = np.datetime64(v, "D") if unit == "D" else np.datetime64(v, "ms").astype("M8[D]")
        return str(day)
    per_second = UNITS[unit]
    if kind == "duration":
        whole, frac = divmod(abs(v), per_second)
        digits = str(frac).rjust(len(str(per_second)) - 1, "0").rstrip("0")
        return f"{'-' if v < 0 else ''}PT{whole}{'.' + digits if digits else ''}S"
    # Seconds always shown; a fraction only as fine as the value needs.
    shown = next(u for u in UNITS if v % (per_second // min(UNITS[u], per_second)) == 0)
    if kind == "time":
        return np.datetime_as_string(np.datetime64(v, unit), unit=shown).split("T")[1]
    offset = _utc_offset(tz, v // per_second) if tz else None
    if offset is None:  # the instant in UTC (Arrow keeps zoned timestamps as UTC)
        return np.datetime_as_string(np.datetime64(v, unit), unit=shown) + ("Z" if tz else "")
    local = np.datetime_as_string(np.datetime64(v + offset * per_second, unit), unit=shown)
    sign, mins = ("-" if offset < 0 else "+"), abs(offset) // 60
    return f"{local}{sign}{mins // 60:02d}:{mins % 60:02d}"


def _utc_offset(tz: str, seconds: int) -> int | None:
    """The offset of ``tz`` from UTC at an instant, in seconds (None: zero or unknown)."""
    if tz[:1] in "+-" and len(tz) == 6 and tz[3] == ":":
        return (1 if tz[0] == "+" else -1) * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60) or None
    try:
        off = dt.datetime.fromtimestamp(seconds, ZoneInfo(tz)).utcoffset()
    except (ValueError, OverflowError, OSError, KeyError):
        return None
    return int(off.total_seconds()) if off else None


def _numbers(arr: pa.Array, kind: str) -> np.ndarray:
    """The values of a null-free numeric or temporal array: ints as ints, floats as
    float64, temporals as their raw int64 (days, seconds, ... since the epoch)."""
    t = arr.type
    if kind == "temporal":
        raw = arr.view(pa.int32() if t.bit_width == 32 else pa.int64())
        return numpy_values(raw).astype(np.int64, copy=False)
    if pa.types.is_decimal(t) or pa.types.is_float16(t):
        arr = pc.cast(arr, pa.float64())
    x = numpy_values(arr)
    return x.astype(np.float64, copy=False) if kind == "float" else x


def _jf(x: float) -> float | str:
    """A float for JSON, with the non-finite ones spelt out."""
    return x if math.isfinite(x) else repr(x)


def _spread(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``min(n, k)`` positions spread evenly over ``n`` from a random start (no repeats)."""
    step = max(1, n // k)
    return int(rng.integers(0, step)) + np.arange(min(n, k)) * step


def _plain(v: Any, kind: str) -> Any:
    """A JSON-able Python value for an extreme: strings clipped, numpy scalars unwrapped."""
    if isinstance(v, np.generic):
        v = v.item()
    if kind == "string":
        return v[:STRING_LIMIT]
    return float(v) if kind == "float" else v


# --- one column's state ------------------------------------------------------------------


class Column:
    """The mergeable state of one column (see the module docstring for what is exact)."""

    __slots__ = (
        "name", "type", "kind", "spec", "count", "nulls", "lo", "hi", "mn", "mean", "m2",
        "exact", "trues", "covered", "kll", "raw", "raw_rep", "rep", "distinct", "hashed",
        "bottom", "fv", "fv_complete", "approx",
    )  # fmt: skip

    def __init__(self, name: str, type_: str, kind: ColumnKind, spec: list[Any] | None) -> None:
        self.name, self.type, self.kind, self.spec = name, type_, kind, spec
        self.count = self.nulls = 0
        self.lo: Any = None
        self.hi: Any = None
        self.mn = self.mean = self.m2 = 0.0  # finite values in the moments, their mean and M2
        self.exact = True  # the moments cover every finite value, not a sample
        self.trues = 0.0
        self.covered = 0  # non-null values behind the moments, sketches, trues and counts
        self.kll: dict[int, Any] = {}  # log2(values per sampled value) -> KLL sketch
        self.raw: dict[int, list[np.ndarray]] = {}  # ... -> small samples not sketched yet
        self.raw_rep: dict[int, float] = {}  # ... -> how many values those stand for
        self.rep: dict[int, float] = {}  # ... -> how many values that sketch stands for
        self.distinct = Distinct()
        self.hashed = 0  # values whose hashes went into ``distinct``
        self.bottom: Bottom | None = None  # of sampled values only
        self.fv: dict[Any, float] | None = {} if kind in ("string", "integer") else None
        self.fv_complete = True  # ``fv`` holds every value with its exact count
        self.approx = False  # some figure came from a sample

    @classmethod
    def of(cls, field: pa.Field) -> Column:
        return cls(field.name, *type_info(field.type))

    # -- every value -----------------------------------------------------------------------

    def add(self, arr: pa.Array, rng: np.random.Generator) -> None:
        """Take every value of ``arr`` (exact figures stay exact)."""
        n_null = arr.null_count
        self.nulls += n_null
        self.count += len(arr) - n_null
        if len(arr) == n_null or self.kind == "other":
            return
        if pa.types.is_string_view(arr.type) or pa.types.is_binary_view(arr.type):
            arr = pc.cast(arr, pa.large_string() if self.kind == "string" else pa.large_binary())
        arr = arr.drop_null() if n_null else arr
        if pa.types.is_dictionary(arr.type) and self.kind != "string":
            arr = arr.dictionary_decode()
        self.covered += len(arr)
        if self.kind == "boolean":
            trues = pc.sum(arr).as_py() or 0
            self.trues += trues
            self.extremes(trues == len(arr), trues > 0)
        elif self.kind in ("string", "binary"):
            self._add_strings(arr, rng)
        else:
            self._add_numbers(arr, rng)

    def _add_numbers(self, arr: pa.Array, rng: np.random.Generator) -> None:
        x = _numbers(arr, self.kind)
        n, fin = len(x), x
        if self.kind != "temporal":
            f = x.astype(np.float64, copy=False)
            with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: seen, then dropped
                total = float(np.sum(f))
            fin = f if math.isfinite(total) else f[np.isfinite(f)]
            if len(fin) < n:
                total = float(np.sum(fin))
            if len(fin):
                var = pc.variance(arrow_values(fin), ddof=0).as_py()
                self._moments(len(fin), total / len(fin), var * len(fin))
        lo, hi = x.min(), x.max()
        if x.dtype.kind == "f" and math.isnan(lo):
            keep = x[~np.isnan(x)]
            lo, hi = (keep.min(), keep.max()) if len(keep) else (None, None)
        self.extremes(lo, hi)
        self._feed_quantiles(fin, rng)
        if n <= 2 * _PROBE or len(np.unique(x[_spread(n, _PROBE, rng)])) <= _PROBE // 4:
            vc = pc.value_counts(arrow_values(x))  # few values: count them all
            vals = numpy_values(vc.field(0))
            self.distinct.add(hash_numbers(vals))
            if self.fv is not None:
                self._count_values(vals.tolist(), numpy_values(vc.field(1)).tolist(), True)
        else:
            self.distinct.add(hash_numbers(x))
            if self.fv is not None:  # many values: the frequent ones, from a sample
                self._count_values(*_frequent_in_sample(arrow_values(x), n, rng), False)
        self.hashed += n

    def _add_strings(self, arr: pa.Array, rng: np.random.Generator) -> None:
        n, vals = len(arr), None
        if pa.types.is_dictionary(arr.type):
            counts = np.bincount(numpy_values(arr.indices), minlength=1)
            used = np.flatnonzero(counts)
            vals, seen = arr.dictionary.take(arrow_values(used)), counts[used]
        else:
            probe = None if n <= 2 * _PROBE else arr.take(arrow_values(_spread(n, _PROBE, rng)))
            if probe is None or pc.count_distinct(probe).as_py() <= _PROBE // 4:
                vc = pc.value_counts(arr)
                vals, seen = vc.field(0), numpy_values(vc.field(1))
        self.hashed += n
        if vals is not None:
            self.distinct.add(hash_strings(vals))
            if self.kind == "string":
                self.extremes(*pc.min_max(vals).as_py().values())
                self._count_values(vals.to_pylist(), seen.tolist(), True)
            return
        self.distinct.add(hash_strings(arr))
        if self.kind == "string":
            self.extremes(*pc.min_max(arr).as_py().values())
            self._count_values(*_frequent_in_sample(arr, n, rng), False)

    # -- a sample --------------------------------------------------------------------------

    def sample(self, arr: pa.Array, count: int) -> np.ndarray | None:
        """Take a null-free sample standing for ``count`` non-null values (whose count,
        nulls, min and max came from exact statistics); numbers are returned for
        :func:`sample_numbers` to finish, all columns at once."""
        self.approx = True
        if len(arr) == 0 or self.kind == "other":
            return None
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        self.covered += count
        w = count / len(arr)
        if self.kind == "boolean":
            self.trues += w * (pc.sum(arr).as_py() or 0)
        elif self.kind in ("string", "binary"):
            vc = pc.value_counts(arr)
            vals, seen = vc.field(0), numpy_values(vc.field(1))
            h = hash_strings(vals)
            order = np.argsort(h)
            self.sampled_hashes(h[order], seen[order], len(arr))
            if self.kind == "string":
                self._count_values(vals.to_pylist(), (seen * w).tolist(), False)
        else:
            return _numbers(arr, self.kind)
        return None

    def sampled_hashes(self, h: np.ndarray, seen: np.ndarray, n: int) -> None:
        """Record the distinct hashes (sorted) of ``n`` sampled values and their counts."""
        d = self.distinct
        if d.exact and not len(d.sparse) and len(h) <= SPARSE_MAX:
            d.sparse = h  # already distinct and sorted
        else:
            d.add(h)
        self.hashed += n
        mine = (h[:BOTTOM_K], seen[:BOTTOM_K].astype(np.int64))
        self.bottom = mine if self.bottom is None else merge_bottoms([self.bottom, mine])

    # -- helpers ---------------------------------------------------------------------------

    def _moments(self, n: float, mean: float, m2: float) -> None:
        """Chan's parallel merge of (count, mean, M2)."""
        tot = self.mn + n
        delta = mean - self.mean
        self.m2 += m2 + delta * delta * self.mn * n / tot
        self.mean += delta * n / tot
        self.mn = tot

    def extremes(self, lo: Any, hi: Any) -> None:
        if lo is None:
            return
        lo, hi = _plain(lo, self.kind), _plain(hi, self.kind)
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)

    def _feed_quantiles(self, v: np.ndarray, rng: np.random.Generator | None, w: float = 1) -> None:
        """Feed a quantile sketch at most ``_KLL_FEED`` values (a quarter of that once the
        column has seen ``_KLL_PLENTY``) standing for ``len(v) * w``;
        values sampled at different rates (powers of two) go to different sketches."""
        m = len(v)
        if m == 0:
            return
        j = 0
        feed = _KLL_FEED if self.covered - m < _KLL_PLENTY else _KLL_FEED >> 2
        if rng is not None and m > feed:
            j = math.ceil(math.log2(m / feed))
            v = v[rng.integers(0, m, round(m / 2**j))]
        elif w > 1:
            j = round(math.log2(w))
        v = np.ascontiguousarray(v * seconds_per_raw(self.spec) if self.spec else v, np.float64)
        self.rep[j] = self.rep.get(j, 0.0) + m * w
        if len(v) < KLL_K:  # a small sample: sketched in bulk with others later
            pending = self.raw.setdefault(j, [])
            pending.append(v)
            self.raw_rep[j] = self.raw_rep.get(j, 0.0) + m * w
            if len(pending) >= 64:  # many small batches: fewer than _KLL_FEED values
                self.flush_samples(j)
        else:
            self._sketch_values(j, v)

    def _sketch_values(self, j: int, v: np.ndarray) -> None:
        sk = self.kll.get(j)
        if sk is None:
            sk = self.kll[j] = ds.kll_doubles_sketch(KLL_K)
        v = np.ascontiguousarray(v, np.float64)
        sk.update(v if v.flags.writeable else v.copy())  # it takes writable arrays only

    def flush_samples(self, j: int) -> None:
        """Sketch class ``j``'s pending samples. Past ``_KLL_FEED`` values, every 2**s-th
        goes to class j + s instead (sketching costs by the value; merging the samples of
        a thousand files must stay cheap)."""
        pending, moved = self.raw.pop(j, []), self.raw_rep.pop(j, 0.0)
        if not pending:
            return
        v = np.concatenate(pending)
        s = max(0, math.ceil(math.log2(len(v) / _KLL_FEED)))
        if s:
            v = v[(len(v) % (1 << s)) // 2 :: 1 << s]
            self.rep[j + s] = self.rep.get(j + s, 0.0) + moved
            self.rep[j] -= moved
            if j not in self.kll:
                del self.rep[j]
        self._sketch_values(j + s, v)

    def _count_values(self, vals: list[Any], counts: list[float], exact: bool) -> None:
        fv = self.fv
        if fv is None:
            return
        for v, c in zip(vals, counts, strict=True):
            v = v[:STRING_LIMIT] if isinstance(v, str) else v
            fv[v] = fv.get(v, 0) + c
        self.fv_complete = self.fv_complete and exact
        if len(fv) > _FV_CAP:
            self.fv = dict(sorted(fv.items(), key=lambda kv: -kv[1])[:_FV_CAP])
            self.fv_complete = False


def _frequent_in_sample(
    arr: pa.Array, n: int, rng: np.random.Generator
) -> tuple[list[Any], list[float]]:
    """The values of ``arr`` (``n`` long) seen 4 times or more in a sample of it, with
    their counts scaled to the whole: the rest of a sample's values would be noise."""
    idx = _spread(n, _FV_SAMPLE, rng)
    sample = pc.value_counts(arr.take(arrow_values(idx)))
    seen = numpy_values(sample.field(1))
    keep = np.flatnonzero(seen >= 4)
    counts = (seen[keep] * (n / len(idx))).tolist()
    return sample.field(0).take(arrow_values(keep)).to_pylist(), counts


def sample_numbers(items: list[tuple[Column, np.ndarray, float]]) -> None:
    """Moments, quantiles and hashes of the sampled numeric columns of a file, many
    columns per numpy call (a sample is small: per-call overhead is what costs)."""
    n = len(items[0][1])
    if any(len(x) != n for _, x, _ in items):  # nulls made the columns ragged
        for item in items:
            sample_numbers([item])
        return
    by_dtype: dict[np.dtype, list[int]] = {}
    for k, (_, x, _) in enumerate(items):
        by_dtype.setdefault(x.dtype, []).append(k)
    order = [k for ks in by_dtype.values() for k in ks]
    blocks = [np.stack([items[k][1] for k in ks], axis=1) for ks in by_dtype.values()]
    hashes, seen = unique_counts(mix64(np.concatenate([number_bits(b) for b in blocks], 1)))
    floats = np.concatenate([b.astype(np.float64, copy=False) for b in blocks], 1)
    sums = floats.sum(0)
    finite = bool(np.isfinite(sums).all())
    if finite:
        centred = floats - sums / n
        means, variances = (
            (sums / n).tolist(),
            (np.einsum("ij,ij->j", centred, centred) / n).tolist(),
        )
    for pos, k in enumerate(order):
        col, x, w = items[k]
        col.sampled_hashes(hashes[pos], seen[pos], n)
        if col.fv is not None and len(hashes[pos]) <= n // 4:
            vc = pc.value_counts(arrow_values(x))
            counts = (numpy_values(vc.field(1)) * w).tolist()
            col._count_values(vc.field(0).to_pylist(), counts, False)
        else:
            col.fv = None
        if col.kind == "temporal":
            col._feed_quantiles(x, None, w)
            continue
        f = floats[:, pos]
        if finite:
            m, mean, var = n, means[pos], variances[pos]
        else:
            f = f[np.isfinite(f)]
            m, mean, var = (
                len(f),
                float(np.mean(f)) if len(f) else 0.0,
                float(np.var(f)) if len(f) else 0.0,
            )
        if m:
            col._moments(m * w, mean, var * m * w)
            col.exact = False
            col._feed_quantiles(f, None, w)


Record = tuple[list[Any], bytes | None]
"""A column as a record (see :func:`to_record`) and the bytes its sketch offsets point
into; None for a live record, whose sketches are objects (:func:`live_record`)."""


def live_record(c: Column) -> list[Any]:
    """A column as a record that holds its sketches as objects (same fields as
    :func:`to_record`, nothing copied)."""
    kll = [(j, c.rep[j], c.kll.get(j), c.raw.get(j, []), c.raw_rep.get(j, 0.0)) for j in c.rep]
    return [
        c.name, c.type, c.kind, c.spec, c.count, c.nulls, c.lo, c.hi, c.mn, c.mean, c.m2,
        c.exact, c.trues, c.covered, kll, c.distinct, c.hashed, c.bottom, c.fv,
        c.fv_complete, c.approx,
    ]  # fmt: skip


def merge_records(items: list[Record], extra_nulls: int) -> Column:
    """One column state for the union of the rows of ``items`` (one column, one type)
    and of ``extra_nulls`` rows that lacked the column. Works field by field across
    all parts at once, checking what came from bytes: merging the cached states of a
    thousand files must stay cheap. ValueError (or TypeError, ...) when malformed."""
    recs = [r for r, _ in items]
    name, type_, kind, spec = recs[0][:4]
    if kind not in _KINDS or (spec is not None if kind != "temporal" else not _spec_ok(spec)):
        raise ValueError(f"bad kind for column {str(name)[:100]!r}")
    if any(len(r) != 21 or r[2] != kind or r[3] != spec for r in recs):
        raise ValueError(f"bad record for column {str(name)[:100]!r}")
    counts, nulls, covered, hashed = ([r[i] for r in recs] for i in (4, 5, 13, 16))
    if not all(type(v) is int and v >= 0 for v in (*counts, *nulls, *covered, *hashed)):
        raise ValueError("bad counts")
    if not all(type(r[i]) is bool for r in recs for i in (11, 19, 20)):
        raise ValueError("bad flags")
    out = Column(name, type_, kind, spec)
    out.count, out.nulls = sum(counts), sum(nulls) + extra_nulls
    out.covered, out.hashed = sum(covered), sum(hashed)
    los = [r[6] for r in recs if r[6] is not None]
    his = [r[7] for r in recs if r[7] is not None]
    if los or his:
        want = _EXTREMES[kind]
        if want is float:
            los, his = [float(v) for v in los], [float(v) for v in his]
        elif want is None or not all(type(v) is want for v in (*los, *his)):
            raise ValueError("bad min/max")
        out.lo, out.hi = min(los), max(his)
    n = np.array([r[8] for r in recs], np.float64)
    moved = n > 0
    if moved.any():
        n = n[moved]
        means = np.array([r[9] for r in recs], np.float64)[moved]
        m2 = np.array([r[10] for r in recs], np.float64)[moved]
        out.mn = float(n.sum())
        out.mean = float(np.dot(n, means) / out.mn)
        dev = means - out.mean
        out.m2 = float(m2.sum() + np.dot(n, dev * dev))
        out.exact = all(r[11] for r, m in zip(recs, moved.tolist(), strict=True) if m)
    out.trues = float(np.sum(np.array([r[12] for r in recs], np.float64)))
    kll, raw, rep, raw_rep = out.kll, out.raw, out.rep, out.raw_rep
    for r, blob in items:
        q = r[14]
        if blob is None:
            for j, rows, sk, pending, pending_rep in q:
                rep[j] = rep.get(j, 0.0) + rows
                raw_rep[j] = raw_rep.get(j, 0.0) + pending_rep
                if sk is not None:
                    if j not in kll:
                        kll[j] = ds.kll_doubles_sketch(KLL_K)
                    kll[j].merge(sk)
                if pending:
                    raw.setdefault(j, []).extend(pending)
            continue
        for i in range(0, len(q), 7):  # flat: see to_record
            j, rows, at, size, raw_at, raw_size, pending_rep = q[i : i + 7]
            if type(j) is not int or not 0 <= j < 64:
                raise ValueError("bad quantile class")
            rep[j] = rep.get(j, 0.0) + float(rows)
            raw_rep[j] = raw_rep.get(j, 0.0) + float(pending_rep)
            if size:  # a sketch read from bytes is ours to keep
                sk = ds.kll_doubles_sketch.deserialize(blob[at : at + size])
                if j in kll:
                    kll[j].merge(sk)
                else:
                    kll[j] = sk
            if raw_size:
                raw.setdefault(j, []).append(np.frombuffer(blob, np.float64, raw_size // 8, raw_at))
    for j in [j for j, pending in raw.items() if sum(map(len, pending)) > _KLL_FEED]:
        out.flush_samples(j)
    if any(j >= 64 for j in rep):
        raise ValueError("bad quantile class")
    distincts, bottoms = [], []
    for r, b in items:
        bottom, distinct = r[17], r[15]
        if b is not None:
            bottom = None if bottom is None else bottom_from_bytes(b, *bottom)
            if distinct == "b" and bottom is not None:
                distinct = Distinct(sparse=bottom[0])
            else:
                distinct = Distinct.from_bytes(b, *distinct)
        distincts.append(distinct)
        if bottom is not None:
            bottoms.append(bottom)
    out.distinct = Distinct.merge(distincts)
    out.bottom = merge_bottoms(bottoms) if bottoms else None
    out.approx = any(r[20] for r in recs)
    if out.fv is None:
        if any(r[18] is not None for r in recs):
            raise ValueError("frequent values for a kind that has none")
    elif any(r[18] is None for r in recs):
        out.fv, out.fv_complete = None, False
    else:
        out.fv_complete = all(r[19] for r in recs)
        want = str if kind == "string" else int
        for r, b in items:
            fv = r[18]
            vals, seen = (list(fv), list(fv.values())) if b is None else (fv[::2], fv[1::2])
            seen = [float(n) for n in seen]
            if b is not None and not all(type(v) is want for v in vals):
                raise ValueError("bad frequent value")
            out._count_values(vals, seen, r[19])
    return out


# --- bytes -------------------------------------------------------------------------------

_KINDS = ("integer", "float", "boolean", "string", "temporal", "binary", "other")
_SPECUNITS = ("D", *UNITS)


def to_record(c: Column, blob: list[bytes], at: list[int]) -> list[Any]:
    """A column as a JSON list, its sketches appended to ``blob`` (``at``: its length):
    name, type, kind, temporal spec, count, nulls, min, max, moments (n, mean, M2),
    exact moments?, trues, covered, quantile classes (flat: class, rows it stands for,
    sketch offset and size, pending values offset and size, rows those stand for),
    distinct state ("b": the
    bottom-k's hashes), hashed, bottom-k, frequent values (flat: value, count),
    complete?, approximate?"""

    def put(b: bytes) -> list[int]:
        blob.append(b)
        at[0] += len(b)
        return [at[0] - len(b), len(b)]

    def sketch(j: int) -> list[int]:
        return put(c.kll[j].serialize()) if j in c.kll else [0, 0]

    def pending(j: int) -> list[int]:
        return put(np.concatenate(c.raw[j]).tobytes()) if j in c.raw else [0, 0]

    lo, hi = (_jf(c.lo), _jf(c.hi)) if c.kind == "float" and c.lo is not None else (c.lo, c.hi)
    # A sample's distinct hashes are often just its bottom-k hashes: stored once.
    sparse, bottom = c.distinct.sparse, c.bottom
    same = sparse is not None and bottom is not None and np.array_equal(sparse, bottom[0])
    return [
        c.name, c.type, c.kind, c.spec, c.count, c.nulls, lo, hi,
        _jf(c.mn), _jf(c.mean), _jf(c.m2), c.exact, c.trues, c.covered,
        [x for j in c.rep for x in (j, c.rep[j], *sketch(j), *pending(j), c.raw_rep.get(j, 0))],
        "b" if same else put(c.distinct.to_bytes()), c.hashed,
        None if c.bottom is None else put(bottom_to_bytes(c.bottom)),
        None if c.fv is None else [x for kv in c.fv.items() for x in kv], c.fv_complete, c.approx,
    ]  # fmt: skip


_KINDS = frozenset(("integer", "float", "boolean", "string", "temporal", "binary", "other"))
_EXTREMES: dict[str, type | None] = {
    "integer": int, "float": float, "boolean": bool, "string": str, "temporal": int,
    "binary": None, "other": None,
}  # fmt: skip


def _spec_ok(spec: Any) -> bool:
    return (
        type(spec) is list
        and len(spec) == 3
        and spec[0] in ("timestamp", "date", "time", "duration")
        and (spec[1] == "D" or spec[1] in UNITS)
        and (spec[2] is None or type(spec[2]) is str)
    )
