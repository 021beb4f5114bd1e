"""The search language's parser: structure, quoting, and a clear error for every mistake."""

from __future__ import annotations

import pytest

from shipyard.errors import InvalidInput
from shipyard.tracking.search_parser import (
    MAX_DEPTH,
    MAX_LENGTH,
    And,
    Comparison,
    Field,
    Not,
    Number,
    Or,
    OrderTerm,
    parse_filter,
    parse_order_by,
)


def cmp(kind: str, key: str, op: str, value: object) -> tuple[str, str, str, object]:
    return (kind, key, op, value)


def shape(expr: object) -> object:
    """The tree without positions, easy to compare."""
    if isinstance(expr, Comparison):
        value = expr.value
        if isinstance(value, tuple):
            value = tuple(v.value if isinstance(v, Number) else v for v in value)
        elif isinstance(value, Number):
            value = value.value
        return cmp(expr.field.kind, expr.field.key, expr.op, value)
    if isinstance(expr, And):
        return ("AND", [shape(e) for e in expr.items])
    if isinstance(expr, Or):
        return ("OR", [shape(e) for e in expr.items])
    if isinstance(expr, Not):
        return ("NOT", shape(expr.item))
    raise AssertionError(expr)


def parsed(source: str) -> object:
    expr = parse_filter(source)
    assert expr is not None
    return shape(expr)


def test_single_comparisons_and_operators() -> None:
    assert parsed("metrics.acc > 0.9") == cmp("metric", "acc", ">", 0.9)
    for op in ("=", "!=", "<", "<=", ">", ">="):
        assert parsed(f"metrics.loss {op} 1") == cmp("metric", "loss", op, 1)
    assert parsed("metrics.loss <> 1") == cmp("metric", "loss", "!=", 1)
    assert parsed("metrics.loss>=-1.5e-3") == cmp("metric", "loss", ">=", -0.0015)
    assert parsed("metrics.loss < .5") == cmp("metric", "loss", "<", 0.5)
    assert parsed("params.lr = '0.01'") == cmp("param", "lr", "=", "0.01")
    assert parsed('tags.team = "vision"') == cmp("tag", "team", "=", "vision")
    assert parsed("params.m LIKE 'res%'") == cmp("param", "m", "LIKE", "res%")
    assert parsed("params.m ILIKE 'res%'") == cmp("param", "m", "ILIKE", "res%")
    assert parsed("params.m NOT LIKE 'a'") == cmp("param", "m", "NOT LIKE", "a")
    assert parsed("params.m not ilike 'a'") == cmp("param", "m", "NOT ILIKE", "a")
    assert parsed("metrics.acc IS NULL") == cmp("metric", "acc", "IS NULL", None)
    assert parsed("metrics.acc is not null") == cmp("metric", "acc", "IS NOT NULL", None)


def test_the_64_bit_range_and_larger_decimals_parse() -> None:
    assert parsed(f"metrics.a > {2**63 - 1}") == cmp("metric", "a", ">", 2**63 - 1)
    assert parsed(f"metrics.a > {-(2**63)}") == cmp("metric", "a", ">", -(2**63))
    assert parsed("metrics.a > 1e30") == cmp("metric", "a", ">", 1e30)


def test_numbers_keep_their_type_and_text() -> None:
    expr = parse_filter("params.epochs = 10")
    assert isinstance(expr, Comparison)
    assert expr.value == Number(10, "10")
    assert isinstance(expr.value.value, int)
    expr = parse_filter("params.lr = 1.0e-2")
    assert isinstance(expr, Comparison)
    assert expr.value == Number(0.01, "1.0e-2")


def test_in_lists() -> None:
    assert parsed("tags.t IN ('a', 'b', \"c\")") == cmp("tag", "t", "IN", ("a", "b", "c"))
    assert parsed("tags.t not in ('a')") == cmp("tag", "t", "NOT IN", ("a",))
    assert parsed("metrics.m in (1, 2.5)") == cmp("metric", "m", "IN", (1, 2.5))
    assert parsed("run_id IN('x','y')") == cmp("attribute", "run_id", "IN", ("x", "y"))


def test_and_binds_tighter_than_or() -> None:
    a, b, c = (cmp("metric", k, ">", 1) for k in "abc")
    assert parsed("metrics.a > 1 or metrics.b > 1 and metrics.c > 1") == (
        "OR",
        [a, ("AND", [b, c])],
    )
    assert parsed("metrics.a > 1 and metrics.b > 1 or metrics.c > 1") == (
        "OR",
        [("AND", [a, b]), c],
    )
    assert parsed("metrics.a > 1 and metrics.b > 1 and metrics.c > 1") == ("AND", [a, b, c])


