"""Judging a dataset's expectations on streamed Arrow data.

A :class:`Validator` is built from a suite and the Arrow schema of the data. Building it
judges the schema expectation, marks expectations on missing columns as failed, and
refuses a suite that can never be judged (bad regex, SQL that does not bind, bounds of
the wrong type) with :class:`~shipyard.errors.InvalidInput`.

Row-level expectations (:data:`~shipyard.datasets.types.ROW_LEVEL_KINDS`) run batch by
batch in :meth:`Validator.check_batch`, vectorized with ``pyarrow.compute``; the custom SQL
predicate runs in a DuckDB sandbox that sees only the batch. Whole-version expectations
(unique, row count, freshness, class balance) run once in :meth:`Validator.finish`, over
the Parquet files that hold the kept rows (:mod:`shipyard.datasets.version_checks`).

Nulls break only ``not_null``: range, allowed values, regex and class balance ignore them.
NaN is outside every range.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.datasets import arrow_build, duck
from shipyard.datasets import expectation_text as text
from shipyard.datasets.schema import column_kind
from shipyard.datasets.types import (
    ROW_LEVEL_KINDS,
    AllowedValuesExpectation,
    ColumnKind,
    Expectation,
    ExpectationResult,
    ExpectationSuite,
    FreshnessExpectation,
    NotNullExpectation,
    Policy,
    RangeExpectation,
    RegexExpectation,
    RowCountExpectation,
    SchemaExpectation,
    SqlExpectation,
    UniqueExpectation,
    ValidationReport,
)
from shipyard.datasets.version_checks import OrderedKey, VersionScan
from shipyard.errors import InvalidInput

_SAMPLE_COLUMNS = 32  # a sample row shows at most this many columns
_READ_BATCH_ROWS = 256 * 1024
SQL_TIMEOUT_SECONDS = 60.0
"""A custom SQL predicate that runs longer than this on one batch is stopped (a predicate
may hold an expensive subquery; the sandbox stops file access, this stops endless work)."""
_KINDS = frozenset(get_args(ColumnKind))

Mask = pa.BooleanArray
Judge = Callable[[pa.RecordBatch], Mask]


class _Unjudgeable(Exception):
    """An expectation that cannot be judged at all; becomes InvalidInput naming it."""


# --- judging what needs no data ----------------------------------------------------------


def _parse_time(text: str) -> dt.datetime | dt.time:
    """An ISO-8601 date, date-time or time of day (a date is its midnight)."""
    for parse in (dt.datetime.fromisoformat, dt.time.fromisoformat):
        with contextlib.suppress(ValueError):
            return parse(text)
    raise _Unjudgeable(f"bound {text[:60]!r} is neither a number nor an ISO date/time")


def _comparable(v: dt.datetime | dt.time) -> dt.datetime | dt.time:
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.UTC).replace(tzinfo=None)
    return v


def _check_static(exp: Expectation) -> None:
    """Refuse what can never be judged, whatever the data's schema."""
    match exp:
        case RegexExpectation():
            try:
                pc.match_substring_regex(arrow_build.strings([""]), exp.pattern)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise _Unjudgeable(f"bad regular expression: {e}") from None
        case SqlExpectation():
            if ";" in exp.predicate:
                raise _Unjudgeable("the predicate may not contain ';'")
            try:
                duckdb.SQLExpression(exp.predicate)
            except duckdb.Error as e:
                raise _Unjudgeable(f"the predicate is not one SQL expression: {e}") from None
        case RangeExpectation():
            if exp.min is None and exp.max is None:
                raise _Unjudgeable("give min, max or both")
            lo, hi = (
                _comparable(_parse_time(b)) if isinstance(b, str) else b for b in (exp.min, exp.max)
            )
            if lo is not None and hi is not None:
                if type(lo) is not type(hi) and not {type(lo), type(hi)} <= {int, float}:
                    raise _Unjudgeable("min and max must be of one kind: numbers, dates or times")
                if lo > hi:  # type: ignore[operator]
                    raise _Unjudgeable(
                        f"min {text.bound(exp.min)} is above max {text.bound(exp.max)}"
                    )
        case SchemaExpectation():
            unknown = [t for t in exp.columns.values() if not _known_type_name(t)]
            if unknown:
                raise _Unjudgeable(
                    f"unknown type {unknown[0]!r}: use a kind ({', '.join(sorted(_KINDS))}) or "
                    "an Arrow type name (int64, string, timestamp[us, tz=UTC], ...)"
                )
        case RowCountExpectation():
            if exp.min is not None and exp.max is not None and exp.min > exp.max:
                raise _Unjudgeable(f"min {exp.min:,} is above max {exp.max:,}")
        case _:
            pass


