"""Files as an ingest source: CSV (also gzip-compressed), JSON lines or Parquet, from the
files ``file_listing.py`` finds (a local file or folder, ``file://``, ``s3://``).

- The format comes from the extension (``.csv``, ``.tsv``, ``.csv.gz``, ``.parquet``,
  ``.pq``, ``.jsonl``, ``.ndjson``) unless ``format`` names it; one format per folder.
- CSV and JSON lines: column types are inferred from the first block (``BLOCK_BYTES``) of
  the first file and imposed on the rest of it and on every other file, so all inputs
  agree. A column empty in that block is read as string. Other CSV files must have the same
  column names (any order). JSON lines may omit keys (null) but not add new ones; a
  text column whose first values are all ISO 8601 times is a timestamp column, fractions
  too, in UTC (``tz="UTC"``) when every one of them carries an offset, as in CSV.
  In CSV an empty field (or NA, null, N/A, NaN ...) is a missing value in every column,
  text included, as pandas reads it. A "CSV" whose header starts with { or [ is refused
  as JSON lines given the wrong format.
- Parquet files must all have the first file's column names and types. Kept byte for byte
  (``as_is``, local files) they must also have its column order, since the stored files
  are read by position; converted, their columns are matched by name. Remote Parquet is
  always converted, streamed row group by row group.
- A converted input is named after its file without the extension ('sub/data.csv.gz' ->
  'sub/data'), or with it where two files would get the same name.
- A local file that changes (size or mtime) while its batches are read is refused.
"""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from shipyard.config import Settings
from shipyard.datasets.file_listing import SourceFile, list_files
from shipyard.datasets.sources import (
    READ_ERRORS,
    BatchInput,
    Format,
    ParquetInput,
    SchemaLookup,
    Source,
    check_columns,
    check_same_names,
    conform,
    error_text,
)
from shipyard.errors import InvalidInput, ShipyardError

BLOCK_BYTES = 16 << 20
"""Bytes of CSV or JSON text parsed at once; one block becomes one record batch."""

Inputs = list[ParquetInput | BatchInput]


def open_files(
    text: str,
    *,
    format: Format | None,
    settings: Settings | None,
    as_is: bool,
    batch_rows: int,
    delimiter: str | None,
    known_schemas: SchemaLookup | None,
) -> Source:
    """A Source over the file or folder that the path or URL ``text`` names."""
    files, description = list_files(text, settings)
    fmt = format or _common_format(files)
    if fmt == "parquet":
        inputs, schema = _parquet_inputs(files, as_is, batch_rows, known_schemas)
    elif fmt == "csv":
        inputs, schema = _csv_inputs(files, delimiter)
    else:
        inputs, schema = _json_inputs(files)
    check_columns(schema, files[0].display)
    return Source(description, inputs, schema, sum(f.size for f in files))


# --- formats -----------------------------------------------------------------------------


def _common_format(files: list[SourceFile]) -> Format:
    first_of: dict[Format, str] = {}
    for file in files:
        fmt = file.format
        if fmt is None:
            raise InvalidInput(
                f"{file.display}: unsupported file type; use .csv, .tsv, .csv.gz, .parquet, "
                ".pq, .jsonl or .ndjson, or name the format with format="
            )
        first_of.setdefault(fmt, file.name)
    if len(first_of) > 1:
        listed = ", ".join(f"{fmt} ({name})" for fmt, name in sorted(first_of.items()))
        raise InvalidInput(f"the folder mixes formats: {listed}; name one with format=")
    return next(iter(first_of))