def test_parentheses_override_precedence() -> None:
    a, b, c = (cmp("metric", k, ">", 1) for k in "abc")
    assert parsed("(metrics.a > 1 or metrics.b > 1) and metrics.c > 1") == (
        "AND",
        [("OR", [a, b]), c],
    )
    assert parsed("((metrics.a > 1))") == a


def test_not() -> None:
    a, b = (cmp("metric", k, ">", 1) for k in "ab")
    assert parsed("NOT metrics.a > 1") == ("NOT", a)
    assert parsed("not not metrics.a > 1") == ("NOT", ("NOT", a))
    # NOT binds tighter than AND.
    assert parsed("not metrics.a > 1 and metrics.b > 1") == ("AND", [("NOT", a), b])
    assert parsed("not (metrics.a > 1 and metrics.b > 1)") == ("NOT", ("AND", [a, b]))


def test_keywords_are_case_insensitive() -> None:
    a, b = (cmp("metric", k, ">", 1) for k in "ab")
    assert parsed("metrics.a > 1 AnD metrics.b > 1") == ("AND", [a, b])
    assert parsed("metrics.a > 1 oR NoT metrics.b > 1") == ("OR", [a, ("NOT", b)])
    assert parsed("tags.t Is NoT nUlL") == cmp("tag", "t", "IS NOT NULL", None)
    assert parsed("METRICS.a > 1") == a  # prefixes too; keys keep their case
    assert parsed("metrics.A > 1") == cmp("metric", "A", ">", 1)


def test_quoting_of_values() -> None:
    assert parsed("params.x = 'it''s'") == cmp("param", "x", "=", "it's")
    assert parsed('params.x = "say ""hi"""') == cmp("param", "x", "=", 'say "hi"')
    assert parsed("params.x = 'a\"b'") == cmp("param", "x", "=", 'a"b')
    assert parsed("params.x = ''") == cmp("param", "x", "=", "")
    assert parsed("params.x = 'C:\\path\\'") == cmp("param", "x", "=", "C:\\path\\")
    assert parsed("params.x = 'and or not'") == cmp("param", "x", "=", "and or not")


def test_keys_bare_backticked_and_double_quoted() -> None:
    assert parsed("metrics.train/loss-v2.final < 1") == cmp("metric", "train/loss-v2.final", "<", 1)
    assert parsed("metrics.`my metric (%)` < 1") == cmp("metric", "my metric (%)", "<", 1)
    assert parsed("params.\"a key\" = 'v'") == cmp("param", "a key", "=", "v")
    assert parsed("tags.`it``s` = 'v'") == cmp("tag", "it`s", "=", "v")
    assert parsed("metrics.`and` > 1") == cmp("metric", "and", ">", 1)
    assert parsed("param.lr = '1'") == cmp("param", "lr", "=", "1")
    assert parsed("metric.acc = 1") == cmp("metric", "acc", "=", 1)
    assert parsed("tag.t = '1'") == cmp("tag", "t", "=", "1")


def test_attributes_bare_prefixed_and_aliased() -> None:
    assert parsed("status = 'FINISHED'") == cmp("attribute", "status", "=", "FINISHED")
    assert parsed("attributes.status = 'x'") == cmp("attribute", "status", "=", "x")
    assert parsed("attr.STATUS = 'x'") == cmp("attribute", "status", "=", "x")
    assert parsed("run_name = 'x'") == cmp("attribute", "name", "=", "x")
    assert parsed("attributes.run_name = 'x'") == cmp("attribute", "name", "=", "x")
    assert parsed("id = 'x'") == cmp("attribute", "run_id", "=", "x")
    assert parsed("attributes.`start_time` > 5") == cmp("attribute", "start_time", ">", 5)
    for name in ("user", "start_time", "end_time", "experiment_id", "parent_run_id", "name"):
        assert parsed(f"{name} = 1") == cmp("attribute", name, "=", 1)


def test_dataset_fields() -> None:
    assert parsed("datasets.name = 'x'") == cmp("dataset", "name", "=", "x")
    assert parsed("dataset.Digest != 'x'") == cmp("dataset", "digest", "!=", "x")
    assert parsed("datasets.context IN ('a')") == cmp("dataset", "context", "IN", ("a",))


