"""The sketches behind column profiles: value hashes, distinct counts, bottom-k samples.

Every value is hashed to 64 bits with numpy, many at a time (a per-value Python loop
over millions of values would be far too slow): numbers by value, strings and binary by
their bytes. The hashes feed a HyperLogLog sketch for distinct counts (kept as the exact
set of hashes while small) and, for sampled data, a bottom-k sample with the number of
times each value was seen, from which :mod:`shipyard.datasets.profiles` extrapolates.

The hash functions are part of the stored profile format: they must never change
without a new format version.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HLL_P = 12
HLL_M = 1 << HLL_P  # registers: about 1.04 / sqrt(4096) = 1.6% error
HLL_Q = 64 - HLL_P
SPARSE_MAX = 256  # distinct hashes kept exactly before switching to registers
BOTTOM_K = 256  # smallest hashes (with counts) kept of a sample

_U64 = np.uint64
_C1, _C2, _C3 = _U64(0xFF51AFD7ED558CCD), _U64(0xC4CEB9FE1A85EC53), _U64(0x9E3779B97F4A7C15)
_MASKS = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [(1 << 64) - 1], dtype=_U64)
_LONG = 256  # strings longer than this are hashed one by one (blake2b)
_CHUNK = 1 << 15  # values hashed at a time: the arrays stay in cache


def mix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer, in place on a uint64 array (which it returns)."""
    t = np.right_shift(h, _U64(33))
    h ^= t
    h *= _C1
    np.right_shift(h, _U64(33), out=t)
    h ^= t
    h *= _C2
    np.right_shift(h, _U64(33), out=t)
    h ^= t
    return h