def _parquet_inputs(
    files: list[SourceFile], as_is: bool, batch_rows: int, known_schemas: SchemaLookup | None
) -> tuple[Inputs, pa.Schema]:
    schemas = _known_schemas(files, known_schemas)
    unknown = [i for i, schema in enumerate(schemas) if schema is None]
    to_read = [files[i] for i in unknown]
    if len(to_read) > 8:  # footers are small reads: overlap their latency
        with ThreadPoolExecutor(4) as pool:
            read = list(pool.map(_footer_schema, to_read))
    else:
        read = [_footer_schema(file) for file in to_read]
    for i, schema in zip(unknown, read, strict=True):
        schemas[i] = schema
    first = schemas[0].remove_metadata()
    nullable = {f.name for f in first if f.nullable}
    for file, schema in zip(files[1:], schemas[1:], strict=False):
        if schema.equals(first):  # the common case, answered in C++ (folders of 1,000s)
            continue
        kept = as_is and file.path is not None
        _check_same_columns(first, schema, file.display, files[0].display, ordered=kept)
        nullable.update(f.name for f in schema if f.nullable)
    schema = pa.schema([f.with_nullable(f.name in nullable) for f in first])
    inputs: Inputs = []
    part_names = _part_names(files)
    for file, own in zip(files, schemas, strict=True):
        if as_is and file.path is not None and file.stat is not None:
            st = file.stat
            inputs.append(
                ParquetInput(
                    file.path, file.name, st.st_size, st.st_mtime_ns, st.st_ino, own, st.st_ctime_ns
                )
            )
        else:
            opened = _guarded(file, schema, lambda _n, f=file: _parquet_batches(f, batch_rows))
            inputs.append(BatchInput(part_names[file.name], schema, opened, file.size))
    return inputs, schema


def _known_schemas(
    files: list[SourceFile], known_schemas: SchemaLookup | None
) -> list[pa.Schema | None]:
    """What the stat cache remembers of each file (None where it does not), asked once."""
    found: list[pa.Schema | None] = [None] * len(files)
    local = [i for i, f in enumerate(files) if f.path is not None and f.stat is not None]
    if known_schemas is not None and local:
        asked = [(files[i].path, files[i].stat) for i in local]
        for i, schema in zip(local, known_schemas(asked), strict=True):  # type: ignore[arg-type]
            found[i] = schema
    return found


def _footer_schema(file: SourceFile) -> pa.Schema:
    try:
        with file.opener() as raw:
            return pq.read_schema(raw)
    except READ_ERRORS as exc:
        raise _read_error(file, exc) from None


def _parquet_batches(file: SourceFile, batch_rows: int) -> Iterator[pa.RecordBatch]:
    with file.opener() as raw, pq.ParquetFile(raw) as parquet:
        yield from parquet.iter_batches(batch_size=batch_rows)


def _check_same_columns(
    expected: pa.Schema, actual: pa.Schema, where: str, first: str, *, ordered: bool
) -> None:
    check_same_names(expected, actual.names, where, first)
    if ordered and actual.names != expected.names:
        raise InvalidInput(
            f"{where}: its columns are in another order than in {first} "
            f"({', '.join(actual.names)} instead of {', '.join(expected.names)}); Parquet files "
            "are stored as they are, so their order must agree (or ingest with as_is=False)"
        )
    differ = [
        f"{f.name!r} is {actual.field(f.name).type}, not {f.type}"
        for f in expected
        if actual.field(f.name).type != f.type
    ]
    if differ:
        raise InvalidInput(f"{where}: column types differ from {first}: {'; '.join(differ)}")


def _csv_inputs(files: list[SourceFile], delimiter: str | None) -> tuple[Inputs, pa.Schema]:
    first = files[0]
    first_delimiter = _delimiter(first, delimiter)
    end = _EndRow(first_delimiter, len(_csv_header(first, first_delimiter)))
    try:
        with first.stream() as raw:
            inferred = _open_csv(raw, first_delimiter, None, end).schema
    except READ_ERRORS as exc:
        unterminated = end.unterminated(first, exc)
        if unterminated is not None:
            raise unterminated from None
        raise _read_error(first, exc, _csv_message(exc, [])) from None
    if inferred.names and inferred.names[0].lstrip().startswith(("{", "[")):
        raise InvalidInput(
            f"{first.display}: this looks like JSON lines, not CSV (its first line starts "
            f"with {inferred.names[0].lstrip()[0]!r}); name the format jsonl"
        )
    undecoded = [f.name for f in inferred if pa.types.is_binary(f.type)]
    if undecoded:  # CSV is text: pyarrow reads what is not UTF-8 as bytes
        raise InvalidInput(
            f"{first.display}: column {undecoded[0]!r} is not UTF-8 text (a Latin-1 or "
            "Windows-1252 file?); convert the file to UTF-8 first (iconv -f latin1 -t utf-8)"
        )
    # One read of each further file's head: its header, and the types that widen these.
    samples = [_csv_sample(file, _delimiter(file, delimiter)) for file in files[1:]]
    schema = _no_null_columns(_widened(inferred, [s for s in samples if s is not None]))
    types = dict(zip(schema.names, schema.types, strict=True))
    for file, sample in zip(files[1:], samples, strict=True):
        header = (
            sample.names if sample is not None else _csv_header(file, _delimiter(file, delimiter))
        )
        check_same_names(schema, header, file.display, first.display)
    origin = first.display + (" and of the other files" if len(files) > 1 else "")
    inputs: Inputs = []
    part_names = _part_names(files)
    for file in files:
        opened = _guarded(
            file,
            schema,
            lambda names, f=file: _csv_batches(f, _delimiter(f, delimiter), types, names),
            lambda exc, names, _rows: _csv_message(exc, names, origin),
        )
        inputs.append(BatchInput(part_names[file.name], schema, opened, file.size))
    return inputs, schema