def test_positions_are_recorded() -> None:
    expr = parse_filter("  metrics.acc  >  1")
    assert expr == Comparison(Field("metric", "acc", 2), ">", Number(1, "1"), 15)


def test_empty_filter_is_no_filter() -> None:
    assert parse_filter("") is None
    assert parse_filter("  \n\t ") is None


def error(source: str) -> str:
    with pytest.raises(InvalidInput) as info:
        parse_filter(source)
    return info.value.message


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("metrics.acc > ", "filter: expected a value after '>' at position 14"),
        (
            "metrics.acc",
            "filter: expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, "
            "NOT IN, IS NULL) after 'metrics.acc' at position 11",
        ),
        (
            "metrics.acc 5",
            "expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN, "
            "IS NULL) after 'metrics.acc', got '5' at position 12",
        ),
        (
            "metrics.a > 1 and",
            "filter: expected a field (metrics.<key>, params.<key>, tags.<key> "
            "or an attribute) at position 17",
        ),
        (
            "and metrics.a > 1",
            "expected a field (metrics.<key>, params.<key>, tags.<key> or an "
            "attribute), got 'and' at position 0",
        ),
        (
            "'x' = 1",
            "expected a field (metrics.<key>, params.<key>, tags.<key> or an attribute), "
            "got 'x' at position 0",
        ),
        (
            "(metrics.a > 1",
            "filter: expected ')' at position 14; the '(' at position 0 is not closed",
        ),
        (
            "metrics.a > 1)",
            "filter: expected AND, OR or the end of the filter, got ')' at position 13",
        ),
        (
            "metrics.a > 1 metrics.b > 2",
            "expected AND, OR or the end of the filter, got 'metrics.b' at position 14",
        ),
        (
            "()",
            "expected a field (metrics.<key>, params.<key>, tags.<key> or an attribute), got "
            "')' at position 1",
        ),
        (
            "metrics. > 1",
            'filter: expected a key (bare, `backticked` or "double-quoted") after '
            "'metrics.', got '>' at position 9",
        ),
        (
            "metrics.`` > 1",
            'expected a key (bare, `backticked` or "double-quoted") after '
            "'metrics.', got `` at position 8",
        ),
        (
            "foo.bar = 1",
            "filter: unknown field 'foo.bar' at position 0; expected metrics.<key>, "
            "params.<key>, tags.<key>, datasets.<field>, attributes.<name> or an attribute "
            "(end_time, experiment_id, id, name, parent_run_id, run_id, run_name, start_time, "
            "status, user)",
        ),
        (
            "datasets.size = 1",
            "filter: unknown field 'datasets.size' at position 0; "
            "datasets.<field> is one of name, digest, context",
        ),
        (
            "bogus = 1",
            "filter: unknown attribute 'bogus' at position 0; valid attributes: "
            "end_time, experiment_id, id, name, parent_run_id, run_id, run_name, start_time, "
            "status, user",
        ),
        ("attributes.bogus = 1", "unknown attribute 'bogus' at position 0; valid attributes: "),
        (
            "params.x = `a`",
            "filter: expected a value after '=', got `a` at position 11; "
            "backticks quote keys; quote strings with '...'",
        ),
        ("params.x = y", "filter: expected a value after '=', got 'y' at position 11"),
        ("params.x = null", "expected a value after '=', got 'null' at position 11"),
        ("params.x in ()", "filter: expected a value after '(', got ')' at position 13"),
        (
            "params.x in 'a'",
            "filter: expected '(' to open a list of values after 'in', got 'a' at position 12",
        ),
        (
            "params.x in ('a' 'b')",
            "filter: expected ',' or ')' in the list of values, got 'b' at position 17",
        ),
        ("params.x in ('a',)", "expected a value after ',', got ')' at position 17"),
        ("params.x in ('a'", "expected ',' or ')' in the list of values at position 16"),
        ("params.x is 5", "filter: expected NULL after 'is', got '5' at position 12"),
        ("params.x is not 5", "filter: expected NULL after 'not', got '5' at position 16"),
        (
            "metrics.x not = 5",
            "filter: expected LIKE, ILIKE or IN after 'not', got '=' at position 14",
        ),
        ("metrics.x not null", "expected LIKE, ILIKE or IN after 'not', got 'null' at position 14"),
        ("params.x = 'abc", "filter: unterminated '-quoted text starting at position 11"),
        ('params.x = "abc', 'filter: unterminated "-quoted text starting at position 11'),
        ("params.`abc = 1", "filter: unterminated `-quoted text starting at position 7"),
        ("params.x = 'it''s", "unterminated '-quoted text starting at position 11"),
        ("metrics.a # 1", "filter: unexpected character '#' at position 10"),
        ("metrics.a == 1", "filter: expected a value after '=', got '=' at position 11"),
        ("metrics.a ! 1", "filter: unexpected character '!' at position 10"),
        ("metrics.a > 1; drop table runs", "unexpected character ';' at position 13"),
        ("metrics.a > 1e", "filter: malformed number '1e' at position 12"),
        ("metrics.a > 12abc", "filter: malformed number '12a' at position 12"),
        ("metrics.a > -x", "filter: unexpected character '-' at position 12"),
        # Integers every column can hold; ASCII digits only; text a database can store.
        (
            "metrics.a > 9223372036854775808",
            "filter: integer 9223372036854775808 is out of the 64-bit range",
        ),
        ("params.a IN (1, -9223372036854775809)", "integer -9223372036854775809 is out of"),
        ("metrics.a > " + "9" * 5000, "is out of the 64-bit range (-9223372036854775808 to"),
        ("metrics.a > \u0662", "filter: unexpected character '\u0662' at position 12"),
        ("params.a = 'x\ud800'", "filter: lone UTF-16 surrogate at position 13"),
        (
            "not",
            "filter: expected a field (metrics.<key>, params.<key>, tags.<key> or an "
            "attribute) at position 3",
        ),
    ],
)
def test_errors_say_what_was_expected_and_where(source: str, message: str) -> None:
    assert message in error(source)


