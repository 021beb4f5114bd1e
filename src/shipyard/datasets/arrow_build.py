"""Arrow values built from Python ones without pyarrow's pandas check.

pyarrow converts Python objects (``pa.array([...])``, ``pa.scalar(x)``) on a path that
imports pandas first, to recognise pandas' own types: 0.15 s of a ``shipyard data
ingest`` that validates a few files and never uses pandas. Validation builds its bounds
and value sets here instead, from numpy buffers (see also
:func:`~shipyard.datasets.profile_sketches.arrow_values`); what these do not cover is
left to pyarrow's conversion by the caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from shipyard.datasets.profile_sketches import arrow_values

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


def number(value: int | float) -> pa.Scalar | None:
    """``value`` as an int64 or float64 scalar; None for an int outside int64."""
    try:
        return arrow_values(np.array([value], np.int64 if isinstance(value, int) else np.float64))[
            0
        ]
    except OverflowError:
        return None


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