SAMPLE_BYTES = 64 << 10
"""Of each further CSV file of a folder, read for its header and to widen the first
file's types."""


def _csv_sample(file: SourceFile, delimiter: str) -> pa.Schema | None:
    """The schema pyarrow infers from the whole rows of the file's first SAMPLE_BYTES;
    None where they do not parse alone (a header longer than that, a quoted newline cut
    off): the file's own read then names what is wrong."""
    try:
        with file.stream() as raw:
            head = raw.read(SAMPLE_BYTES)
        if len(head) == SAMPLE_BYTES:
            head = head[: head.rfind(b"\n") + 1]  # whole rows only
        return pa_csv.read_csv(
            pa.BufferReader(head),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter),
            convert_options=pa_csv.ConvertOptions(strings_can_be_null=True),
        ).schema
    except READ_ERRORS:
        return None


def _widened(schema: pa.Schema, samples: list[pa.Schema]) -> pa.Schema:
    """The first file's inferred types, widened by the other files' samples: a column
    empty in the first file takes the type the others show, and integers become floats
    where another file has fractions. Other disagreements stay: the value that does not
    fit is refused by name when its file is read."""
    types = dict(zip(schema.names, schema.types, strict=True))
    for sample in samples:
        for field in sample:
            have = types.get(field.name)
            if have is None or field.type == pa.null():
                continue
            if have == pa.null():
                types[field.name] = field.type
            elif pa.types.is_integer(have) and pa.types.is_floating(field.type):
                types[field.name] = pa.float64()
    return pa.schema([f.with_type(types[f.name]) for f in schema])


def _open_csv(
    raw: Any,
    delimiter: str,
    types: dict[str, pa.DataType] | None,
    end: _EndRow | None = None,
) -> Any:
    """pyarrow's streaming CSV reader; with ``end``, over ``raw`` and then ``end``'s row,
    whose handler sees the rows of a wrong length."""
    # One thread: pyarrow then reports the row of a bad value, and on the streaming reader
    # threads buy little (blocks are parsed one after the other). newlines_in_values: a
    # block ends where a row ends, quotes considered (at no measurable cost on one
    # thread); else a quoted line break near a block's end breaks the read, or silently
    # glues a block's rows into one value. A quoted value may then cross one block end,
    # not two: pyarrow's own bound on what it holds.
    return pa_csv.open_csv(
        raw if end is None else end.after(raw),
        read_options=pa_csv.ReadOptions(block_size=BLOCK_BYTES, use_threads=False),
        parse_options=pa_csv.ParseOptions(
            delimiter=delimiter,
            newlines_in_values=True,
            invalid_row_handler=None if end is None else end.on_invalid,
        ),
        # Empty fields, NA, null ... are missing in text columns too, as in numbers (and
        # as pandas reads them), not strings that a not-null check would pass.
        convert_options=pa_csv.ConvertOptions(column_types=types or {}, strings_can_be_null=True),
    )


def _csv_batches(
    file: SourceFile, delimiter: str, types: dict[str, pa.DataType], names: list[str]
) -> Iterator[pa.RecordBatch]:
    # pyarrow's errors name a column by its position, and open_csv already converts the
    # first block: the file's own header names them.
    names[:] = _csv_header(file, delimiter)
    end = _EndRow(delimiter, len(names))
    rows = 0
    with file.stream() as raw:
        try:
            for batch in _open_csv(raw, delimiter, types, end):
                rows += batch.num_rows
                yield batch
        except READ_ERRORS as exc:
            unterminated = end.unterminated(file, exc, rows)
            if unterminated is None:
                raise
            raise unterminated from None
    if not end.seen:  # the last row's quoted field took the end row in
        raise _unterminated(file, rows + 1)


