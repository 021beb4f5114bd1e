"""The rows of a SQL query as an ingest source, streamed through a server-side cursor.

- The query runs in a read-only transaction where the database has one (PostgreSQL's
  ``SET TRANSACTION READ ONLY``, SQLite's ``PRAGMA query_only``) and is never committed:
  an ingest cannot change the database.
- Column types: the type the database declares, where the driver reports one Arrow holds
  (PostgreSQL: integers, floats, ``numeric(p, s)`` as decimal, plain ``numeric`` as double
  as pandas' ``read_sql`` does, text, bytea, bool, date, time, timestamps, interval;
  json, jsonb and uuid as their text). Otherwise the type is inferred from the values of
  the first batch (``batch_rows`` rows), unified over it (integers and floats: double).
  A column all null in the first batch takes the type of its first non-null value in the
  next ``batch_rows`` rows, else string (its later values are then turned into text).
  A later value that does not fit its column's type is an InvalidInput (CAST it in SQL).
- An empty result is fine: zero rows, the columns from the cursor description (string
  where the database declares no type, as SQLite). A statement that returns no rows is
  an InvalidInput ("no columns").
- The connection stays open from ``open_query`` until the batches are read or the Source
  is dropped. Errors are InvalidInput with the database's message; the URL's password
  appears neither there nor in the description.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pyarrow as pa

from shipyard.datasets.sources import BatchInput, Source, check_columns, error_text
from shipyard.errors import InvalidInput, ShipyardError

_CHUNK = 10_000
"""Rows fetched (and held as Python objects) at a time; batches are built from chunks."""

_PG_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(),
    17: pa.binary(),
    18: pa.string(),  # "char"
    19: pa.string(),  # name
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    25: pa.string(),
    700: pa.float32(),
    701: pa.float64(),
    1042: pa.string(),  # char(n)
    1043: pa.string(),  # varchar
    1082: pa.date32(),
    1083: pa.time64("us"),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
    1186: pa.duration("us"),
}
_PG_JSON = (114, 3802)
_PG_UUID = 2950
_PG_NUMERIC = 1700


@dataclass
class _Column:
    name: str
    type: pa.DataType | None  # None until inferred from the values
    to_text: Callable[[Any], str] | None = None
    to_float: bool = False
    declared: bool = False  # the type is the database's, not inferred

    def array(self, values: Sequence[Any]) -> pa.Array:
        if self.to_text is not None:
            values = [None if v is None else self.to_text(v) for v in values]
        elif self.to_float:
            values = [None if v is None else _float_of(v) for v in values]
        return pa.array(values, type=self.type)


_EXACT_INTEGERS = float(2**53)  # a float64 holds every integer up to here, and not beyond


def _float_of(value: Any) -> float:
    """An unconstrained NUMERIC as a float, which keeps ~16 significant digits: fine for
    a fraction (an average), not for an integer part past 2**53 (an id, an amount in
    cents), where distinct values would become one; those are refused (ValueError)."""
    number = float(value)
    if abs(number) >= _EXACT_INTEGERS and math.isfinite(number) and int(number) != int(value):
        raise ValueError(f"{value} would be rounded to {number:.17g} as a float64")
    return number


def open_query(url: str, query: str, batch_rows: int) -> Source:
    """A Source over the rows ``query`` returns from the database at SQLAlchemy ``url``."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise InvalidInput("not a SQLAlchemy URL (dialect+driver://user@host/database)") from None
    description = describe(parsed)
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput(f"{description}: the query is empty")
    database = parsed.database or ""
    if parsed.get_backend_name() == "sqlite" and database not in ("", ":memory:"):
        if not database.startswith("file:") and not Path(database).expanduser().is_file():
            raise InvalidInput(f"no such SQLite database file: {database}")
    try:
        engine = sa.create_engine(parsed, poolclass=NullPool)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise InvalidInput(f"{description}: {error_text(exc)}") from None
    stream = _stream(engine, query, batch_rows, description, parsed.password)
    schema = cast(pa.Schema, next(stream))
    try:
        check_columns(schema, description)
    except InvalidInput:
        stream.close()  # the connection, now rather than when garbage-collected
        raise
    opened = False

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal opened
        if opened:
            raise InvalidInput(f"{description}: the query's rows can be read once")
        opened = True
        return cast(Iterator[pa.RecordBatch], stream)

    return Source(description, [BatchInput("query", schema, batches, None)], schema, None)


def describe(url: Any) -> str:
    """'query on postgresql://host:port/db': no driver, user, password or options."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        return f"query on sqlite:///{url.database}" if url.database else "query on sqlite://"
    port = f":{url.port}" if url.port else ""
    return f"query on {backend}://{url.host or ''}{port}/{url.database or ''}"


def _stream(
    engine: Any, query: str, batch_rows: int, description: str, password: str | None
) -> Iterator[pa.Schema | pa.RecordBatch]:
    """Yields the schema first, then the batches; the connection lives as long as it."""
    import sqlalchemy as sa

    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            elif conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA query_only = ON")
            # text() escapes '%' for the driver; escaped colons are not bind parameters.
            statement = sa.text(query.replace(":", "\\:"))
            chunk = min(batch_rows, _CHUNK)
            result = conn.execution_options(yield_per=chunk).execute(statement)
            if not result.returns_rows or not result.cursor.description:
                raise InvalidInput(f"{description}: the statement returns no columns")
            columns = _columns(result.cursor.description, conn.dialect.name)
            chunks = (_chunk(columns, rows, description) for rows in result.partitions(chunk))
            head, schema = _infer(columns, chunks, batch_rows, description)
            yield schema
            yield from _rebatch(itertools.chain(head, chunks), schema, batch_rows)
    except ShipyardError:
        raise
    except sa.exc.SQLAlchemyError as exc:
        raise InvalidInput(f"{description}: {_db_message(exc, password)}") from None
    finally:
        engine.dispose()


def _columns(description: Sequence[Any], dialect: str) -> list[_Column]:
    columns = []
    for entry in description:
        column = _Column(str(entry[0]), None)
        code = entry[1] if dialect == "postgresql" else None
        if code in _PG_TYPES:
            column.type = _PG_TYPES[code]
        elif code in _PG_JSON:
            column.type, column.to_text = pa.string(), _json_text
        elif code == _PG_UUID:
            column.type, column.to_text = pa.string(), str
        elif code == _PG_NUMERIC:
            precision, scale = entry[4], entry[5] or 0
            if precision:
                decimal = pa.decimal128 if precision <= 38 else pa.decimal256
                column.type = decimal(precision, scale)
            else:  # unconstrained: any scale per value, which no Arrow decimal holds
                column.type, column.to_float = pa.float64(), True
        column.declared = column.type is not None
        columns.append(column)
    return columns


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _chunk(columns: list[_Column], rows: Sequence[Any], where: str) -> pa.RecordBatch:
    """Rows as Arrow arrays: in each column's type, or inferred where none is known yet."""
    arrays = []
    for column, values in zip(columns, zip(*rows, strict=True), strict=True):
        try:
            arrays.append(column.array(values))
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
            if column.type is None:
                problem = "mixes types in its first rows"
            else:
                origin = "the database's" if column.declared else "that of its first rows"
                problem = f"has a value that does not fit {column.type} ({origin})"
            raise InvalidInput(
                f"{where}: column {column.name!r} {problem}: {error_text(exc)}; "
                "CAST it in the query"
            ) from None
    return pa.RecordBatch.from_arrays(arrays, names=[c.name for c in columns])


def _infer(
    columns: list[_Column], chunks: Iterator[pa.RecordBatch], batch_rows: int, where: str
) -> tuple[list[pa.RecordBatch], pa.Schema]:
    """Read the first batch (and more for all-null columns); fix every column's type.

    Returns the chunks read so far, in the final types; the later chunks of ``chunks``
    are then converted in those types."""
    head: list[pa.RecordBatch] = []
    rows = 0
    for chunk in chunks:
        head.append(chunk)
        rows += chunk.num_rows
        if rows >= batch_rows:
            break
    found = {
        i: _unify([c.column(i).type for c in head], column.name, where)
        for i, column in enumerate(columns)
        if column.type is None
    }
    pending = [i for i, t in found.items() if t == pa.null()]
    budget = batch_rows
    while pending and budget > 0:
        chunk = next(chunks, None)
        if chunk is None:
            break
        head.append(chunk)
        budget -= chunk.num_rows
        for i in pending:
            found[i] = chunk.column(i).type
        pending = [i for i in pending if found[i] == pa.null()]
    for i, type_ in found.items():
        if type_ == pa.null():
            columns[i].type, columns[i].to_text = pa.string(), str
        else:
            columns[i].type = type_
    schema = pa.schema([pa.field(c.name, c.type) for c in columns])
    return [_cast(chunk, schema, where) for chunk in head], schema


def _unify(types: list[pa.DataType], name: str, where: str) -> pa.DataType:
    distinct = list(dict.fromkeys(t for t in types if t != pa.null()))
    if not distinct:
        return pa.null()
    try:
        unified = pa.unify_schemas(
            [pa.schema([pa.field(name, t)]) for t in distinct], promote_options="permissive"
        )
    except (pa.ArrowException, TypeError) as exc:
        raise InvalidInput(
            f"{where}: column {name!r} mixes types in its first rows "
            f"({', '.join(map(str, distinct))}): CAST it in the query"
        ) from exc
    return unified.field(0).type


def _cast(chunk: pa.RecordBatch, schema: pa.Schema, where: str) -> pa.RecordBatch:
    arrays = []
    for field, array in zip(schema, chunk.columns, strict=True):
        try:
            arrays.append(array if array.type == field.type else array.cast(field.type))
        except (pa.ArrowException, ValueError) as exc:
            raise InvalidInput(
                f"{where}: column {field.name!r} has a value that does not fit {field.type} "
                f"(that of its first rows): {error_text(exc)}; CAST it in the query"
            ) from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _rebatch(
    chunks: Iterator[pa.RecordBatch], schema: pa.Schema, size: int
) -> Iterator[pa.RecordBatch]:
    """Chunks regrouped into batches of exactly ``size`` rows (the last one fewer)."""
    held: list[pa.RecordBatch] = []
    count = 0
    for chunk in chunks:
        held.append(chunk)
        count += chunk.num_rows
        while count >= size:
            table = pa.Table.from_batches(held, schema)
            yield table.slice(0, size).combine_chunks().to_batches(max_chunksize=size)[0]
            rest = table.slice(size)
            held, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(held, schema).combine_chunks().to_batches()[0]


def _db_message(exc: BaseException, password: str | None) -> str:
    """The database's own message (not SQLAlchemy's wrapping), without the password."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    if password:
        text = text.replace(password, "***")
    return "\n".join(text.splitlines()[:3])[:1000]
