"""The one bounded-integer parse and numeric-id rule every request value goes through."""

from __future__ import annotations

import pytest

from shipyard.errors import InvalidInput
from shipyard.int64 import INT64_MAX, INT64_MIN, numeric_id, parse_int64


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("42", 42),
        ("+7", 7),
        ("-7", -7),
        ("007", 7),
        (str(INT64_MAX), INT64_MAX),
        (str(INT64_MIN), INT64_MIN),
        ("0" * 30 + "1", 1),  # leading zeros are not size
    ],
)
def test_integers_in_range_parse(text: str, value: int) -> None:
    assert parse_int64(text) == value


@pytest.mark.parametrize(
    "text",
    [
        str(INT64_MAX + 1),
        str(INT64_MIN - 1),
        "99999999999999999999999",
        "9" * 5000,  # int() itself refuses strings past 4,300 digits
        "",
        "1.0",
        "1e3",
        " 1",
        "1_000",
        "²",
        "٢",
        "２",
    ],
)
def test_anything_else_is_none(text: str) -> None:
    assert parse_int64(text) is None


@pytest.mark.parametrize("ref", ["²", "٢", "２", "12a", "-1", "+1", "", "a"])
def test_only_ascii_digits_are_numeric_ids(ref: str) -> None:
    assert numeric_id(ref, "project id") is None


def test_numeric_ids_in_and_out_of_range() -> None:
    assert numeric_id("12", "project id") == 12
    assert numeric_id(str(INT64_MAX), "project id") == INT64_MAX
    with pytest.raises(InvalidInput, match=r"project id 99999999999999999999999 is out of"):
        numeric_id("99999999999999999999999", "project id")