# Arrow's names of the types that take parameters (no alias names them), as str() of
# such a type begins: "timestamp[ms, tz=UTC]", "decimal128(10, 2)", "list<item: int64>".
_PARAMETRIZED_TYPE = re.compile(
    r"(timestamp|time32|time64|duration|decimal(32|64|128|256)?|fixed_size_binary|list|"
    r"large_list|list_view|large_list_view|fixed_size_list|struct|map|dictionary|"
    r"dense_union|sparse_union|extension)\s*[\[<(]"
)


def _known_type_name(name: str) -> bool:
    """Whether a schema expectation's type can ever match: a kind, an alias Arrow knows,
    or the beginning of a parametrized type's name."""
    if name in _KINDS:
        return True
    try:
        pa.type_for_alias(name)
        return True
    except ValueError:
        return _PARAMETRIZED_TYPE.match(name.strip()) is not None


def _refuse(index: int, name: str, problem: str) -> InvalidInput:
    return InvalidInput(
        f"expectation {index + 1} ({name}): {problem}",
        {"expectation": index, "name": name},
    )


def check_suite(suite: ExpectationSuite, schema: pa.Schema | None = None) -> None:
    """Refuse (InvalidInput) a suite that can never be judged: a bad regex, SQL that is not
    one expression (or does not bind against ``schema``), min above max, bounds of the
    wrong type. Used when a suite is saved; without a schema only what needs none is
    checked. Expectations on columns the schema lacks are not refused: they fail when
    judged."""
    if schema is not None:
        Validator(suite, schema).close()
        return
    for i, exp in enumerate(suite.expectations):
        try:
            _check_static(exp)
        except _Unjudgeable as e:
            raise _refuse(i, exp.name or text.describe(exp), str(e)) from None


# --- row-level checks --------------------------------------------------------------------


@dataclass
class _RowCheck:
    """One row-level expectation and what it has found so far."""

    index: int
    name: str
    exp: Expectation
    judge: Judge | None  # None: judged in the SQL sandbox with the other predicates
    failed: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)

    def result(self) -> ExpectationResult:
        return ExpectationResult(
            name=self.name,
            kind=self.exp.kind,
            passed=self.failed == 0,
            failed_rows=self.failed,
            message=_row_message(self.exp, self.failed) if self.failed else "",
            samples=self.samples,
        )


def _value_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def _numeric_scalar(bound: float | str, t: pa.DataType) -> pa.Scalar:
    if isinstance(bound, str | bool) or not math.isfinite(bound):
        raise _Unjudgeable(f"bound {bound!r} must be a finite number for a {t} column")
    try:  # in the column's own type when exact, so the column is not cast on every batch
        own = arrow_build.number(bound).cast(t, safe=True)
        if own.as_py() == bound:
            return own
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    return arrow_build.number(float(bound))


def _temporal_scalar(bound: float | str, t: pa.DataType) -> pa.Scalar:
    if not isinstance(bound, str):
        raise _Unjudgeable(f"bound {text.bound(bound)} must be an ISO date/time for a {t} column")
    v = _parse_time(bound)
    if pa.types.is_time(t) != isinstance(v, dt.time):
        raise _Unjudgeable(f"bound {bound!r} does not fit a {t} column")
    if isinstance(v, dt.time):
        own = arrow_build.time_of_day(v) if v.tzinfo is None else pa.scalar(v)
        return own.cast(t, safe=False)
    if pa.types.is_date(t):
        return arrow_build.date(v.date()).cast(t, safe=False)
    # A naive column reads an aware bound in UTC; an aware column a naive bound as UTC.
    return arrow_build.timestamp(_comparable(v), t.tz).cast(t, safe=False)


