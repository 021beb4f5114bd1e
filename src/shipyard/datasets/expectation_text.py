"""How expectation results read: default names, counts and ages in words, and sample
values as JSON can carry them (shared by the row-level and the whole-version checks)."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

from shipyard.datasets.types import (
    Expectation,
    FreshnessExpectation,
    RangeExpectation,
    RegexExpectation,
    RowCountExpectation,
    SchemaExpectation,
    SqlExpectation,
    UniqueExpectation,
)

SAMPLES = 5
"""Failing rows (or repeated keys) kept per expectation."""
_TEXT_LIMIT = 200  # longer strings in samples are cut


def rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def num(x: float | int) -> str:
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return str(x)


def bound(x: float | str | None) -> str:
    return "" if x is None else num(x) if isinstance(x, int | float) else x


def interval(lo: float | str | None, hi: float | str | None) -> str:
    if lo is not None and hi is not None:
        return f"[{bound(lo)}, {bound(hi)}]"
    return f">= {bound(lo)}" if lo is not None else f"<= {bound(hi)}"


def duration(seconds: float) -> str:
    """``3 days``, ``1.5 hours``, ``40 seconds``: an age a person reads at a glance."""
    units = (("day", 86400.0), ("hour", 3600.0), ("minute", 60.0), ("second", 1.0))
    unit, size = next((u for u in units if abs(seconds) >= u[1]), units[-1])
    value = round(seconds / size, 1)
    return f"{num(value)} {unit}" + ("" if value == 1 else "s")


def jsonable(v: Any) -> Any:
    """A sample value as JSON can carry it: numbers, strings, ISO times, None."""
    if v is None or isinstance(v, bool | int | str):
        return v if not isinstance(v, str) or len(v) <= _TEXT_LIMIT else v[:_TEXT_LIMIT] + "…"
    if isinstance(v, float):
        return v if math.isfinite(v) else str(v)
    if isinstance(v, Decimal):
        return jsonable(float(v))
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    if isinstance(v, bytes | bytearray | memoryview):
        return jsonable(bytes(v).hex())
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v[: SAMPLES * 4]]
    return jsonable(str(v))


def describe(exp: Expectation) -> str:
    """The default name of an expectation: what it checks, briefly."""
    match exp:
        case SchemaExpectation():
            return "schema(" + ", ".join(list(exp.columns)[:5]) + ")"
        case UniqueExpectation():
            return "unique(" + ", ".join(exp.columns) + ")"
        case RangeExpectation():
            return f"range({exp.column}, {interval(exp.min, exp.max)})"
        case RegexExpectation():
            return f"regex({exp.column}, {exp.pattern[:60]!r})"
        case RowCountExpectation():
            return f"row_count({interval(exp.min, exp.max)})"
        case FreshnessExpectation():
            return f"freshness({exp.column}, {duration(exp.max_age_seconds)})"
        case SqlExpectation():
            return f"sql({exp.predicate[:80]})"
        case _:
            return f"{exp.kind}({exp.column})"
