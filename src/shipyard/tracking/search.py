"""Run search: compile a filter string and order_by items onto a SELECT over runs.

Semantics (as in MLflow where it has one):

- ``metrics.<key>`` compares numerically with the run's latest value; params and
  tags compare as strings (a bare number is compared as its text).
- A comparison on a metric, param or tag is false for a run that never logged
  that key, so such a run matches neither ``metrics.x < 5`` nor
  ``metrics.x != 5``; ``IS NULL`` means "not logged". A NaN metric is logged
  but compares false with every number.
- ``LIKE`` is case-sensitive and ``ILIKE`` is not, on every backend; ``%`` and
  ``_`` are wildcards and a backslash makes the next character literal.
- ``status`` compares case-insensitively (statuses are stored lowercase).
- Ordering by a metric, param or tag puts runs without it last, ascending or
  descending; the final tiebreak is ``start_time DESC, id``.

Every value and every key reaches the database as a bound parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    exists,
    func,
    literal_column,
    not_,
    or_,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, aliased
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import Boolean, TypeDecorator

from shipyard.errors import InvalidInput
from shipyard.int64 import numeric_id
from shipyard.tracking.search_parser import (
    And,
    Comparison,
    Expr,
    Field,
    Not,
    Number,
    Or,
    OrderTerm,
    Value,
    parse_filter,
    parse_order_by,
)
from shipyard.tracking.tables import (
    MODEL_INPUT_SOURCE,
    VALUE_PREFIX,
    LatestMetricRow,
    ParamRow,
    RunInputRow,
    RunRow,
    RunTagRow,
)

__all__ = ["build_search_query"]

_KEYED: dict[str, type[LatestMetricRow] | type[ParamRow] | type[RunTagRow]] = {
    "metric": LatestMetricRow,
    "param": ParamRow,
    "tag": RunTagRow,
}

_TEXT_OPS = frozenset({"=", "!=", "LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE", "IN", "NOT IN"})
_NUMBER_OPS = frozenset({"=", "!=", "<", "<=", ">", ">=", "IN", "NOT IN"})
_NULL_OPS = frozenset({"IS NULL", "IS NOT NULL"})


@dataclass(frozen=True)
class _Attribute:
    column: InstrumentedAttribute[Any]
    kind: Literal["text", "number"]
    nullable: bool = False
    lowercase: bool = False  # the stored values are lowercase: lower the user's value


_ATTRIBUTES: dict[str, _Attribute] = {
    "status": _Attribute(RunRow.status, "text", lowercase=True),
    "name": _Attribute(RunRow.name, "text"),
    "user": _Attribute(RunRow.user, "text"),
    "run_id": _Attribute(RunRow.id, "text"),
    "parent_run_id": _Attribute(RunRow.parent_run_id, "text", nullable=True),
    "start_time": _Attribute(RunRow.start_time, "number"),
    "end_time": _Attribute(RunRow.end_time, "number", nullable=True),
    "experiment_id": _Attribute(RunRow.experiment_id, "number"),
}


def build_search_query(
    stmt: Select[Any], filter_string: str | None, order_by: Sequence[str] | None
) -> Select[Any]:
    """Add the filter's WHERE and the ORDER BY to ``stmt``, a SELECT over runs.

    ``stmt`` is typically ``select(RunRow.id).where(<experiment and lifecycle>)``;
    the caller adds LIMIT/OFFSET. Raises InvalidInput (saying where and what was
    expected) on a filter or order_by item that does not parse or type-check.
    """
    expr = parse_filter(filter_string) if filter_string else None
    terms: list[OrderTerm] = []
    for index, item in enumerate(order_by or ()):
        if not isinstance(item, str):
            raise InvalidInput(f"order_by[{index}]: expected a string, got {item!r:.100}")
        term = parse_order_by(item, index)
        if term.field.kind == "dataset":  # a run reads many: nothing to order by
            raise InvalidInput(f"order_by[{index}]: cannot order runs by {term.field.label}")
        terms.append(term)

    absorbed, remaining = _split_for_sort(expr, terms)
    if remaining:
        stmt = stmt.where(*(_compile(e) for e in sorted(remaining, key=_test_cost)))

    keys: list[ColumnElement[Any]] = []
    joined: dict[tuple[str, str], tuple[Any, bool]] = {}
    for term in terms:
        stmt = _add_order(stmt, term, keys, joined, absorbed)
    return stmt.order_by(*keys, RunRow.start_time.desc(), RunRow.id.asc())


def _split_for_sort(
    expr: Expr | None, terms: list[OrderTerm]
) -> tuple[dict[tuple[str, str], list[Comparison]], list[Expr]]:
    """Pick the top-level comparisons on a key that is also sorted by.

    Those move into the sort's JOIN: the database can then walk the (key, value)
    index in sort order and stop at the page's LIMIT instead of sorting every
    run (about 5-10x faster on ``metrics.acc > x and ... ORDER BY metrics.acc``).
    Returns them by key, and the conjuncts that stay in WHERE.
    """
    conjuncts: list[Expr] = []
    pending = [] if expr is None else [expr]
    while pending:
        part = pending.pop()
        if isinstance(part, And):
            pending.extend(reversed(part.items))
        else:
            conjuncts.append(part)
    sorted_keys = {(t.field.kind, t.field.key) for t in terms if t.field.kind != "attribute"}
    absorbed: dict[tuple[str, str], list[Comparison]] = {}
    remaining: list[Expr] = []
    for part in conjuncts:
        if isinstance(part, Comparison) and part.op not in _NULL_OPS:
            key = (part.field.kind, part.field.key)
            if key in sorted_keys:
                absorbed.setdefault(key, []).append(part)
                continue
        remaining.append(part)
    return absorbed, remaining


def _test_cost(part: Expr) -> int:
    """Rank of a conjunct in WHERE, cheapest and likeliest to reject first: SQLite tests
    the terms in the order written (PostgreSQL orders them itself). A run's own
    column costs nothing to read; an equality on a key usually rejects more runs per
    index probe than a range (2,000 runs, ``metrics.m0 > 0.5 and params.p0 = 'v1'``:
    1.9 -> 1.6 ms with the param first); OR and NOT come last."""
    if not isinstance(part, Comparison):
        return 3
    if part.field.kind == "attribute":
        return 0
    return 1 if part.op in ("=", "IN", "IS NULL") else 2


# --- Filter ------------------------------------------------------------------------


def _compile(expr: Expr) -> ColumnElement[bool]:
    if isinstance(expr, And):
        return and_(*(_compile(e) for e in expr.items))
    if isinstance(expr, Or):
        return or_(*(_compile(e) for e in expr.items))
    if isinstance(expr, Not):
        return not_(_compile(expr.item))
    return _comparison(expr)


def _comparison(cmp: Comparison) -> ColumnElement[bool]:
    field = cmp.field
    if field.kind == "attribute":
        return _attribute_comparison(cmp, _ATTRIBUTES[field.key])
    if field.kind == "dataset":
        return _dataset_comparison(cmp)
    table = _KEYED[field.kind]
    if cmp.op in _NULL_OPS:
        logged = _logged(table, field.key, None)
        return not_(logged) if cmp.op == "IS NULL" else logged
    return _logged(table, field.key, _value_condition(table.value, cmp))


def _value_condition(value: Any, cmp: Comparison) -> ColumnElement[bool]:
    """The test on a metric's, param's or tag's ``value`` column."""
    kind: Literal["text", "number"] = "number" if cmp.field.kind == "metric" else "text"
    check_op(cmp, kind)
    condition = value_test(value, cmp, kind)
    if kind == "text" and cmp.op in ("=", "IN"):
        return WithIndexedPrefix(condition, _prefix_test(value, cmp))
    return condition


