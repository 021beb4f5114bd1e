"""Ingest sources: whatever a user hands to ``client.datasets.ingest`` becomes a
:class:`Source`, a uniform description of its inputs that the ingest pipeline streams.

An input is either a local Parquet file kept byte for byte (:class:`ParquetInput`) or a
stream of Arrow record batches to convert (:class:`BatchInput`). Nothing is read whole:
CSV and JSON lines are parsed in blocks of a few MiB, Parquet row group by row group
(``file_source.py``, over the files ``file_listing.py`` finds), SQL results come through a
server-side cursor (``sql_source.py``), DataFrames and Arrow tables are sliced.

What a caller can rely on:

- ``Source.schema`` has no schema-level metadata (pandas' included) and at least one
  column, with distinct names. Every input has its field names, order and types;
  nullability may differ (a column is nullable in ``Source.schema`` when it is in any
  input). Every batch comes out in ``Source.schema`` exactly.
- A DataFrame keeps its index only when the index is named; it becomes ordinary columns.
- Every failure reading user data, also one raised later while batches are being read,
  is an :class:`InvalidInput` that names the file (and the CSV row when pyarrow knows it).
  See ``file_listing.py`` for folders, ``file_source.py`` for formats and type inference,
  ``sql_source.py`` for queries.
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Union

import pyarrow as pa

from shipyard.config import Settings
from shipyard.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

Format = Literal["csv", "parquet", "jsonl"]
SchemaLookup = Callable[[Sequence[tuple[Path, os.stat_result]]], "list[pa.Schema | None]"]
"""The schemas a cache remembers for local files with these stats (None: read the footer),
all in one call."""

Ingestible = Union[
    str, os.PathLike[str], "pd.DataFrame", pa.Table, pa.RecordBatch, pa.RecordBatchReader
]
"""What ``open_source`` accepts."""

READ_ERRORS = (pa.ArrowException, OSError, ValueError, TypeError, EOFError)
"""What reading user data raises when the data (not our code) is at fault."""

_SQL_SCHEMES = ("postgres", "sqlite", "mysql", "mariadb", "mssql", "oracle", "duckdb")


@dataclass(frozen=True)
class ParquetInput:
    """A local Parquet file that will be stored byte for byte as it is (no conversion)."""

    path: Path  # absolute, resolved
    name: str  # its name inside the version: path relative to the source folder, '/'-separated
    size: int
    mtime_ns: int
    inode: int  # with size, mtime_ns and ctime_ns: the key of the client's stat cache
    schema: pa.Schema  # from the footer
    ctime_ns: int  # the inode's change time: no tool sets it back, unlike mtime


@dataclass(frozen=True)
class BatchInput:
    """Rows to convert into Parquet parts."""

    name: str  # a name for its parts: "part", or the source file's relative path sans extension
    schema: pa.Schema
    open: Callable[[], Iterator[pa.RecordBatch]]  # a fresh stream of batches in `schema`; once
    size_hint: int | None  # bytes of the source when known, for progress bars


@dataclass(frozen=True)
class Source:
    """What ``open_source`` found: every input has ``schema`` (see the module doc)."""

    description: str  # for the version's `source` field; never holds a password
    inputs: list[ParquetInput | BatchInput]
    schema: pa.Schema
    total_bytes: int | None


def open_source(
    source: Ingestible,
    *,
    format: Format | None = None,
    query: str | None = None,
    settings: Settings | None = None,
    as_is: bool = True,
    batch_rows: int = 1 << 20,
    csv_delimiter: str | None = None,
    known_schemas: SchemaLookup | None = None,
) -> Source:
    """Describe ``source`` as inputs the ingest pipeline can stream.

    ``source`` is a pandas DataFrame, an Arrow table, record batch or reader, a local
    file or folder (a path or ``file://`` URL), ``s3://bucket/key`` or
    ``s3://bucket/prefix/`` (read with the S3 settings of ``settings``), or a SQLAlchemy
    URL with ``query``, the SQL to run. ``format`` overrides the format read from file
    extensions; ``as_is`` keeps local Parquet files byte for byte (False: converts them);
    ``batch_rows`` sizes the batches of DataFrames, Arrow data, SQL results and converted
    Parquet; ``csv_delimiter`` defaults to ',' ('\\t' for .tsv). ``known_schemas`` lets the
    client's stat cache answer for the footers of unchanged Parquet files, so they are not
    read again. Raises :class:`InvalidInput` for anything that cannot be read.
    """
    if format not in (None, "csv", "parquet", "jsonl"):
        raise InvalidInput(f"unknown format {format!r}: use 'csv', 'parquet' or 'jsonl'")
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise InvalidInput(f"batch_rows must be a positive integer, not {batch_rows!r}")
    if csv_delimiter is not None and (
        not isinstance(csv_delimiter, str) or len(csv_delimiter) != 1
    ):
        raise InvalidInput(f"csv_delimiter must be one character, not {csv_delimiter!r}")
    if query is not None:
        if not isinstance(source, str) or url_scheme(source) in (None, "file", "s3"):
            raise InvalidInput("query= needs a SQLAlchemy database URL as the source")
        from shipyard.datasets.sql_source import open_query

        return open_query(source, query, batch_rows)
    in_memory = _in_memory(source, batch_rows)
    if in_memory is not None:
        return in_memory
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidInput(f"cannot ingest a {type(source).__name__}")
    text = os.fspath(source)
    if not isinstance(text, str):
        raise InvalidInput("give paths as text, not bytes")
    scheme = url_scheme(text)
    if scheme not in (None, "file", "s3"):
        if scheme.split("+")[0].startswith(_SQL_SCHEMES):
            raise InvalidInput(
                f"a {scheme}:// URL is a database: give the SQL to run "
                "(--query, or query= in the SDK)"
            )
        raise InvalidInput(f"unsupported URL scheme {scheme!r}: use a path, file://, s3:// or SQL")
    from shipyard.datasets.file_source import open_files

    return open_files(
        text,
        format=format,
        settings=settings,
        as_is=as_is,
        batch_rows=batch_rows,
        delimiter=csv_delimiter,
        known_schemas=known_schemas,
    )


def url_scheme(text: str) -> str | None:
    """The lowercased scheme of ``scheme://...``, or None for a plain path."""
    match = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", text)
    return match.group(1).lower() if match else None


# --- in-memory data ----------------------------------------------------------------------


def _in_memory(source: object, batch_rows: int) -> Source | None:
    """A Source over a DataFrame or Arrow data, or None for anything else."""
    pandas = sys.modules.get("pandas")  # a DataFrame implies pandas is imported already
    if pandas is not None and isinstance(source, pandas.DataFrame):
        return _dataframe(source, batch_rows)
    if isinstance(source, pa.Table):
        table = source
        return _one_input(
            f"Arrow table ({table.num_rows:,} rows)",
            table.schema,
            lambda: iter(table.to_batches(max_chunksize=batch_rows)),
            table.nbytes,
        )
    if isinstance(source, pa.RecordBatch):
        batch = source
        return _one_input(
            f"Arrow record batch ({batch.num_rows:,} rows)",
            batch.schema,
            lambda: (batch.slice(i, batch_rows) for i in range(0, batch.num_rows, batch_rows)),
            batch.nbytes,
        )
    if isinstance(source, pa.RecordBatchReader):
        reader = source
        return _one_input("Arrow record batch stream", reader.schema, lambda: iter(reader), None)
    return None


def _dataframe(frame: pd.DataFrame, batch_rows: int) -> Source:
    # An unnamed index holds only positions (or what filtering left of them): dropped.
    keep_index = any(name is not None for name in frame.index.names)
    odd = next((label for label in frame.columns if not isinstance(label, str)), None)
    if odd is not None:
        raise InvalidInput(
            f"DataFrame: column labels must be strings, got {odd!r} "
            f"({type(odd).__name__}); name the columns first (df.columns = [...])"
        )
    try:
        schema = pa.Schema.from_pandas(frame, preserve_index=keep_index)
    except READ_ERRORS as exc:
        raise InvalidInput(f"DataFrame: {error_text(exc)}") from None
    # pandas' own string dtype maps to large_string; CSV, JSON and most Parquet writers
    # give string, and a dataset's versions should not differ by where they came from.
    small = {pa.large_string(): pa.string(), pa.large_binary(): pa.binary()}
    schema = pa.schema([f.with_type(small.get(f.type, f.type)) for f in schema])

    def batches() -> Iterator[pa.RecordBatch]:
        for start in range(0, len(frame), batch_rows):
            part = frame.iloc[start : start + batch_rows]
            try:
                # Through a table: pandas' Arrow-backed columns may come in several chunks
                # (after a concat or a read of several row groups), which a batch cannot.
                table = pa.Table.from_pandas(part, schema=schema, preserve_index=keep_index)
            except READ_ERRORS as exc:
                raise InvalidInput(f"DataFrame, rows from {start:,}: {error_text(exc)}") from None
            yield from table.combine_chunks().to_batches()

    return _one_input(f"DataFrame ({len(frame):,} rows)", schema, batches, None)


def _one_input(
    description: str,
    schema: pa.Schema,
    batches: Callable[[], Iterator[pa.RecordBatch]],
    size: int | None,
) -> Source:
    schema = schema.remove_metadata()
    check_columns(schema, description)

    def conformed() -> Iterator[pa.RecordBatch]:
        for batch in batches():
            yield conform(batch, schema, description)

    return Source(description, [BatchInput("part", schema, conformed, size)], schema, size)


# --- helpers the source modules share ----------------------------------------------------


def conform(batch: pa.RecordBatch, schema: pa.Schema, where: str) -> pa.RecordBatch:
    """``batch`` in ``schema`` exactly: columns matched by name, metadata and nullability
    taken from ``schema``; a missing or extra column or another type is InvalidInput."""
    if batch.schema.names != schema.names:
        check_same_names(schema, batch.schema.names, where, "those of the first rows read")
        batch = batch.select(schema.names)
    if batch.schema.equals(schema, check_metadata=True):
        return batch
    for field, column in zip(schema, batch.columns, strict=True):
        if column.type != field.type:
            raise InvalidInput(
                f"{where}: column {field.name!r} has type {column.type} here, not {field.type}"
            )
    return pa.RecordBatch.from_arrays(batch.columns, schema=schema)


def check_same_names(expected: pa.Schema, names: list[str], where: str, first: str) -> None:
    """Refuse columns other than ``expected``'s (in any order), naming the differences."""
    wanted, given = expected.names, set(names)
    known = set(wanted)
    missing = [n for n in wanted if n not in given]
    extra = [n for n in names if n not in known]
    twice = sorted(n for n, count in Counter(names).items() if count > 1)
    if missing or extra or twice:
        parts = [f"missing {', '.join(map(repr, missing))}"] if missing else []
        parts += [f"unexpected {', '.join(map(repr, extra))}"] if extra else []
        parts += [f"repeated {', '.join(map(repr, twice))}"] if twice else []
        raise InvalidInput(f"{where}: columns differ from {first}: {'; '.join(parts)}")


def check_columns(schema: pa.Schema, where: str) -> None:
    """Refuse a schema without columns, with a column without a name, or with a name twice,
    also twice in other letter cases: Parquet readers need the first three, and DuckDB (the
    SQL checks, ``to_duckdb``) and many other tools read names without regard to case, so
    ``ID`` would silently be judged, or read, as ``id``."""
    if len(schema) == 0:
        raise InvalidInput(f"{where}: no columns")
    unnamed = [i for i, name in enumerate(schema.names, 1) if not name.strip()]
    if unnamed:
        raise InvalidInput(
            f"{where}: column {unnamed[0]} has no name (an empty field in a CSV header, "
            "say); name every column"
        )
    twice = sorted(name for name, count in Counter(schema.names).items() if count > 1)
    if twice:
        raise InvalidInput(f"{where}: duplicate column names {', '.join(map(repr, twice))}")
    hollow = next((f.name for f in schema if _holds_an_empty_struct(f.type)), None)
    if hollow is not None:
        raise InvalidInput(
            f"{where}: column {hollow!r} holds only empty objects ({{}}) where it was read, "
            "which Parquet cannot store; drop it or give its objects a field"
        )
    by_folded: dict[str, list[str]] = {}
    for name in schema.names:
        by_folded.setdefault(name.casefold(), []).append(name)
    clash = next((names for names in by_folded.values() if len(names) > 1), None)
    if clash:
        raise InvalidInput(
            f"{where}: columns {' and '.join(map(repr, clash))} differ only in letter case, "
            "which SQL (the dataset's checks, DuckDB) cannot tell apart; rename one"
        )


def _holds_an_empty_struct(kind: pa.DataType) -> bool:
    if pa.types.is_struct(kind):
        return kind.num_fields == 0 or any(
            _holds_an_empty_struct(kind.field(i).type) for i in range(kind.num_fields)
        )
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _holds_an_empty_struct(kind.value_type)
    if pa.types.is_map(kind):
        return _holds_an_empty_struct(kind.key_type) or _holds_an_empty_struct(kind.item_type)
    return False


def error_text(exc: BaseException) -> str:
    """The first line of an exception's message, for an InvalidInput (no traceback)."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]
