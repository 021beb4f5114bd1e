"""Signed 64-bit integers: the range of every integer column (ids, steps, times, offsets).

A number that comes from a request (a path id, a filter literal, a page token, a query
value) is checked here before it reaches the database: past this range SQLite raises
OverflowError and PostgreSQL NumericValueOutOfRange, and the caller would get a 500
instead of a 400 that names the value.
"""

from __future__ import annotations

import re

from shipyard.errors import InvalidInput

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# ASCII digits only: re's \d and str.isdigit() also take '²', '٢' or '２', which int()
# refuses or reads as another number.
_INTEGER = re.compile(r"[+-]?[0-9]+")
_MAX_DIGITS = len(str(INT64_MAX))


def parse_int64(text: str) -> int | None:
    """The integer ``text`` spells in ASCII digits (with an optional sign), or None when
    it spells none or one outside the 64-bit range."""
    if not _INTEGER.fullmatch(text):
        return None
    # Refused by length first: int() is slow on long strings, and raises past 4,300 digits.
    if len(text.lstrip("+-").lstrip("0")) > _MAX_DIGITS:
        return None
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else None


def numeric_id(ref: str, what: str) -> int | None:
    """The id ``ref`` names when it is written as a number (ASCII digits only), None when
    it is a name; InvalidInput naming ``what`` when it is past the 64-bit range.

    ``'²'``, ``'٢'`` and ``'２'`` are names: ``str.isdigit()`` is true for them, but
    ``int()`` refuses the first and reads the others as 2.
    """
    if not (ref.isascii() and ref.isdigit()):
        return None
    value = parse_int64(ref)
    if value is None:
        shown = ref if len(ref) <= 40 else ref[:37] + "..."
        raise InvalidInput(
            f"{what} {shown} is out of the 64-bit integer range ({INT64_MIN} to {INT64_MAX})",
            {"value": shown},
        )
    return value