def _prefix_test(value: Any, cmp: Comparison) -> ColumnElement[bool]:
    """``cmp`` (= or IN) on the first VALUE_PREFIX characters of ``value``: what
    PostgreSQL's (key, left(value, N)) indexes of params and tags answer. The length
    is written into the SQL: the index's expression matches a constant only."""
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    prefixes = [str(_coerce(v, cmp, "text", False))[:VALUE_PREFIX] for v in values]
    column = func.left(value, literal_column(str(VALUE_PREFIX)))
    return column.in_(prefixes) if cmp.op == "IN" else column == prefixes[0]


def _logged(
    table: type[LatestMetricRow] | type[ParamRow] | type[RunTagRow],
    key: str,
    condition: ColumnElement[bool] | None,
) -> ColumnElement[bool]:
    """True when the run has ``key`` in ``table`` (and its value meets ``condition``).

    A correlated EXISTS: probes the (run_id, key) primary key once per candidate
    run, so its cost follows the size of the experiment searched. PostgreSQL
    plans it and ``runs.id IN (SELECT run_id ...)`` the same (a semi-join);
    SQLite materialises the IN list from every run in the database that has the
    key, which measured 2-3x slower when the experiment is a fraction of them.
    """
    clauses = [table.run_id == RunRow.id, table.key == key]
    if condition is not None:
        clauses.append(condition)
    return exists().where(*clauses)