def _range_judge(exp: RangeExpectation, t: pa.DataType) -> Judge:
    t = _value_type(t)
    if column_kind(t) in ("integer", "float"):
        make = _numeric_scalar
    elif pa.types.is_timestamp(t) or pa.types.is_date(t) or pa.types.is_time(t):
        make = _temporal_scalar
    else:
        raise _Unjudgeable(f"a range needs a numeric or date/time column; {exp.column!r} is {t}")
    lo = None if exp.min is None else make(exp.min, t)
    hi = None if exp.max is None else make(exp.max, t)

    def judge(batch: pa.RecordBatch) -> Mask:
        arr = batch.column(exp.column)
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        ok = None if lo is None else pc.greater_equal(arr, lo)
        if hi is not None:
            ok = pc.less_equal(arr, hi) if ok is None else pc.and_(ok, pc.less_equal(arr, hi))
        return pc.fill_null(ok, arrow_build.TRUE)

    return judge


def _allowed_judge(exp: AllowedValuesExpectation, t: pa.DataType) -> Judge:
    values = [v for v in exp.values if v is not None]  # nulls pass anyway
    value_set = arrow_build.array_of(values, _value_type(t))
    if value_set is None:  # not all strings nor all numbers, or no safe cast: as pyarrow does
        try:
            value_set = pa.array(values, type=_value_type(t))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
            try:
                value_set = pa.array(values).cast(_value_type(t))
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
                message = f"the allowed values do not fit {exp.column!r} ({t}): {e}"
                raise _Unjudgeable(message) from None

    def judge(batch: pa.RecordBatch) -> Mask:
        arr = batch.column(exp.column)
        ok = pc.is_in(arr, value_set=value_set)
        return pc.or_(ok, pc.is_null(arr)) if arr.null_count else ok

    return judge


def _regex_judge(exp: RegexExpectation, t: pa.DataType) -> Judge:
    if column_kind(t) not in ("string", "binary"):
        raise _Unjudgeable(f"a regex needs a string column; {exp.column!r} is {t}")

    def judge(batch: pa.RecordBatch) -> Mask:
        arr = batch.column(exp.column)
        if pa.types.is_dictionary(arr.type):  # match each distinct value once
            found = pc.match_substring_regex(arr.dictionary, exp.pattern)
            return pc.fill_null(pc.take(found, arr.indices), arrow_build.TRUE)
        return pc.fill_null(pc.match_substring_regex(arr, exp.pattern), arrow_build.TRUE)

    return judge


def _row_judge(exp: Expectation, t: pa.DataType) -> Judge:
    match exp:
        case NotNullExpectation():
            return lambda batch: pc.is_valid(batch.column(exp.column))
        case RangeExpectation():
            return _range_judge(exp, t)
        case AllowedValuesExpectation():
            return _allowed_judge(exp, t)
        case RegexExpectation():
            return _regex_judge(exp, t)
    raise _Unjudgeable(f"{exp.kind} is not judged row by row")  # pragma: no cover


def _row_message(exp: Expectation, n: int) -> str:
    """What a person reads about ``n`` rows that broke a row-level expectation."""
    match exp:
        case NotNullExpectation():
            return f"{text.rows(n)} {'has' if n == 1 else 'have'} null in {exp.column!r}"
        case RangeExpectation() if exp.min is not None and exp.max is not None:
            span = f"[{text.bound(exp.min)}, {text.bound(exp.max)}]"
            return f"{exp.column!r} outside {span}: {text.rows(n)}"
        case RangeExpectation():
            where = (
                f"below {text.bound(exp.min)}"
                if exp.min is not None
                else f"above {text.bound(exp.max)}"
            )
            return f"{exp.column!r} {where}: {text.rows(n)}"
        case AllowedValuesExpectation():
            return f"{exp.column!r} not among the allowed values: {text.rows(n)}"
        case RegexExpectation():
            return f"{exp.column!r} does not match {exp.pattern!r}: {text.rows(n)}"
        case SqlExpectation():
            verb = "breaks" if n == 1 else "break"
            return f"{text.rows(n)} {verb} {exp.predicate[:200]}"
    return text.rows(n)  # pragma: no cover