class _EndRow:
    """Finds a quoted field whose quote is never closed, at no cost per row.

    pyarrow's parser ends a quoted field still open at the end of its input there,
    silently: ``1,"oops`` takes the rest of the file in as one value. So a row of our own
    is read after the file's last byte: a random token and empty fields, one field more
    than the header has, and no quote. Where the file ends outside quotes, that is a row
    of the wrong length, which pyarrow hands to :meth:`on_invalid`: skipped, and
    ``seen``. Where a quote is still open, the quoted field takes this row in too, and
    the row never comes: the file's last row is the one whose quote is open. (A quote
    left open two blocks or more before the end is pyarrow's own error: a quoted value
    may cross one block end, not two; :meth:`unterminated` words it.)
    """

    def __init__(self, delimiter: str, columns: int) -> None:
        self.text = f"shipyard-end-{uuid.uuid4().hex}" + delimiter * columns
        self.row = f"\n{self.text}\n".encode()
        self.seen = False
        self.open_row: int | None = None

    def after(self, raw: pa.NativeFile) -> pa.PythonFile:
        """A stream of ``raw``'s bytes, then the row's."""
        return pa.PythonFile(_ThenBytes(raw, self.row), mode="r")

    def on_invalid(self, row: Any) -> str:
        """pyarrow's handler of a row with a wrong number of fields."""
        if row.text == self.text:
            self.seen = True
            return "skip"
        if row.text.endswith("\n" + self.text):
            self.open_row = row.number  # a quote opened in this row took the end row in
        return "error"

    def unterminated(
        self, file: SourceFile, exc: BaseException, rows: int = 0
    ) -> InvalidInput | None:
        """Our error where pyarrow's ``exc`` comes from a quote left open, else None:
        a row short of fields that took the end row in, a typed column's value that did,
        or a quoted field that ran over two block ends (after the ``rows`` rows read: a
        block ends at the last row that ends in it)."""
        if self.open_row is not None:
            return _unterminated(file, self.open_row)
        text = str(exc)
        if text.endswith(f"\n{self.text}\n'"):  # "invalid value '...<the end row>\n'"
            found = _CSV_ROW.search(text)
            return _unterminated(file, int(found.group(1)) if found else None)
        if "straddles two block boundaries" in text:
            return _unterminated(file, rows + 2, longer=True)
        return None


class _ThenBytes:
    """A readable file of a pyarrow stream's bytes and then ``tail``'s, read by pyarrow
    through ``pa.PythonFile`` a block at a time (one Python call per 16 MiB).

    The tail comes in the same read as the stream's last bytes (each read looks one
    ahead): pyarrow makes a block of each read, and a read of its own would add a block
    (an empty batch) and a block end for an open quote to cross.
    """

    def __init__(self, raw: pa.NativeFile, tail: bytes) -> None:
        self._raw = raw
        self._tail = tail
        self._next: pa.Buffer | None = None

    @property
    def closed(self) -> bool:
        return bool(self._raw.closed)

    def readable(self) -> bool:
        return True

    def read_buffer(self, nbytes: int | None = None) -> pa.Buffer:
        data = self._raw.read_buffer(nbytes) if self._next is None else self._next
        self._next = self._raw.read_buffer(nbytes) if data.size else data
        if self._next.size == 0 and self._tail:  # the stream's last bytes: the tail too
            data, self._tail = pa.py_buffer(data.to_pybytes() + self._tail), b""
        return data

    def read(self, nbytes: int | None = None) -> bytes:
        return self.read_buffer(nbytes).to_pybytes()

    def close(self) -> None:
        self._raw.close()


def _unterminated(file: SourceFile, row: int | None, *, longer: bool = False) -> InvalidInput:
    """The error of a quoted field whose quote is never closed, starting at ``row``;
    ``longer``: or a quoted value longer than a block."""
    where = "row 1 (the header)" if row == 1 else f"row {row} (counting the header)"
    if row is None:
        where = "a row"
    why = (
        f" (or a quoted value of more than {BLOCK_BYTES >> 20} MiB, which is not read)"
        if longer
        else ""
    )
    return InvalidInput(
        f"{file.display}: unterminated quoted field starting at {where}: its opening quote "
        f"is never closed, so the field would take in the rest of the file{why}; close the "
        'quote (a quote inside a quoted value is written twice: "")',
        {"file": file.display, "row": row},
    )


