"""Arrow values to and from numpy and Python without pyarrow's pandas check.

pyarrow's own conversions (``pa.array([...])``, ``pa.scalar(x)``, ``to_numpy``) import
pandas first, to recognise pandas' own types: 0.15-0.25 s of a ``shipyard data ingest``
that profiles and validates a few files and never uses pandas. Profiles and validation
build their arrays, scalars, bounds and value sets here instead, from numpy buffers;
what these do not cover is left to pyarrow's conversion by the caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

_NUMPY_OF_ARROW = {
    arrow(): np.dtype(name)
    for arrow, name in [
        (pa.int8, "int8"), (pa.int16, "int16"), (pa.int32, "int32"), (pa.int64, "int64"),
        (pa.uint8, "uint8"), (pa.uint16, "uint16"), (pa.uint32, "uint32"),
        (pa.uint64, "uint64"), (pa.float32, "float32"), (pa.float64, "float64"),
    ]
}  # fmt: skip
_ARROW_OF_NUMPY = {dtype: arrow for arrow, dtype in _NUMPY_OF_ARROW.items()}


def numpy_values(arr: pa.Array) -> np.ndarray:
    """The values of an arrow array as numpy: a read-only view of the buffer for a
    null-free int or float array, pyarrow's conversion for anything else."""
    dtype = _NUMPY_OF_ARROW.get(arr.type)
    if dtype is None or arr.null_count:
        return arr.to_numpy(zero_copy_only=False)
    return np.frombuffer(arr.buffers()[1], dtype, len(arr), arr.offset * dtype.itemsize)


def arrow_values(x: np.ndarray) -> pa.Array:
    """A one-dimensional int or float numpy array as a null-free arrow array, sharing
    its memory when it is contiguous (see :func:`numpy_values`)."""
    arrow = _ARROW_OF_NUMPY.get(x.dtype)
    if arrow is None or x.ndim != 1:
        return pa.array(x)
    x = np.ascontiguousarray(x)
    return pa.Array.from_buffers(arrow, len(x), [None, pa.py_buffer(x)])


_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_DAY = dt.date(1970, 1, 1)
_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)
_EXACT_INT = 2**53  # the largest int a double holds with every smaller one

TRUE: pa.BooleanScalar = pa.Array.from_buffers(pa.bool_(), 1, [None, pa.py_buffer(b"\x01")])[0]
FALSE: pa.BooleanScalar = pa.Array.from_buffers(pa.bool_(), 1, [None, pa.py_buffer(b"\x00")])[0]
"""Boolean scalars, e.g. for ``pc.fill_null`` (which converts a Python bool with pa.scalar)."""


def strings(values: Sequence[str]) -> pa.Array:
    """``values`` as a string array."""
    encoded = [v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.large_string(), len(encoded), buffers).cast(pa.string())


def number(value: int | float) -> pa.Scalar:
    """``value`` as an int64 or float64 scalar (an int outside int64: as pyarrow makes it)."""
    try:
        dtype = np.int64 if isinstance(value, int) else np.float64
        return arrow_values(np.array([value], dtype))[0]
    except OverflowError:
        return pa.scalar(value)


def array_of(values: Sequence[Any], type_: pa.DataType) -> pa.Array | None:
    """``values``, all strings or all numbers, cast safely to ``type_`` (as pyarrow's own
    conversion would make them); None for anything else, or a cast that fails."""
    try:
        if all(isinstance(v, str) for v in values):
            base = strings(values)
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            base = arrow_values(np.array(values, np.int64))
        elif all(isinstance(v, float) or _exact_double(v) for v in values):
            base = arrow_values(np.array(values, np.float64))
        else:
            return None
        return base.cast(type_, safe=True)
    except (OverflowError, *_CAST_ERRORS):
        return None


def _exact_double(v: object) -> bool:
    """Whether ``v`` is an int (not a bool) that a double holds exactly."""
    return isinstance(v, int) and not isinstance(v, bool) and abs(v) <= _EXACT_INT


def timestamp(v: dt.datetime, tz: str | None) -> pa.Scalar:
    """A naive datetime (UTC when ``tz`` is given) as a ``timestamp[us, tz]`` scalar."""
    micros = (v - _EPOCH) // dt.timedelta(microseconds=1)
    return arrow_values(np.array([micros], np.int64)).view(pa.timestamp("us", tz=tz))[0]


def date(d: dt.date) -> pa.Scalar:
    """``d`` as a ``date32`` scalar."""
    days = (d - _EPOCH_DAY).days
    return arrow_values(np.array([days], np.int32)).view(pa.date32())[0]


def time_of_day(t: dt.time) -> pa.Scalar:
    """A time of day without a zone as a ``time64[us]`` scalar."""
    micros = ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond
    return arrow_values(np.array([micros], np.int64)).view(pa.time64("us"))[0]