def _missing(columns: Sequence[str], schema: pa.Schema) -> str | None:
    gone = [c for c in columns if schema.get_field_index(c) < 0]
    if not gone:
        return None
    if len(gone) == 1:
        return f"column {gone[0]!r} does not exist"
    return "columns " + ", ".join(repr(c) for c in gone) + " do not exist"


def _judge_schema(exp: SchemaExpectation, schema: pa.Schema) -> tuple[list[str], list[dict]]:
    problems: list[str] = []
    samples: list[dict[str, Any]] = []
    for name, want in exp.columns.items():
        if schema.get_field_index(name) < 0:
            problems.append(f"missing column {name!r}")
            samples.append({"column": name, "expected": want, "actual": None})
            continue
        t = schema.field(name).type
        if want in _KINDS:
            ok = column_kind(t) == want
        else:
            try:
                ok = str(t) == str(pa.type_for_alias(want))
            except ValueError:
                ok = str(t) == want.strip()
        if not ok:
            problems.append(f"{name!r} is {t}, expected {want}")
            samples.append({"column": name, "expected": want, "actual": str(t)})
    if exp.exact:
        for name in schema.names:
            if name not in exp.columns:
                problems.append(f"unexpected column {name!r}")
                samples.append(
                    {"column": name, "expected": None, "actual": str(schema.field(name).type)}
                )
    return problems, samples


# --- the validator -----------------------------------------------------------------------