_WORD_MULT = mix64(np.arange(1, _LONG // 8 + 2, dtype=_U64) * _C3) | _U64(1)


def number_bits(x: np.ndarray) -> np.ndarray:
    """What a number's hash is computed from: ints as int64 (uint64 as is), floats as
    float64 bits with -0.0 folded into 0.0 and every NaN into one NaN (a new array)."""
    if x.dtype.kind != "f":
        return x.astype(np.uint64 if x.dtype == np.uint64 else np.int64).view(_U64)
    bits = np.add(x, 0.0, dtype=np.float64)
    nan = np.isnan(bits)
    if nan.any():
        bits[nan] = np.nan
    return bits.view(_U64)


def hash_numbers(x: np.ndarray) -> np.ndarray:
    """64-bit hashes of numbers by value (any shape)."""
    if x.size <= _CHUNK:
        return mix64(number_bits(x))
    out = np.empty(len(x), _U64)
    for a in range(0, len(x), _CHUNK):
        out[a : a + _CHUNK] = mix64(number_bits(x[a : a + _CHUNK]))
    return out


def hash_strings(arr: pa.Array) -> np.ndarray:
    """64-bit hashes of the bytes of each value of a null-free string or binary array:
    eight bytes at a time, each word mixed and weighted by its position."""
    t = arr.type
    large = pa.types.is_large_string(t) or pa.types.is_large_binary(t)
    if not (large or pa.types.is_string(t) or pa.types.is_binary(t)):
        arr, large = pc.cast(arr, pa.large_binary()), True
    n, width = len(arr), 8 if large else 4
    bufs = arr.buffers()
    off = np.frombuffer(bufs[1], np.int64 if large else np.int32, n + 1, arr.offset * width)
    data = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    out = np.empty(n, _U64)
    for a in range(0, n, _CHUNK):
        o = off[a : a + _CHUNK + 1].astype(np.int64)
        base, end = int(o[0]), int(o[-1])
        pad = np.zeros(end - base + 8, np.uint8)  # room to read a whole word past the end
        pad[: end - base] = data[base:end]
        out[a : a + _CHUNK] = _hash_chunk(pad, o[:-1] - base, np.diff(o))
    return out


def _hash_chunk(pad: np.ndarray, start: np.ndarray, lens: np.ndarray) -> np.ndarray:
    words = np.ndarray((len(pad) - 7,), _U64, pad, 0, (1,))  # a word at every byte
    h = np.zeros(len(lens), _U64)
    long = lens > _LONG
    act: np.ndarray | None = np.flatnonzero(~long) if long.any() else None
    minlen = int(lens.min()) if act is None and len(lens) else 0
    j = 0
    while True:  # word j of every string that has one (all strings while j < minlen)
        if act is None and j >= minlen:
            act = np.flatnonzero(lens > j)
        elif act is not None:
            act = act[lens[act] > j]
        if act is not None and len(act) == 0:
            break
        s, ln = (start, lens) if act is None else (start[act], lens[act])
        w = words[s + j]
        if act is not None or j + 8 > minlen:
            w &= _MASKS[np.minimum(ln - j, 8)]
        w ^= w >> _U64(29)
        w *= _WORD_MULT[j // 8]
        if act is None:
            h += w
        else:
            h[act] += w
        j += 8
    for i in np.flatnonzero(long):
        raw = pad[start[i] : start[i] + lens[i]].tobytes()
        h[i] = int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little")
    h ^= lens.astype(_U64) * _C3
    return mix64(h)


def unique_counts(h: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The distinct hashes (sorted) of each column of a 2-D array and how often each
    occurs, without a loop over values: one array of each per column."""
    n, k = h.shape
    s = np.sort(h.T, axis=1).ravel()  # column by column, each sorted
    first = np.empty(len(s), bool)
    first[0] = True
    np.not_equal(s[1:], s[:-1], out=first[1:])
    first[::n] = True  # every column starts a run
    pos = np.flatnonzero(first)
    counts = np.diff(pos, append=len(s))
    cuts = np.searchsorted(pos, np.arange(k + 1) * n).tolist()
    vals = s[pos]
    return (
        [vals[cuts[i] : cuts[i + 1]] for i in range(k)],
        [counts[cuts[i] : cuts[i + 1]] for i in range(k)],
    )


# --- HyperLogLog ---------------------------------------------------------------------------


def registers(h: np.ndarray, reg: np.ndarray | None = None) -> np.ndarray:
    """Raise HyperLogLog registers with the hashes ``h``: the low P bits pick a register,
    which keeps the largest rank of the first 1-bit among the high Q bits."""
    reg = np.zeros(HLL_M, np.uint8) if reg is None else reg
    for a in range(0, len(h), _CHUNK):
        part = h[a : a + _CHUNK]
        least = int(reg.min())
        if least:  # a hash counts only with more leading zeros than the lowest register
            part = part[part < _U64(1 << (64 - least))]
        idx = (part & _U64(HLL_M - 1)).astype(np.intp)
        rank = HLL_Q + 1 - np.frexp((part >> _U64(HLL_P)).astype(np.float64))[1]
        np.maximum.at(reg, idx, rank.astype(np.uint8))
    return reg


def hll_estimate(reg: np.ndarray) -> float:
    """Ertl's improved raw estimator (2017): unbiased over the whole range, no tables."""
    m, q = HLL_M, HLL_Q
    c = np.bincount(reg, minlength=q + 2).tolist()
    if c[0] == m:
        return 0.0
    z = m * _tau(1.0 - c[q + 1] / m)
    for k in range(q, 0, -1):
        z = 0.5 * (z + c[k])
    z += m * _sigma(c[0] / m)
    return m * m / (2.0 * math.log(2.0)) / z


def _sigma(x: float) -> float:
    y, z = 1.0, x
    while True:
        x *= x
        prev, z = z, z + x * y
        y += y
        if z == prev:
            return z


def _tau(x: float) -> float:
    if x in (0.0, 1.0):
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        prev = z
        y *= 0.5
        z -= (1.0 - x) ** 2 * y
        if z == prev:
            return z / 3.0


class Distinct:
    """Distinct values: their hashes while few (exact), else HyperLogLog registers."""

    __slots__ = ("reg", "sparse")

    def __init__(self, sparse: np.ndarray | None = None, reg: np.ndarray | None = None) -> None:
        self.sparse = np.empty(0, _U64) if sparse is None and reg is None else sparse
        self.reg = reg

    @property
    def exact(self) -> bool:
        return self.sparse is not None

    def add(self, h: np.ndarray) -> None:
        if self.sparse is not None:
            if len(h) <= 4 * SPARSE_MAX:
                u = np.union1d(self.sparse, h)
                if len(u) <= SPARSE_MAX:
                    self.sparse = u
                    return
                h = u
            else:
                h = np.concatenate([self.sparse, h])
            self.sparse, self.reg = None, np.zeros(HLL_M, np.uint8)
        registers(h, self.reg)

    def estimate(self) -> float:
        return float(len(self.sparse)) if self.sparse is not None else hll_estimate(self.reg)

    @staticmethod
    def merge(parts: list[Distinct]) -> Distinct:
        """The union (a new object)."""
        sparse = [p.sparse for p in parts if p.sparse is not None]
        regs = [p.reg for p in parts if p.reg is not None]
        if len(regs) == 1 and not sparse:
            return Distinct(reg=regs[0].copy())
        out = Distinct()
        if sparse:
            out.add(np.concatenate(sparse))
        if regs:
            if out.reg is not None:
                regs.append(out.reg)
            out.reg = np.max(np.stack(regs), 0)
            if out.sparse is not None:
                registers(out.sparse, out.reg)
            out.sparse = None
        return out

    def to_bytes(self) -> bytes:
        if self.sparse is not None:
            return b"S" + self.sparse.tobytes()
        return b"D" + self.reg.tobytes()

    @staticmethod
    def from_bytes(b: bytes, offset: int = 0, size: int | None = None) -> Distinct:
        """Read :meth:`to_bytes` from ``b[offset : offset + size]`` without copying."""
        size = len(b) - offset if size is None else size
        if offset < 0 or size < 1 or offset + size > len(b):
            raise ValueError("bad distinct-count state")
        mode, n = b[offset : offset + 1], size - 1
        if mode == b"S" and n % 8 == 0 and n <= 8 * SPARSE_MAX:
            return Distinct(sparse=np.frombuffer(b, _U64, n // 8, offset + 1))
        if mode == b"D" and n == HLL_M:
            reg = np.frombuffer(b, np.uint8, n, offset + 1).copy()
            if int(reg.max()) <= HLL_Q + 1:
                return Distinct(reg=reg)
        raise ValueError("bad distinct-count state")


# --- bottom-k samples ------------------------------------------------------------------------

Bottom = tuple[np.ndarray, np.ndarray]  # the smallest distinct hashes (sorted), their counts


def merge_bottoms(parts: list[Bottom]) -> Bottom:
    """The ``BOTTOM_K`` smallest hashes of the union, with counts summed: the same value
    has the same hash in every part, so its count there is complete."""
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return np.empty(0, _U64), np.empty(0, np.int64)
    h = np.concatenate([p[0] for p in parts])
    c = np.concatenate([p[1] for p in parts])
    if len(h) > 4 * BOTTOM_K:  # keep what can be among the smallest, cheaply
        cut = np.partition(h, 4 * BOTTOM_K)[4 * BOTTOM_K]
        keep = h <= cut
        h, c = h[keep], c[keep]
    u, inv = np.unique(h, return_inverse=True)
    counts = np.bincount(inv, weights=c).astype(np.int64)
    return u[:BOTTOM_K], counts[:BOTTOM_K]


def singleton_share(b: Bottom) -> float:
    """The share of the sampled distinct values seen once (0 when none were sampled)."""
    return float(np.mean(b[1] == 1)) if len(b[1]) else 0.0


def bottom_to_bytes(b: Bottom) -> bytes:
    return b[0].tobytes() + b[1].astype("<u4").tobytes()


def bottom_from_bytes(b: bytes, offset: int = 0, size: int | None = None) -> Bottom:
    """Read :func:`bottom_to_bytes` from ``b[offset : offset + size]`` without copying."""
    size = len(b) - offset if size is None else size
    n = size // 12
    if size != 12 * n or n > BOTTOM_K or offset < 0 or offset + size > len(b):
        raise ValueError("bad bottom-k sample")
    return np.frombuffer(b, _U64, n, offset), np.frombuffer(b, "<u4", n, offset + 8 * n)