def test_error_details_carry_the_position() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_filter("metrics.acc > ")
    assert info.value.details == {"position": 14}


def test_limits_on_size_and_depth() -> None:
    deep = "(" * (MAX_DEPTH + 1) + "metrics.a > 1" + ")" * (MAX_DEPTH + 1)
    assert f"nested deeper than {MAX_DEPTH} levels" in error(deep)
    assert f"nested deeper than {MAX_DEPTH} levels" in error("not " * (MAX_DEPTH + 1) + "id = 'x'")
    ok = "(" * 10 + "metrics.a > 1" + ")" * 10
    assert parsed(ok) == cmp("metric", "a", ">", 1)
    long = "params.x = '" + "a" * MAX_LENGTH + "'"
    assert f"longer than {MAX_LENGTH} characters" in error(long)
    # Many clauses in a row are fine (no recursion per AND).
    many = " and ".join(f"metrics.m{i} > {i}" for i in range(500))
    result = parse_filter(many)
    assert isinstance(result, And) and len(result.items) == 500


def test_order_by_items() -> None:
    assert parse_order_by("metrics.acc DESC") == OrderTerm(Field("metric", "acc", 0), True)
    assert parse_order_by("metrics.acc asc") == OrderTerm(Field("metric", "acc", 0), False)
    assert parse_order_by("params.lr") == OrderTerm(Field("param", "lr", 0), False)
    assert parse_order_by(" tags.`a b` Desc ") == OrderTerm(Field("tag", "a b", 1), True)
    assert parse_order_by("attributes.start_time ASC") == OrderTerm(
        Field("attribute", "start_time", 0), False
    )
    assert parse_order_by("run_name") == OrderTerm(Field("attribute", "name", 0), False)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            "",
            "order_by[3]: expected a field (metrics.<key>, params.<key>, tags.<key> or an "
            "attribute) at position 0",
        ),
        (
            "metrics.acc up",
            "order_by[3]: expected ASC, DESC or the end of the order_by item, got "
            "'up' at position 12",
        ),
        (
            "metrics.acc desc asc",
            "expected ASC, DESC or the end of the order_by item, got 'asc' at position 17",
        ),
        ("desc", "order_by[3]: expected a field"),
        ("nope", "order_by[3]: unknown attribute 'nope' at position 0; valid attributes: "),
        (
            "metrics.",
            'order_by[3]: expected a key (bare, `backticked` or "double-quoted") after '
            "'metrics.' at position 8",
        ),
        (
            "metrics.acc, params.lr",
            "order_by[3]: expected ASC, DESC or the end of the order_by "
            "item, got ',' at position 11",
        ),
        ("metrics.acc > 1", "got '>' at position 12"),
    ],
)
def test_order_by_errors(item: str, message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_order_by(item, index=3)
    assert message in info.value.message