class Validator:
    """Judges one suite on data of one Arrow schema: row by row while batches stream past
    (:meth:`check_batch`), then over the whole version (:meth:`finish`). One thread at a
    time; a validator judges one version."""

    def __init__(self, suite: ExpectationSuite, schema: pa.Schema) -> None:
        self.suite = suite
        self.schema = schema
        self._fixed: dict[int, ExpectationResult] = {}  # judged here: schema, missing columns
        self._row: list[_RowCheck] = []
        self._sql: list[tuple[_RowCheck, str]] = []
        self._whole: list[tuple[int, str, Expectation]] = []
        self._keys: dict[str, OrderedKey] = {}  # single-column unique keys, by column
        self._sandbox: duckdb.DuckDBPyConnection | None = None
        self._seen = 0
        self._batches = 0
        try:
            for i, exp in enumerate(suite.expectations):
                name = exp.name or text.describe(exp)
                try:
                    _check_static(exp)
                    self._prepare(i, name, exp)
                except _Unjudgeable as e:
                    raise _refuse(i, name, str(e)) from None
        except BaseException:
            self.close()
            raise

    @property
    def has_row_checks(self) -> bool:
        """Whether any row-level expectation will be judged (so batches are worth passing)."""
        return bool(self._row)

    @property
    def judged_by_row(self) -> frozenset[int]:
        """The expectations judged on each row (their places in the suite, as in the
        report's results): those whose failing rows a quarantine can move aside. A
        row-level expectation on a missing column is not among them: it judged no row."""
        return frozenset(check.index for check in self._row)

    def _prepare(self, i: int, name: str, exp: Expectation) -> None:
        if isinstance(exp, SchemaExpectation):
            problems, samples = _judge_schema(exp, self.schema)
            self._fixed[i] = ExpectationResult(
                name=name,
                kind=exp.kind,
                passed=not problems,
                message="; ".join(problems),
                samples=samples,
            )
            return
        if isinstance(exp, SqlExpectation):
            self._prepare_sql(i, name, exp)
            return
        if isinstance(exp, RowCountExpectation):
            self._whole.append((i, name, exp))
            return
        columns = exp.columns if isinstance(exp, UniqueExpectation) else [exp.column]
        gone = _missing(columns, self.schema)
        if gone:
            self._fixed[i] = ExpectationResult(name=name, kind=exp.kind, passed=False, message=gone)
        elif exp.kind in ROW_LEVEL_KINDS:
            judge = _row_judge(exp, self.schema.field(exp.column).type)
            self._row.append(_RowCheck(i, name, exp, judge))
        else:
            if isinstance(exp, FreshnessExpectation):
                t = self.schema.field(exp.column).type
                if not (pa.types.is_timestamp(t) or pa.types.is_date(t)):
                    raise _Unjudgeable(
                        f"freshness needs a timestamp or date column; {exp.column!r} is {t}"
                    )
            if isinstance(exp, UniqueExpectation) and len(columns) == 1:
                self._keys.setdefault(columns[0], OrderedKey(columns[0]))
            self._whole.append((i, name, exp))

    def _run_sql(self, data: pa.RecordBatch | pa.Table, predicates: list[str]) -> pa.Table:
        """The predicates over ``data`` registered as the view ``batch`` in the sandbox, in
        one scan, stopped after :data:`SQL_TIMEOUT_SECONDS`."""
        if self._sandbox is None:
            self._sandbox = duck.sandbox()
        conn = self._sandbox
        timer = threading.Timer(SQL_TIMEOUT_SECONDS, conn.interrupt)
        try:
            conn.register("batch", data)
            exprs = [duckdb.SQLExpression(p).alias(f"c{k}") for k, p in enumerate(predicates)]
            rel = conn.table("batch").select(*exprs)
            if [str(t) for t in rel.types] != ["BOOLEAN"] * len(predicates):
                raise _Unjudgeable(f"the predicate must be a boolean expression, not {rel.types}")
            timer.start()
            return rel.to_arrow_table()
        except duckdb.InterruptException:
            raise _Unjudgeable(
                f"the predicate ran longer than {SQL_TIMEOUT_SECONDS:g} s on one batch"
            ) from None
        finally:
            timer.cancel()
            conn.unregister("batch")

    def _prepare_sql(self, i: int, name: str, exp: SqlExpectation) -> None:
        """Run the predicate on an empty batch of the schema: what does not bind, is not
        boolean, aggregates rows, or reaches outside the sandbox is refused now."""
        try:
            out = self._run_sql(self.schema.empty_table(), [exp.predicate])
        except duckdb.Error as e:
            raise _Unjudgeable(f"the predicate cannot run: {str(e).strip()[:500]}") from None
        if out.num_rows != 0:
            raise _Unjudgeable("the predicate must judge each row, not aggregate rows")
        check = _RowCheck(i, name, exp, None)
        self._row.append(check)
        self._sql.append((check, exp.predicate))

    def _sql_masks(self, batch: pa.RecordBatch) -> list[Mask]:
        """Every SQL predicate over the batch; NULL counts as failure."""
        try:
            out = self._run_sql(batch, [p for _, p in self._sql])
        except (duckdb.Error, _Unjudgeable) as e:
            names = ", ".join(c.name for c, _ in self._sql)
            raise InvalidInput(
                f"a SQL expectation failed on the data ({names}): {str(e).strip()[:500]}"
            ) from None
        if out.num_rows != batch.num_rows:  # DuckDB keeps the scan's order and count
            raise InvalidInput("a SQL expectation did not judge every row once")
        return [pc.fill_null(col.combine_chunks(), arrow_build.FALSE) for col in out.columns]

    def check_batch(self, batch: pa.RecordBatch) -> pa.BooleanArray | None:
        """Judge the row-level expectations on one batch. Returns the keep-mask (True: the
        row passes them all), or None when the suite has no row-level expectation."""
        self._seen += batch.num_rows
        self._batches += 1
        for key in self._keys.values():
            key.see(batch)
        if not self._row:
            return None
        masks: list[tuple[_RowCheck, Mask]] = [
            (c, c.judge(batch)) for c in self._row if c.judge is not None
        ]
        if self._sql:
            masks += zip((c for c, _ in self._sql), self._sql_masks(batch), strict=True)
        keep: Mask | None = None
        for check, ok in masks:
            bad = len(ok) - ok.true_count
            if bad:
                check.failed += bad
                if len(check.samples) < text.SAMPLES:
                    self._sample(check, batch, ok)
            keep = ok if keep is None else pc.and_(keep, ok)
        return keep

    def _sample(self, check: _RowCheck, batch: pa.RecordBatch, ok: Mask) -> None:
        want = text.SAMPLES - len(check.samples)
        idx = pc.indices_nonzero(pc.invert(ok))[:want]
        first = [getattr(check.exp, "column", None)]  # the judged column leads
        names = [n for n in first if n] + [n for n in batch.schema.names if n not in first]
        rows = batch.select(names[:_SAMPLE_COLUMNS]).take(idx).to_pylist()
        check.samples.extend({k: text.jsonable(v) for k, v in row.items()} for row in rows)

    def close(self) -> None:
        """Let go of the SQL sandbox (finish does this too)."""
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def finish(
        self,
        files: Sequence[Path],
        *,
        rows: int,
        now_ms: int,
        policy: Policy | None = None,
        checked_all: bool = False,
    ) -> ValidationReport:
        """Judge the whole-version expectations over the Parquet ``files`` holding the kept
        rows (``rows`` of them) and report every expectation, in suite order. Under the
        quarantine policy, rows seen by :meth:`check_batch` and not kept are counted as
        quarantined.

        ``checked_all``: every row of ``files`` went through :meth:`check_batch`. A
        single-column unique key that streamed in order is then proven unique without
        scanning the files (see :class:`~shipyard.datasets.version_checks.OrderedKey`)."""
        self.close()
        policy = policy or self.suite.policy
        results = dict(self._fixed)
        for check in self._row:
            results[check.index] = check.result()
        if self._whole:
            with VersionScan(files) as scan:
                for i, name, exp in self._whole:
                    if checked_all and self._proven_unique(exp):
                        results[i] = ExpectationResult(name=name, kind=exp.kind, passed=True)
                    else:
                        results[i] = scan.judge(exp, name, rows=rows, now_ms=now_ms)
        ordered = [results[i] for i in sorted(results)]
        checked = self._seen if self._batches else rows
        return ValidationReport(
            passed=all(r.passed for r in ordered),
            policy=policy,
            rows_checked=checked,
            quarantined_rows=max(0, self._seen - rows) if policy == "quarantine" else 0,
            results=ordered,
            checked_at=now_ms,
        )

    def _proven_unique(self, exp: Expectation) -> bool:
        if not isinstance(exp, UniqueExpectation) or len(exp.columns) != 1:
            return False
        key = self._keys.get(exp.columns[0])
        return key is not None and key.proven()