def _csv_header(file: SourceFile, delimiter: str) -> list[str]:
    """The column names of a CSV file, from its first line when that parses alone."""
    options = pa_csv.ParseOptions(delimiter=delimiter)
    try:
        with file.stream() as raw:
            line = raw.read(64 << 10).split(b"\n", 1)[0]
        try:
            return pa_csv.read_csv(
                pa.BufferReader(line + b"\n"), parse_options=options
            ).column_names
        except pa.ArrowInvalid:
            pass  # a quoted newline in the header, or a very long one: parse a block
        with file.stream() as raw:
            return list(_open_csv(raw, delimiter, None).schema.names)
    except READ_ERRORS as exc:
        if any(t in str(exc) for t in ("infer number of columns", "straddles two block")):
            raise _unterminated(file, 1) from None  # the header row never ends
        raise _read_error(file, exc, _csv_message(exc, [])) from None


def _delimiter(file: SourceFile, given: str | None) -> str:
    if given is not None:
        return given
    return "\t" if file.name.lower().removesuffix(".gz").endswith(".tsv") else ","


_CSV_ROW = re.compile(r"Row #(\d+): ")
_CSV_CONVERSION = re.compile(
    r"In CSV column #(\d+): (?:Row #(\d+): )?CSV conversion error to (.+?): invalid value (.*)$"
)


def _csv_message(exc: BaseException, names: Sequence[str], first: str | None = None) -> str:
    """pyarrow's CSV error in our words: the row, the column by name, the expected type."""
    text = error_text(exc)
    if text == "Empty CSV file":
        return "the file is empty (not even a header line)"
    conv = _CSV_CONVERSION.search(text)
    if conv:
        index, row, type_, value = conv.groups()
        column = names[int(index)] if int(index) < len(names) else f"#{index}"
        where = f"row {row} (counting the header), " if row else ""
        origin = f" of {first}" if first else ""
        return (
            f"{where}column {column!r}: {value} is not a valid {type_} (the column's type, "
            f"inferred from the first rows{origin})"
        )
    text = text.removeprefix("CSV parse error: ")
    return _CSV_ROW.sub(lambda m: f"row {m.group(1)} (counting the header): ", text, count=1)


def _json_inputs(files: list[SourceFile]) -> tuple[Inputs, pa.Schema]:
    first = files[0]
    try:
        with first.stream() as raw:
            reader = _open_json(raw, None)
            schema = _no_null_columns(_with_times(first, reader))
    except READ_ERRORS as exc:
        if _starts_an_array(first):
            raise InvalidInput(
                f"{first.display}: a JSON array, not JSON lines (one object per line); "
                "write one object per line (jq -c '.[]' < file.json > file.jsonl)"
            ) from None
        raise _read_error(first, exc, _json_message(exc, 0)) from None
    inputs: Inputs = []
    part_names = _part_names(files)
    for file in files:
        opened = _guarded(
            file,
            schema,
            lambda _n, f=file: _json_batches(f, schema),
            lambda exc, _names, rows: _json_message(exc, rows),
        )
        inputs.append(BatchInput(part_names[file.name], schema, opened, file.size))
    return inputs, schema


# An ISO 8601 time, seconds' fraction and offset optional: pyarrow infers it without a
# fraction and leaves it text with one ("2024-01-01T00:00:00.123Z").
_ISO_TIME = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?$"
_WITH_OFFSET = r"(Z|[+-]\d{2}:?\d{2})$"


def _with_times(first: SourceFile, reader: Any) -> pa.Schema:
    """The schema ``reader`` inferred, with JSON times typed as pyarrow types them in a
    CSV file: a text column whose values in the first block are all ISO 8601 times
    becomes timestamps in the unit the longest fraction needs (pyarrow's JSON reader
    types them only without a fraction), and a time column whose values all carry an
    offset (``Z``, ``+02:00``) is in UTC (``tz="UTC"``; JSON's inference left such
    instants naive, as if they were local times)."""
    schema: pa.Schema = reader.schema
    stamps = [i for i, f in enumerate(schema) if pa.types.is_timestamp(f.type)]
    texts = [i for i, f in enumerate(schema) if f.type == pa.string()]
    if not stamps and not texts:
        return schema
    try:
        if stamps:
            # pyarrow parsed these already: their text, offsets and all, is read again.
            as_text = pa.schema(
                [f.with_type(pa.string()) if i in stamps else f for i, f in enumerate(schema)]
            )
            with first.stream() as raw:
                batch = _open_json(raw, as_text).read_next_batch()
        else:
            batch = reader.read_next_batch()
    except StopIteration:
        return schema
    fields = list(schema)
    for i in stamps + texts:
        values = batch.column(i).drop_null()
        if len(values) == 0 or not pc.all(pc.match_substring_regex(values, _ISO_TIME)).as_py():
            continue  # pyarrow's own type (a date-only timestamp, or text) stays
        fractions = pc.extract_regex(values, r"\.(?P<f>\d+)").field("f")
        digits = pc.max(pc.utf8_length(fractions)).as_py() or 0
        unit = "s" if digits == 0 else "ms" if digits <= 3 else "us" if digits <= 6 else "ns"
        offsets = pc.all(pc.match_substring_regex(values, _WITH_OFFSET)).as_py()
        fields[i] = fields[i].with_type(pa.timestamp(unit, "UTC" if offsets else None))
    return pa.schema(fields)