def _dataset_comparison(cmp: Comparison) -> ColumnElement[bool]:
    """True when one of the run's dataset inputs (``log_input``; not the logged models
    it read) has a name, digest or context that meets the comparison, as in MLflow."""
    if cmp.op in _NULL_OPS:
        _fail(cmp, f"{cmp.op} does not apply to {cmp.field.label}")
    check_op(cmp, "text")
    column = getattr(RunInputRow, cmp.field.key)
    return exists().where(
        RunInputRow.run_id == RunRow.id,
        RunInputRow.source_type != MODEL_INPUT_SOURCE,
        value_test(column, cmp, "text"),
    )


def _attribute_comparison(cmp: Comparison, attr: _Attribute) -> ColumnElement[bool]:
    column = attr.column
    if cmp.op in _NULL_OPS:
        if not attr.nullable:
            _fail(cmp, f"{cmp.op} does not apply to {cmp.field.label}", "it is never null")
        return column.is_(None) if cmp.op == "IS NULL" else column.is_not(None)
    check_op(cmp, attr.kind)
    condition = value_test(column, cmp, attr.kind, lowercase=attr.lowercase)
    if attr.nullable:
        # Keep the comparison two-valued so that NOT (end_time > x) matches a
        # running run, as NOT on a metric comparison matches a run without it.
        condition = and_(column.is_not(None), condition)
    return condition


def check_op(cmp: Comparison, kind: Literal["text", "number"]) -> None:
    label = cmp.field.label
    if kind == "number" and cmp.op not in _NUMBER_OPS:
        _fail(
            cmp,
            f"{cmp.op} does not apply to {label}",
            "it is a number: use =, !=, <, <=, >, >=, IN, NOT IN, IS [NOT] NULL",
        )
    if kind == "text" and cmp.op not in _TEXT_OPS:
        _fail(
            cmp,
            f"{cmp.op} does not apply to {label}",
            "it compares as a string: use =, !=, LIKE, ILIKE, IN, NOT IN, IS [NOT] NULL",
        )


def value_test(
    column: Any, cmp: Comparison, kind: Literal["text", "number"], *, lowercase: bool = False
) -> ColumnElement[bool]:
    op = cmp.op
    if op in ("IN", "NOT IN"):
        assert isinstance(cmp.value, tuple)
        values = [_coerce(v, cmp, kind, lowercase) for v in cmp.value]
        return column.in_(values) if op == "IN" else column.not_in(values)
    assert cmp.value is not None and not isinstance(cmp.value, tuple)
    value = _coerce(cmp.value, cmp, kind, lowercase)
    if op in ("LIKE", "NOT LIKE", "ILIKE", "NOT ILIKE"):
        assert isinstance(value, str)
        if _ends_with_escape(value):
            _fail(cmp, f"the {op} pattern ends with a lone backslash", "write \\\\ for one")
        if op.endswith("ILIKE"):
            matched: ColumnElement[bool] = column.ilike(value, escape="\\")
        else:
            matched = CaseSensitiveLike(column, value)
        return not_(matched) if op.startswith("NOT") else matched
    return {
        "=": column.__eq__,
        "!=": column.__ne__,
        "<": column.__lt__,
        "<=": column.__le__,
        ">": column.__gt__,
        ">=": column.__ge__,
    }[op](value)


def _coerce(
    value: Value, cmp: Comparison, kind: Literal["text", "number"], lowercase: bool
) -> str | int | float:
    if kind == "text":
        text = value.text if isinstance(value, Number) else value
        return text.lower() if lowercase else text
    if isinstance(value, Number):
        return value.value
    # MLflow clients send experiment ids as strings: accept digits there only.
    if cmp.field.key == "experiment_id" and cmp.field.kind == "attribute":
        try:
            number = numeric_id(value, cmp.field.label)
        except InvalidInput as exc:
            _fail(cmp, exc.message)
        if number is not None:
            return number
    _fail(cmp, f"{cmp.field.label} compares to numbers, got the string {value[:100]!r}")


def _ends_with_escape(pattern: str) -> bool:
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    return trailing % 2 == 1