# --- re-validating a stored version ------------------------------------------------------


def _files_schema(files: Sequence[Path]) -> pa.Schema:
    import pyarrow.parquet as pq

    schemas = [pq.read_schema(f) for f in files]
    if not schemas:
        return pa.schema([])
    try:
        return pa.unify_schemas(schemas)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        try:
            return pa.unify_schemas(schemas, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise InvalidInput(f"the version's files disagree on column types: {e}") from None


def validate_files(
    suite: ExpectationSuite, files: Sequence[Path], *, now_ms: int
) -> ValidationReport:
    """Judge ``suite`` on an existing version's Parquet ``files``, streamed in batches so
    memory stays bounded. Nothing is quarantined."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    files = [Path(f) for f in files]
    schema = _files_schema(files)
    validator = Validator(suite, schema)
    try:
        if validator.has_row_checks and files:
            data = ds.dataset([str(f) for f in files], schema=schema, format="parquet")
            for batch in data.to_batches(
                batch_size=_READ_BATCH_ROWS, batch_readahead=2, fragment_readahead=1
            ):
                validator.check_batch(batch)
            rows = validator._seen
        else:
            rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        return validator.finish(
            files,
            rows=rows,
            now_ms=now_ms,
            policy=suite.policy,
            checked_all=validator.has_row_checks,
        )
    finally:
        validator.close()