def _starts_an_array(file: SourceFile) -> bool:
    """Whether the file's first character (after blanks) opens a JSON array."""
    try:
        with file.stream() as raw:
            return raw.read(4096).lstrip().startswith(b"[")
    except READ_ERRORS:
        return False


def _open_json(raw: Any, schema: pa.Schema | None) -> Any:
    return pa_json.open_json(
        raw,
        read_options=pa_json.ReadOptions(block_size=BLOCK_BYTES),
        # Keys outside the schema are inferred (not refused by pyarrow) so that conform()
        # can name them.
        parse_options=pa_json.ParseOptions(explicit_schema=schema),
    )


def _json_batches(file: SourceFile, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    with file.stream() as raw:
        yield from _open_json(raw, schema)


def _json_message(exc: BaseException, rows_before: int) -> str:
    text = error_text(exc).removeprefix("JSON parse error: ")
    if text == "Empty JSON stream":
        return "the file is empty"
    # pyarrow counts rows inside the failing block; the blocks before it were all read.
    found = re.search(r"\s*in row (\d+)$", text)
    if found:
        text = f"line {rows_before + int(found.group(1)) + 1:,}: {text[: found.start()]}"
    return text.replace("Invalid value.", "not valid JSON")


def _no_null_columns(schema: pa.Schema) -> pa.Schema:
    # A column empty in the first block is inferred as null, which refuses later values.
    fields = [f.with_type(pa.string()) if f.type == pa.null() else f for f in schema]
    return pa.schema(fields)


# --- batches and errors ------------------------------------------------------------------


def _guarded(
    file: SourceFile,
    schema: pa.Schema,
    make: Callable[[list[str]], Iterator[pa.RecordBatch]],
    message: Callable[[BaseException, list[str], int], str] | None = None,
) -> Callable[[], Iterator[pa.RecordBatch]]:
    """An ``open`` for a BatchInput whose read errors, midway too, become InvalidInput.

    ``make(names)`` streams the file's batches and may fill ``names`` with the file's own
    columns; ``message(exc, names, rows_read)`` words a format's errors.
    """

    def batches() -> Iterator[pa.RecordBatch]:
        rows = 0
        names: list[str] = []
        try:
            for batch in make(names):
                batch = conform(batch, schema, file.display)
                rows += batch.num_rows
                yield batch
            # A local file truncated or rewritten under us would otherwise just end early.
            file.check_unchanged()
        except ShipyardError:
            raise
        except READ_ERRORS as exc:
            detail = message(exc, names, rows) if message is not None else None
            raise _read_error(file, exc, detail) from None

    return batches


def _part_names(files: list[SourceFile]) -> dict[str, str]:
    """Names for converted files' parts: 'sub/data.csv.gz' -> 'sub/data', unless another
    file would get the same name (then each keeps its full name)."""
    stems = {}
    for file in files:
        base = file.name[:-3] if file.gzip else file.name
        stem, ext = os.path.splitext(base)
        stems[file.name] = stem if ext and not stem.endswith("/") else base
    clashes = Counter(stems.values())
    return {name: stem if clashes[stem] == 1 else name for name, stem in stems.items()}


def _read_error(file: SourceFile, exc: BaseException, detail: str | None = None) -> InvalidInput:
    if isinstance(exc, FileNotFoundError):
        what = "the file is gone (deleted or moved)"
    elif isinstance(exc, PermissionError):
        what = "permission denied"
    else:
        what = detail or error_text(exc)
    return InvalidInput(f"{file.display}: {what}", {"file": file.display})