def _fail(cmp: Comparison, message: str, hint: str = "") -> NoReturn:
    text = f"filter: {message} at position {cmp.pos}" + (f"; {hint}" if hint else "")
    raise InvalidInput(text, {"position": cmp.pos})


# --- Case-sensitive LIKE on every backend ----------------------------------------------


class _LikePattern(TypeDecorator[str]):
    """A LIKE pattern, sent to SQLite as the equivalent GLOB pattern."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None or dialect.name != "sqlite":
            return value
        return _like_to_glob(value)


def _like_to_glob(pattern: str) -> str:
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            out.append(_glob_literal(next(chars, "\\")))
        elif ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        else:
            out.append(_glob_literal(ch))
    return "".join(out)


def _glob_literal(ch: str) -> str:
    return f"[{ch}]" if ch in "*?[" else ch


class CaseSensitiveLike(ColumnElement[bool]):
    """``column LIKE pattern``, case-sensitive everywhere.

    SQLite's LIKE ignores ASCII case, so there it compiles to GLOB (whose
    pattern the bound parameter's type translates); PostgreSQL's LIKE already
    is case-sensitive.
    """

    __visit_name__ = "shipyard_case_sensitive_like"
    inherit_cache = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("pattern", InternalTraversal.dp_clauseelement),
    ]
    type = Boolean()
    _is_implicitly_boolean = True  # a predicate: no "= 1" around it where bools are ints

    def __init__(self, column: ColumnElement[Any], pattern: str) -> None:
        self.column = column
        self.pattern = bindparam(None, pattern, type_=_LikePattern())


@compiles(CaseSensitiveLike)
def _compile_like(element: CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    pattern = compiler.process(element.pattern, **kw)
    return f"{column} LIKE {pattern} ESCAPE '\\'"


@compiles(CaseSensitiveLike, "sqlite")
def _compile_like_sqlite(element: CaseSensitiveLike, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    pattern = compiler.process(element.pattern, **kw)
    return f"{column} GLOB {pattern}"


class WithIndexedPrefix(ColumnElement[bool]):
    """A param's or tag's value test that PostgreSQL's prefix index can answer:
    ``condition`` and, on PostgreSQL only, ``prefix`` (the same test on the value's
    first characters, implied by ``condition``). SQLite has no such index: there the
    prefix test would only cost time.
    """

    __visit_name__ = "shipyard_with_indexed_prefix"
    inherit_cache = True
    _traverse_internals = [
        ("condition", InternalTraversal.dp_clauseelement),
        ("prefix", InternalTraversal.dp_clauseelement),
    ]
    type = Boolean()
    _is_implicitly_boolean = True

    def __init__(self, condition: ColumnElement[bool], prefix: ColumnElement[bool]) -> None:
        self.condition = condition
        self.prefix = prefix


@compiles(WithIndexedPrefix)
def _compile_condition(element: WithIndexedPrefix, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.condition, **kw)


@compiles(WithIndexedPrefix, "postgresql")
def _compile_with_prefix(element: WithIndexedPrefix, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(and_(element.prefix, element.condition), **kw)


# --- Order -------------------------------------------------------------------------


def _add_order(
    stmt: Select[Any],
    term: OrderTerm,
    keys: list[ColumnElement[Any]],
    joined: dict[tuple[str, str], tuple[Any, bool]],
    absorbed: dict[tuple[str, str], list[Comparison]],
) -> Select[Any]:
    field: Field = term.field
    if field.kind == "attribute":
        attr = _ATTRIBUTES[field.key]
        column: Any = attr.column
        nullable = attr.nullable
    elif (field.kind, field.key) in joined:
        column, nullable = joined[(field.kind, field.key)]
    else:
        alias = aliased(_KEYED[field.kind])
        on = [alias.run_id == RunRow.id, alias.key == field.key]
        filters = absorbed.get((field.kind, field.key))
        if filters:
            # The filter already requires the key (with a non-null value): an
            # inner join that carries the filter's tests.
            on += [_value_condition(alias.value, cmp) for cmp in filters]
            stmt = stmt.join(alias, and_(*on))
            nullable = False
        else:
            # LEFT JOIN with the key in ON: runs without the key survive with a
            # NULL value that sorts last.
            stmt = stmt.outerjoin(alias, and_(*on))
            nullable = True
        column = alias.value
        joined[(field.kind, field.key)] = (column, nullable)
    if nullable:
        keys.append(column.is_(None))  # false sorts before true: missing last
    keys.append(column.desc() if term.descending else column.asc())
    return stmt
