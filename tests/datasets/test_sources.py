"""Ingest sources: files, folders, S3, SQL and in-memory data become uniform, streamed inputs,
and every kind of bad input is a clear InvalidInput naming the file."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from tests.conftest import PG_ADMIN_URL, S3_BUCKET, S3_KEY, S3_REGION, S3_SECRET, backend_missing

from shipyard.client import Client
from shipyard.config import Settings
from shipyard.datasets.file_source import BLOCK_BYTES
from shipyard.datasets.sources import BatchInput, ParquetInput, Source, open_source
from shipyard.errors import InvalidInput


def rows_of(source: Source) -> list[dict[str, object]]:
    """Every row of every input, in order (ParquetInputs read from their file)."""
    rows: list[dict[str, object]] = []
    for item in source.inputs:
        if isinstance(item, ParquetInput):
            rows += pq.read_table(item.path).to_pylist()
        else:
            for batch in item.open():
                assert batch.schema.equals(source.schema, check_metadata=True)
                rows += batch.to_pylist()
    return rows


def read_all(item: ParquetInput | BatchInput) -> int:
    assert isinstance(item, BatchInput)
    return sum(batch.num_rows for batch in item.open())


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def big_csv(path: Path, blocks: float) -> int:
    """A CSV of about ``blocks`` parser blocks (ints and short strings); returns its rows."""
    rows = int(blocks * BLOCK_BYTES / 12) + 1  # rows are 12 bytes long or more
    table = pa.table(
        {"i": pa.array(range(rows)), "s": pa.array([f"v{i % 97}" for i in range(rows)])}
    )
    pa_csv.write_csv(table, path)
    return rows


# --- CSV -----------------------------------------------------------------------------------


def test_one_csv_file_is_one_batch_input(tmp_path: Path) -> None:
    path = write(tmp_path / "sales.csv", "id,price,name,when\n1,2.5,a,2024-01-02\n2,,b,\n")
    source = open_source(path)
    assert source.description == str(path.resolve())
    assert source.total_bytes == path.stat().st_size
    [item] = source.inputs
    assert isinstance(item, BatchInput) and item.name == "sales"
    assert item.size_hint == path.stat().st_size
    assert source.schema.names == ["id", "price", "name", "when"]
    assert source.schema.types[:3] == [pa.int64(), pa.float64(), pa.string()]
    assert rows_of(source)[1] == {"id": 2, "price": None, "name": "b", "when": None}


def test_tsv_gzip_and_delimiter(tmp_path: Path) -> None:
    tsv = write(tmp_path / "t.tsv", "a\tb\n1\tx\n")
    assert rows_of(open_source(tsv)) == [{"a": 1, "b": "x"}]
    semi = write(tmp_path / "s.csv", "a;b\n1;x\n")
    assert rows_of(open_source(semi, csv_delimiter=";")) == [{"a": 1, "b": "x"}]
    packed = tmp_path / "z" / "data.csv.gz"
    packed.parent.mkdir()
    with gzip.open(packed, "wt") as f:
        f.write("a,b\n1,x\n2,y\n")
    source = open_source(packed)
    assert source.inputs[0].name == "data"
    assert rows_of(source) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


def test_folder_is_recursive_sorted_and_skips_hidden_files(tmp_path: Path) -> None:
    write(tmp_path / "d" / "b.csv", "k,v\n2,b\n")
    write(tmp_path / "d" / "a" / "z.csv", "k,v\n1,a\n")
    with gzip.open(tmp_path / "d" / "c.csv.gz", "wt") as f:
        f.write("k,v\n3,c\n")
    write(tmp_path / "d" / ".git" / "x.csv", "not,a\nfile,we,read\n")
    write(tmp_path / "d" / ".hidden.csv", "garbage")
    write(tmp_path / "d" / "_SUCCESS", "")
    source = open_source(tmp_path / "d")
    assert [i.name for i in source.inputs] == ["a/z", "b", "c"]
    assert [r["k"] for r in rows_of(source)] == [1, 2, 3]
    files = ["a/z.csv", "b.csv", "c.csv.gz"]
    assert source.total_bytes == sum((tmp_path / "d" / f).stat().st_size for f in files)


def test_csv_folder_imposes_the_first_files_types_and_matches_columns_by_name(
    tmp_path: Path,
) -> None:
    write(tmp_path / "d" / "1.csv", "code,n,note\nx1,1,\nx2,2,\n")
    # Alone, this file would be read as code:int64, n:null, note:string.
    write(tmp_path / "d" / "2.csv", "n,code,note\n,7,hello\n")
    source = open_source(tmp_path / "d")
    assert source.schema == pa.schema(
        [("code", pa.string()), ("n", pa.int64()), ("note", pa.string())]
    )
    assert rows_of(source)[-1] == {"code": "7", "n": None, "note": "hello"}


def test_csv_folder_widens_the_first_files_types_by_the_others(tmp_path: Path) -> None:
    write(tmp_path / "d" / "0.csv", "a,b,c\n,1,x\n")  # a empty: no type of its own
    write(tmp_path / "d" / "1.csv", "a,b,c\n1,2,y\n")
    write(tmp_path / "d" / "2.csv", "a,b,c\n2,2.5,z\n")  # b has fractions here
    source = open_source(tmp_path / "d")
    assert source.schema == pa.schema([("a", pa.int64()), ("b", pa.float64()), ("c", pa.string())])
    assert [(r["a"], r["b"]) for r in rows_of(source)] == [(None, 1.0), (1, 2.0), (2, 2.5)]
    write(tmp_path / "e" / "0.csv", "a\n1\n")
    write(tmp_path / "e" / "1.csv", "a\nnot a number\n")  # no widening to text: refused
    with pytest.raises(InvalidInput, match="'not a number' is not a valid int64"):
        rows_of(open_source(tmp_path / "e"))


def test_csv_folder_with_other_columns_names_the_file_and_columns(tmp_path: Path) -> None:
    write(tmp_path / "d" / "1.csv", "a,b\n1,2\n")
    write(tmp_path / "d" / "2.csv", "a,c\n1,2\n")
    with pytest.raises(InvalidInput) as err:
        open_source(tmp_path / "d")
    assert "2.csv" in err.value.message
    assert "missing 'b'" in err.value.message and "unexpected 'c'" in err.value.message
    write(tmp_path / "d" / "2.csv", "a,b,b\n1,2,3\n")
    with pytest.raises(InvalidInput, match="2.csv: columns differ .*repeated 'b'"):
        open_source(tmp_path / "d")


def test_csv_with_a_wrong_number_of_fields_names_file_and_row(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.csv", "a,b\n1,2\n3,4,5\n")
    with pytest.raises(InvalidInput) as err:
        open_source(path)
    assert str(path) in err.value.message and "row 3" in err.value.message
    assert "Expected 2 columns, got 3" in err.value.message
    assert "Traceback" not in err.value.message


def test_csv_errors_after_the_first_block_are_raised_while_reading(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    rows = big_csv(path, 1.5)
    with path.open("a") as f:
        f.write("oops,v1\n")
    source = open_source(path)  # the first block parses: the error is further on
    with pytest.raises(InvalidInput) as err:
        read_all(source.inputs[0])
    message = err.value.message
    assert str(path) in message and f"row {rows + 2}" in message
    assert "column 'i'" in message and "'oops'" in message and "int64" in message

    path.write_text(path.read_text().replace("oops,v1\n", "1,2,3\n"))
    with pytest.raises(InvalidInput, match=f"row {rows + 2}.*Expected 2 columns, got 3"):
        read_all(open_source(path).inputs[0])


def test_a_csv_larger_than_a_few_blocks_comes_out_in_several_batches(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    rows = big_csv(path, 3.5)
    assert path.stat().st_size > 3 * BLOCK_BYTES
    [item] = open_source(path).inputs
    assert isinstance(item, BatchInput)
    sizes = [batch.num_rows for batch in item.open()]
    assert sum(sizes) == rows
    assert len(sizes) >= 3 and max(sizes) < rows / 2


def test_empty_csv_is_refused_and_header_only_csv_has_zero_rows(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="empty"):
        open_source(write(tmp_path / "e.csv", ""))
    source = open_source(write(tmp_path / "h.csv", "a,b\n"))
    assert source.schema == pa.schema([("a", pa.string()), ("b", pa.string())])
    assert rows_of(source) == []


def refusal(path: Path) -> InvalidInput:
    """The error of reading the file whole (its columns, then every batch)."""
    with pytest.raises(InvalidInput) as err:
        rows_of(open_source(path))
    return err.value


def blocks_of_ints(path: Path, blocks: float, tail: str) -> int:
    """A CSV of two int columns, unquoted, of about ``blocks`` parser blocks, then
    ``tail``; returns the rows before the tail."""
    rows = int(blocks * BLOCK_BYTES / 12) + 1
    table = pa.table({"i": pa.array(range(rows)), "j": pa.array(range(rows))})
    pa_csv.write_csv(table, path, pa_csv.WriteOptions(quoting_style="none"))
    with path.open("a") as f:
        f.write(tail)
    return rows


def test_an_unterminated_quote_is_refused_with_the_row_it_starts_at(tmp_path: Path) -> None:
    """pyarrow ends a quoted field still open at the end of the input there: the audit's
    file below was one row whose name held the 99,998 rows after it."""
    after = "".join(f"{i},n{i}\n" for i in range(2, 100_000))
    cases = {
        "audit.csv": ('id,name\n1,"oops\n' + after, 2),
        "short.csv": ('id,name\n1,a\n2,"b\n3,c\n4,d\n', 3),
        "first_field.csv": ('id,name\n1,a\n"2,b\n3,c\n', 3),  # its row is short of fields
        "one_column.csv": ('id\n1\n"2\n3\n', 3),
        "header.csv": ('id,"name\n1,a\n', 1),
        "no_newline_at_the_end.csv": ('id,name\n1,"a', 2),
        "tab.tsv": ('a\tb\n1\t"x\n2\ty\n', 2),
    }
    for name, (text, row) in cases.items():
        path = write(tmp_path / name, text)
        error = refusal(path)
        where = "row 1 (the header)" if row == 1 else f"row {row} (counting the header)"
        assert error.message.startswith(
            f"{path}: unterminated quoted field starting at {where}: "
        ), (name, error.message)
        assert error.details == {"file": str(path), "row": row}, name
    gz = tmp_path / "g.csv.gz"
    gz.write_bytes(gzip.compress(b'id,name\n1,a\n2,"b\n3,c\n'))
    assert refusal(gz).details == {"file": str(gz), "row": 3}


def test_an_unterminated_quote_beyond_the_first_block(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    # In the last block: in a text column, or an int one (a value that took the rest in).
    rows = big_csv(path, 1.2)
    with path.open("a") as f:
        f.write('7,"v\n8,v8\n')
    assert refusal(path).details == {"file": str(path), "row": rows + 2}
    rows = blocks_of_ints(path, 1.2, '7,"8\n9,9\n')
    assert refusal(path).details == {"file": str(path), "row": rows + 2}
    rows = blocks_of_ints(path, 1.2, '"7,8\n9,9\n')
    assert refusal(path).details == {"file": str(path), "row": rows + 2}
    # Two blocks and more before the end: it used to glue the rest of its block into one
    # value, silently, where it began in the first one.
    blocks_of_ints(path, 2.5, "")
    text = path.read_bytes()
    start = text.index(b"\n", 1000) + 1  # the start of a row in the first block
    path.write_bytes(text[:start] + b'1,"2\n' + text[start:])
    row = text[:start].count(b"\n") + 1
    error = refusal(path)
    assert error.details == {"file": str(path), "row": row}
    assert "unterminated quoted field" in error.message


def test_quoted_line_breaks_bom_and_crlf_are_read_whatever_the_block(tmp_path: Path) -> None:
    small = write(tmp_path / "s.csv", '\ufeffid,name\r\n1,"a\r\nb"\r\n2,"c ""q"""\r\n')
    assert rows_of(open_source(small)) == [{"id": 1, "name": "a\r\nb"}, {"id": 2, "name": 'c "q"'}]
    no_newline = write(tmp_path / "header.csv", "a,b")  # a header without its line end
    assert rows_of(open_source(no_newline)) == []
    # Values with line breaks across the ends of the parser's blocks.
    rows = int(1.5 * BLOCK_BYTES / 24)
    notes = [f"line one\nline {i}" for i in range(rows)]
    path = tmp_path / "notes.csv"
    pa_csv.write_csv(pa.table({"id": pa.array(range(rows)), "note": notes}), path)
    [item] = open_source(path).inputs
    assert isinstance(item, BatchInput)
    batches = list(item.open())
    assert len(batches) >= 2
    assert pa.Table.from_batches(batches).column("note").to_pylist() == notes


def test_an_ingest_of_a_csv_whose_quote_is_never_closed_makes_nothing(
    client: Client, tmp_path: Path
) -> None:
    bad = write(tmp_path / "bad.csv", 'id,name\n1,a\n2,"b\n3,c\n4,d\n')
    with pytest.raises(InvalidInput, match="unterminated quoted field starting at row 3"):
        client.datasets.ingest("d", bad)
    assert client.datasets.list().datasets == []
    client.datasets.ingest("d", write(tmp_path / "good.csv", "id,name\n1,a\n"))
    with pytest.raises(InvalidInput, match="unterminated quoted field starting at row 3"):
        client.datasets.append("d", bad)
    assert [v.version for v in client.datasets.versions("d").versions] == [1]
    assert client.datasets.get_version("d").rows == 1


def test_duplicate_csv_columns_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="duplicate column names 'a'"):
        open_source(write(tmp_path / "d.csv", "a,a\n1,2\n"))


def test_csv_columns_without_a_name_or_differing_only_in_case_are_refused(
    tmp_path: Path,
) -> None:
    with pytest.raises(InvalidInput, match="column 2 has no name"):
        open_source(write(tmp_path / "trailing.csv", "a,\n1,2\n"))
    with pytest.raises(InvalidInput, match="'id' and 'ID' differ only in letter case"):
        open_source(write(tmp_path / "case.csv", "id,ID\n1,5\n"))
    with pytest.raises(InvalidInput, match="differ only in letter case"):
        open_source(pa.table({"Name": [1], "name": [2]}))


def test_empty_and_na_fields_are_missing_in_text_columns_too(tmp_path: Path) -> None:
    source = open_source(write(tmp_path / "s.csv", "id,name,score\n1,,\n2,bob,3.5\n3,NA,\n"))
    assert [(r["name"], r["score"]) for r in rows_of(source)] == [
        (None, None),
        ("bob", 3.5),
        (None, None),
    ]
    blank = open_source(write(tmp_path / "blank.csv", "a,b\n,\n,\n"))
    assert rows_of(blank) == [{"a": None, "b": None}] * 2


def test_text_that_is_not_utf8_and_objects_without_fields_are_refused(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("name\nJosé\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match="column 'name' is not UTF-8 text"):
        open_source(latin1)
    hollow = write(tmp_path / "e.jsonl", '{"a": 1, "s": {}}\n{"a": 2, "s": {}}\n')
    with pytest.raises(InvalidInput, match="column 's' holds only empty objects"):
        open_source(hollow)
    nested = pa.table({"l": pa.array([[{}]], pa.list_(pa.struct([])))})
    with pytest.raises(InvalidInput, match="column 'l' holds only empty objects"):
        open_source(nested)


def test_json_times_with_a_fraction_of_a_second_are_timestamps(tmp_path: Path) -> None:
    lines = (
        '{"at": "2024-01-01T00:00:00.123Z", "note": "x"}\n'
        '{"at": "2024-01-01T01:00:00.5+01:00", "note": "2024-01-01T00:00:00.1Z"}\n'
        '{"at": null, "note": "y"}\n'
    )
    source = open_source(write(tmp_path / "t.jsonl", lines))
    assert source.schema == pa.schema([("at", pa.timestamp("ms", "UTC")), ("note", pa.string())])
    at = [r["at"] for r in rows_of(source)]
    day = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    assert at == [day + dt.timedelta(milliseconds=123), day + dt.timedelta(milliseconds=500), None]
    micros = write(tmp_path / "u.jsonl", '{"at": "2024-01-01 00:00:00.123456"}\n')
    assert open_source(micros).schema == pa.schema([("at", pa.timestamp("us"))])


def test_json_times_with_offsets_are_utc_instants_as_in_csv(tmp_path: Path) -> None:
    """Times that all carry an offset are typed in UTC, as pyarrow types them in a CSV
    file (JSON's inference left them naive, as if local times); naive, mixed and
    date-only values keep their types."""
    lines = (
        '{"z": "2024-01-01T00:00:00Z", "paris": "2024-01-01T02:00:00+0200", '
        '"naive": "2024-01-01T00:00:00", "mixed": "2024-01-01T00:00:00Z", "day": "2024-01-01"}\n'
        '{"z": null, "paris": "2024-06-01T12:30:00+02:00", "naive": "2024-01-02 03:04:05", '
        '"mixed": "2024-01-01T01:00:00", "day": "2024-01-02"}\n'
    )
    jsonl = write(tmp_path / "t.jsonl", lines)
    source = open_source(jsonl)
    types = {f.name: f.type for f in source.schema}
    assert types["z"] == pa.timestamp("s", "UTC")
    assert types["paris"] == pa.timestamp("s", "UTC")
    assert types["naive"] == pa.timestamp("s")
    assert types["mixed"] == pa.timestamp("s")  # one value has no offset
    assert types["day"] == pa.timestamp("s")  # pyarrow's own type, kept
    first, second = rows_of(source)
    utc = dt.UTC
    assert first["z"] == dt.datetime(2024, 1, 1, tzinfo=utc)
    assert first["paris"] == dt.datetime(2024, 1, 1, tzinfo=utc)
    assert second["paris"] == dt.datetime(2024, 6, 1, 10, 30, tzinfo=utc)
    assert second["naive"] == dt.datetime(2024, 1, 2, 3, 4, 5)
    assert second["mixed"] == dt.datetime(2024, 1, 1, 1, 0)
    # The same times in a CSV file: the same types.
    csv = write(
        tmp_path / "t.csv",
        "z,paris,naive\n2024-01-01T00:00:00Z,2024-01-01T02:00:00+02:00,2024-01-01T00:00:00\n",
    )
    csv_types = {f.name: f.type for f in open_source(csv).schema}
    assert csv_types == {k: types[k] for k in ("z", "paris", "naive")}


def test_json_lines_read_as_csv_are_refused(tmp_path: Path) -> None:
    lines = '{"id": 0, "label": "a"}\n{"id": 1, "label": "b"}\n'
    with pytest.raises(InvalidInput, match="looks like JSON lines, not CSV"):
        open_source(write(tmp_path / "a.jsonl", lines), format="csv")
    with pytest.raises(InvalidInput, match="name the format jsonl"):
        open_source(write(tmp_path / "named.csv", lines))
    assert len(rows_of(open_source(tmp_path / "a.jsonl"))) == 2
    array = write(tmp_path / "array.jsonl", '[{"id": 0}, {"id": 1}]\n')
    with pytest.raises(InvalidInput, match="a JSON array, not JSON lines"):
        open_source(array)


# --- JSON lines ----------------------------------------------------------------------------


def test_jsonl_files_types_nulls_and_missing_keys(tmp_path: Path) -> None:
    write(tmp_path / "d" / "1.jsonl", '{"a": 1, "b": null, "c": {"x": true}}\n{"a": 2}\n')
    write(tmp_path / "d" / "2.ndjson", '{"b": "text", "a": 3}\n')
    source = open_source(tmp_path / "d")
    assert source.schema.field("a").type == pa.int64()
    assert source.schema.field("b").type == pa.string()  # null in the first block
    assert rows_of(source) == [
        {"a": 1, "b": None, "c": {"x": True}},
        {"a": 2, "b": None, "c": None},
        {"a": 3, "b": "text", "c": None},
    ]


def test_jsonl_key_unknown_to_the_first_file_is_refused_by_name(tmp_path: Path) -> None:
    write(tmp_path / "d" / "1.jsonl", '{"a": 1}\n')
    write(tmp_path / "d" / "2.jsonl", '{"a": 2, "extra": 1}\n')
    source = open_source(tmp_path / "d")
    with pytest.raises(InvalidInput) as err:
        rows_of(source)
    assert "2.jsonl" in err.value.message and "unexpected 'extra'" in err.value.message


def test_a_json_line_that_is_not_json_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.jsonl", '{"a": 1}\n{"a": 2}\nnot json\n')
    with pytest.raises(InvalidInput, match=r"bad\.jsonl: line 3: not valid JSON"):
        open_source(path)
    lines = BLOCK_BYTES // 9 + 1000  # more than one block before the bad line
    late = write(tmp_path / "late.jsonl", '{"a": 1}\n' * lines + "{oops\n")
    source = open_source(late)
    with pytest.raises(InvalidInput, match=f"late.jsonl: line {lines + 1:,}: "):
        read_all(source.inputs[0])


# --- Parquet -------------------------------------------------------------------------------


def test_local_parquet_is_kept_as_is_with_its_stat(tmp_path: Path) -> None:
    path = tmp_path / "p" / "x.parquet"
    path.parent.mkdir()
    table = pa.table({"a": [1, 2], "b": ["x", "y"]})
    pq.write_table(table, path)
    source = open_source(tmp_path / "p")
    [item] = source.inputs
    info = path.stat()
    assert item == ParquetInput(
        path.resolve(),
        "x.parquet",
        info.st_size,
        info.st_mtime_ns,
        info.st_ino,
        item.schema,
        info.st_ctime_ns,
    )
    assert item.schema.equals(table.schema) and source.schema == table.schema
    assert source.schema.metadata is None

    converted = open_source(tmp_path / "p", as_is=False, batch_rows=1)
    [item] = converted.inputs
    assert isinstance(item, BatchInput) and item.name == "x"
    assert [b.num_rows for b in item.open()] == [1, 1]


def test_parquet_folder_must_agree_on_columns_and_types(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1], "b": ["x"]}), tmp_path / "1.parquet")
    pq.write_table(pa.table({"a": ["1"], "b": ["x"]}), tmp_path / "2.pq")
    with pytest.raises(InvalidInput) as err:
        open_source(tmp_path)
    assert "2.pq" in err.value.message and "'a' is string, not int64" in err.value.message

    pq.write_table(pa.table({"b": ["y"], "a": [2]}), tmp_path / "2.pq")
    with pytest.raises(InvalidInput, match="2.pq: its columns are in another order"):
        open_source(tmp_path)
    converted = open_source(tmp_path, as_is=False)  # matched by name, in the first order
    assert rows_of(converted) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]

    pq.write_table(pa.table({"a": [2]}), tmp_path / "2.pq")
    with pytest.raises(InvalidInput, match="2.pq: columns differ from .*missing 'b'"):
        open_source(tmp_path)


def test_parquet_nullability_may_differ_between_files(tmp_path: Path) -> None:
    required = pa.schema([pa.field("a", pa.int64(), nullable=False)])
    pq.write_table(pa.table({"a": [1]}, schema=required), tmp_path / "1.parquet")
    pq.write_table(
        pa.table({"a": [None]}, schema=pa.schema([("a", pa.int64())])), tmp_path / "2.parquet"
    )
    source = open_source(tmp_path, as_is=False)
    assert source.schema.field("a").nullable
    assert rows_of(source) == [{"a": 1}, {"a": None}]


def test_a_file_that_is_not_parquet_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "fake.parquet", "hello, I am text")
    with pytest.raises(InvalidInput, match="fake.parquet: .*"):
        open_source(path)


def test_known_schemas_spare_reading_the_footers(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    for name in ("x", "y"):
        pq.write_table(pa.table({"a": [1]}), folder / f"{name}.parquet")
    calls: list[list[tuple[Path, int]]] = []
    remembered = pa.schema([("a", pa.int64())])

    def lookup(files: Sequence[tuple[Path, os.stat_result]]) -> list[pa.Schema | None]:
        calls.append([(p, st.st_ino) for p, st in files])
        return [remembered if p.name == "x.parquet" else None for p, _ in files]

    x = folder / "x.parquet"
    x.write_bytes(b"not parquet any more")  # a cache hit never opens the file
    source = open_source(folder, known_schemas=lookup)
    # Asked once for the whole folder; the file it did not know was read.
    expected = [(p.resolve(), p.stat().st_ino) for p in sorted(folder.iterdir())]
    assert calls == [expected]
    assert [i.schema for i in source.inputs][0] is remembered  # type: ignore[union-attr]
    assert source.inputs[1].schema.equals(remembered)  # type: ignore[union-attr]
    with pytest.raises(InvalidInput):
        open_source(folder, known_schemas=lambda files: [None] * len(files))


# --- files: paths, formats and failures ----------------------------------------------------


def test_missing_and_empty_paths(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file or folder"):
        open_source(tmp_path / "nope.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput, match="no data files"):
        open_source(tmp_path / "empty")
    write(tmp_path / "hidden" / ".only.csv", "a\n1\n")
    with pytest.raises(InvalidInput, match="no data files"):
        open_source(tmp_path / "hidden")


def test_extensions_and_the_format_override(tmp_path: Path) -> None:
    path = write(tmp_path / "d" / "data.txt", "a\n1\n")
    with pytest.raises(InvalidInput, match=r"data\.txt: unsupported file type"):
        open_source(tmp_path / "d")
    assert rows_of(open_source(path, format="csv")) == [{"a": 1}]
    write(tmp_path / "d" / "more.csv", "a\n2\n")
    assert rows_of(open_source(tmp_path / "d", format="csv")) == [{"a": 1}, {"a": 2}]
    write(tmp_path / "m" / "a.csv", "a\n1\n")
    write(tmp_path / "m" / "b.jsonl", '{"a": 1}\n')
    with pytest.raises(InvalidInput, match="mixes formats: csv .*jsonl"):
        open_source(tmp_path / "m")


def test_file_urls(tmp_path: Path) -> None:
    path = write(tmp_path / "with space.csv", "a\n1\n")
    assert rows_of(open_source(path.as_uri())) == [{"a": 1}]
    with pytest.raises(InvalidInput, match="local path"):
        open_source("file://otherhost/x.csv")


def test_symbolic_links_inside_are_followed_and_outside_refused(tmp_path: Path) -> None:
    outside = write(tmp_path / "secret.csv", "a\n9\n")
    data = tmp_path / "d"
    write(data / "real" / "a.csv", "a\n1\n")
    (data / "link.csv").symlink_to(data / "real" / "a.csv")
    (data / "zdir").symlink_to(data / "real", target_is_directory=True)
    source = open_source(data)
    assert [i.name for i in source.inputs] == ["link", "real/a"]
    (data / "out.csv").symlink_to(outside)
    with pytest.raises(InvalidInput, match="outside"):
        open_source(data)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "locked.csv", "a\n1\n")
    path.chmod(0)
    try:
        with pytest.raises(InvalidInput, match="locked.csv: permission denied"):
            open_source(path)
    finally:
        path.chmod(0o600)


def test_a_file_that_disappears_before_its_turn(tmp_path: Path) -> None:
    write(tmp_path / "d" / "1.csv", "a\n1\n")
    second = write(tmp_path / "d" / "2.csv", "a\n2\n")
    source = open_source(tmp_path / "d")
    second.unlink()
    assert read_all(source.inputs[0]) == 1
    with pytest.raises(InvalidInput, match="2.csv: the file is gone"):
        read_all(source.inputs[1])


def test_a_file_that_changes_while_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    big_csv(path, 2.5)
    [item] = open_source(path).inputs
    assert isinstance(item, BatchInput)
    batches = item.open()
    next(batches)
    with path.open("r+b") as f:
        f.truncate(BLOCK_BYTES + BLOCK_BYTES // 3)
    with pytest.raises(InvalidInput, match="big.csv: "):
        for _ in batches:
            pass


def test_a_parquet_file_damaged_before_it_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"a": list(range(1000))}), path)
    [item] = open_source(path, as_is=False).inputs
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInput, match="x.parquet: "):
        read_all(item)


# --- in-memory data ------------------------------------------------------------------------


def test_dataframe_keeps_only_a_named_index(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": range(1000), "b": [f"s{i}" for i in range(1000)]})
    source = open_source(frame.iloc[10:], batch_rows=400)
    assert source.description == "DataFrame (990 rows)"
    assert source.schema == pa.schema([("a", pa.int64()), ("b", pa.string())])
    assert source.schema.metadata is None
    [item] = source.inputs
    assert isinstance(item, BatchInput) and item.name == "part"
    assert [b.num_rows for b in item.open()] == [400, 400, 190]
    assert rows_of(source)[0] == {"a": 10, "b": "s10"}

    named = frame.head(2).set_index(pd.Index([7, 8], name="key"))
    assert rows_of(open_source(named)) == [
        {"a": 0, "b": "s0", "key": 7},
        {"a": 1, "b": "s1", "key": 8},
    ]
    assert open_source(pd.DataFrame({"a": [1, 2]})).description == "DataFrame (2 rows)"


def test_dataframe_of_chunked_arrow_columns(tmp_path: Path) -> None:
    # pandas' Arrow-backed strings come in several chunks after a concat or a read of a
    # Parquet file of several row groups; a record batch holds one chunk per column.
    half = pd.DataFrame({"s": pd.array(["a", "b"], dtype="string[pyarrow]"), "n": [1, 2]})
    frame = pd.concat([half, half], ignore_index=True)
    assert frame["s"].array._pa_array.num_chunks == 2  # the case at hand
    source = open_source(frame)
    assert source.schema == pa.schema([("s", pa.string()), ("n", pa.int64())])
    assert [r["s"] for r in rows_of(source)] == ["a", "b", "a", "b"]
    path = tmp_path / "groups.parquet"
    pq.write_table(pa.table({"s": ["x"] * 10}), path, row_group_size=3)
    assert len(rows_of(open_source(pd.read_parquet(path, dtype_backend="pyarrow")))) == 10


def test_dataframe_column_labels_must_be_strings() -> None:
    with pytest.raises(InvalidInput, match=r"column labels must be strings, got 0 \(int\)"):
        open_source(pd.DataFrame({0: [1], 1: [2]}))
    columns = pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")])
    with pytest.raises(InvalidInput, match="column labels must be strings"):
        open_source(pd.DataFrame([[1, 2]], columns=columns))


def test_dataframe_that_arrow_cannot_hold_is_refused() -> None:
    with pytest.raises(InvalidInput, match="DataFrame"):
        open_source(pd.DataFrame({"mixed": [1, "a", 2.5]}))
    with pytest.raises(InvalidInput, match="no columns"):
        open_source(pd.DataFrame())


def test_arrow_table_batch_and_reader() -> None:
    table = pa.table({"a": [1, 2, 3]}).replace_schema_metadata({"k": "v"})
    source = open_source(table, batch_rows=2)
    assert source.description == "Arrow table (3 rows)" and source.schema.metadata is None
    assert [b.num_rows for b in source.inputs[0].open()] == [2, 1]  # type: ignore[union-attr]
    batch = table.to_batches()[0]
    assert rows_of(open_source(batch, batch_rows=2)) == [{"a": 1}, {"a": 2}, {"a": 3}]
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    assert rows_of(open_source(reader)) == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", "a\n1\n")
    for kwargs in (
        {"format": "xlsx"},
        {"batch_rows": 0},
        {"csv_delimiter": ";;"},
        {"query": "select 1"},
    ):
        with pytest.raises(InvalidInput):
            open_source(path, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="query="):
        open_source("postgresql://host/db")
    with pytest.raises(InvalidInput, match="unsupported URL scheme"):
        open_source("https://example.com/a.csv")
    with pytest.raises(InvalidInput, match="cannot ingest"):
        open_source(42)  # type: ignore[arg-type]


# --- SQL -----------------------------------------------------------------------------------


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER, price REAL, note TEXT, later)")
        rows = [(i, i * 1.5, None if i < 5 else f"n{i}", None if i < 9 else i) for i in range(10)]
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    conn.close()
    return path


def test_sqlite_query_streams_batches_and_widens_null_columns(sqlite_db: Path) -> None:
    url = f"sqlite:///{sqlite_db}"
    source = open_source(
        url, query="SELECT * FROM t WHERE note IS NULL OR note LIKE 'n%'", batch_rows=4
    )
    assert source.description == f"query on sqlite:///{sqlite_db}"
    # note: null in the first batch, text later; later: null for 8 rows (beyond the
    # look-ahead of one more batch): string, its value turned into text.
    assert source.schema == pa.schema(
        [("id", pa.int64()), ("price", pa.float64()), ("note", pa.string()), ("later", pa.string())]
    )
    [item] = source.inputs
    assert isinstance(item, BatchInput)
    batches = list(item.open())
    assert [b.num_rows for b in batches] == [4, 4, 2]
    rows = [r for b in batches for r in b.to_pylist()]
    assert rows[5] == {"id": 5, "price": 7.5, "note": "n5", "later": None}
    assert rows[9]["later"] == "9"
    with pytest.raises(InvalidInput, match="read once"):
        item.open()


def test_sqlite_empty_result_mixed_types_and_errors(sqlite_db: Path) -> None:
    url = f"sqlite:///{sqlite_db}"
    empty = open_source(url, query="SELECT id, note FROM t WHERE id < 0")
    assert empty.schema == pa.schema([("id", pa.string()), ("note", pa.string())])
    assert rows_of(empty) == []
    with pytest.raises(InvalidInput, match="column 'v' mixes types in its first rows"):
        open_source(url, query="SELECT 1 AS v UNION ALL SELECT 'x'")
    with pytest.raises(InvalidInput, match="no such column: nope"):
        open_source(url, query="SELECT nope FROM t")
    with pytest.raises(InvalidInput, match="no such SQLite database"):
        open_source(f"sqlite:///{sqlite_db.parent / 'missing.db'}", query="SELECT 1")
    assert not (sqlite_db.parent / "missing.db").exists()


def test_sqlite_query_cannot_change_the_database(sqlite_db: Path) -> None:
    url = f"sqlite:///{sqlite_db}"
    with pytest.raises(InvalidInput, match="readonly"):
        open_source(url, query="DELETE FROM t RETURNING id")
    with pytest.raises(InvalidInput, match="no columns"):
        open_source(url, query="PRAGMA foreign_keys = ON")
    with sqlite3.connect(sqlite_db) as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (10,)
    conn.close()


@pytest.fixture
def pg_table() -> Iterator[tuple[str, str]]:
    """A table of the test PostgreSQL database with a unique name, dropped afterwards."""
    engine = sa.create_engine(PG_ADMIN_URL, poolclass=sa.pool.NullPool)
    name = f"sources_{uuid.uuid4().hex[:10]}"
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                f"CREATE TABLE {name} (id int, big bigint, price numeric(10, 2), ratio numeric,"
                " label text, flag boolean, at timestamptz, day date, doc jsonb, ref uuid,"
                " empty int)"
            )
            conn.exec_driver_sql(
                f"INSERT INTO {name} SELECT i, i * 10000000000, i + 0.25, i / 3.0, 'l' || i,"  # noqa: S608
                " mod(i, 2) = 0, timestamptz '2024-01-01 00:00:00+00' + i * interval '1 hour',"
                " date '2024-01-01' + i, jsonb_build_object('i', i),"
                " ('00000000-0000-0000-0000-00000000000' || mod(i, 10))::uuid, NULL"
                " FROM generate_series(1, 25) AS i"
            )
    except sa.exc.OperationalError:
        engine.dispose()
        backend_missing("PostgreSQL at " + PG_ADMIN_URL)
    yield PG_ADMIN_URL, name
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
    engine.dispose()


def with_password(url: str, password: str) -> str:
    return str(sa.engine.make_url(url).set(password=password).render_as_string(hide_password=False))


@pytest.mark.postgres
def test_postgres_query_uses_declared_types_and_a_server_side_cursor(
    pg_table: tuple[str, str],
) -> None:
    url, table = pg_table
    secret_url = with_password(url, "s3cret-Pw")
    source = open_source(secret_url, query=f"SELECT * FROM {table} ORDER BY id", batch_rows=10)  # noqa: S608
    assert "s3cret" not in source.description and source.description.startswith(
        "query on postgresql://"
    )
    assert source.schema == pa.schema(
        [
            ("id", pa.int32()),
            ("big", pa.int64()),
            ("price", pa.decimal128(10, 2)),
            ("ratio", pa.float64()),
            ("label", pa.string()),
            ("flag", pa.bool_()),
            ("at", pa.timestamp("us", tz="UTC")),
            ("day", pa.date32()),
            ("doc", pa.string()),
            ("ref", pa.string()),
            ("empty", pa.int32()),
        ]
    )
    [item] = source.inputs
    assert isinstance(item, BatchInput)
    batches = item.open()
    try:
        first = next(batches)
        assert first.num_rows == 10
        # The rows come through a cursor on the server: the session's last statement is a
        # FETCH from it.
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            fetching = conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE upper(left(query, 13)) = 'FETCH FORWARD'"
            ).scalar()
        engine.dispose()
        assert fetching and fetching >= 1
        assert [b.num_rows for b in batches] == [10, 5]
    finally:
        batches.close()  # a stream left open holds its table lock until garbage-collected
    row = first.to_pylist()[0]
    assert row["price"] is not None and str(row["price"]) == "1.25"
    assert json.loads(row["doc"]) == {"i": 1}
    assert row["ref"] == "00000000-0000-0000-0000-000000000001" and row["empty"] is None


@pytest.mark.postgres
def test_postgres_unconstrained_numeric_keeps_its_integers_or_is_refused(
    pg_table: tuple[str, str],
) -> None:
    url, _ = pg_table
    query = "SELECT avg(i) AS a, 12345678901234::numeric AS n FROM generate_series(1, 3) i"
    averages = open_source(url, query=query)
    assert rows_of(averages) == [{"a": 2.0, "n": 12345678901234.0}]
    ids = "SELECT (10::numeric ^ 30 + i + 0.25) AS big FROM generate_series(1, 3) i"
    with pytest.raises(InvalidInput) as err:
        rows_of(open_source(url, query=ids))
    assert "column 'big'" in err.value.message and "would be rounded to 1e+30" in err.value.message
    assert "CAST it in the query" in err.value.message


@pytest.mark.postgres
def test_postgres_errors_empty_results_and_read_only(pg_table: tuple[str, str]) -> None:
    url, table = pg_table
    secret_url = with_password(url, "s3cret-Pw")
    empty = open_source(secret_url, query=f"SELECT id, label FROM {table} WHERE id < 0")  # noqa: S608
    assert empty.schema == pa.schema([("id", pa.int32()), ("label", pa.string())])
    assert rows_of(empty) == []
    with pytest.raises(InvalidInput) as err:
        open_source(secret_url, query=f"SELECT nope FROM {table}")  # noqa: S608
    assert 'column "nope" does not exist' in err.value.message
    assert "s3cret" not in err.value.message
    with pytest.raises(InvalidInput, match="read-only transaction"):
        open_source(url, query=f"SELECT id FROM {table} FOR UPDATE")  # noqa: S608
    with pytest.raises(InvalidInput, match="data-modifying"):
        open_source(url, query=f"WITH d AS (DELETE FROM {table} RETURNING id) SELECT * FROM d")  # noqa: S608
    with pytest.raises(InvalidInput, match="no columns"):
        open_source(url, query=f"SELECT FROM {table}")
    with pytest.raises(InvalidInput, match="duplicate column names 'a'"):
        open_source(url, query="SELECT 1 AS a, 2 AS a")
    late = open_source(
        url, query="SELECT 1 / (i - 2500) AS x FROM generate_series(1, 3000) AS i", batch_rows=1000
    )
    with pytest.raises(InvalidInput, match="division by zero"):
        rows_of(late)  # the error comes with a later FETCH, while the batches are read
    wrong_port = with_password(url.replace(":5432", ":1"), "s3cret-Pw")
    with pytest.raises(InvalidInput) as err:
        open_source(wrong_port, query="SELECT 1")
    assert "s3cret" not in err.value.message
    rows = open_source(url, query=f"SELECT count(*) AS n FROM {table} WHERE label LIKE 'l%'")  # noqa: S608
    assert rows_of(rows) == [{"n": 25}]  # nothing was deleted; '%' reaches the database


# --- S3 ------------------------------------------------------------------------------------


@pytest.fixture
def s3(s3_endpoint: str) -> tuple[Settings, str]:
    """Settings for the moto server, and a fresh prefix of its bucket."""
    settings = Settings(
        s3_endpoint_url=s3_endpoint,
        s3_access_key_id=S3_KEY,
        s3_secret_access_key=S3_SECRET,
        s3_region=S3_REGION,
    )
    return settings, f"s3://{S3_BUCKET}/{uuid.uuid4().hex}"


def put(settings: Settings, url: str, data: bytes) -> None:
    import boto3

    bucket, key = url.removeprefix("s3://").split("/", 1)
    boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name=S3_REGION,
    ).put_object(Bucket=bucket, Key=key, Body=data)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=2)
    return bytes(sink.getvalue().to_pybytes())


@pytest.mark.s3
def test_s3_object_and_prefix(s3: tuple[Settings, str]) -> None:
    settings, base = s3
    put(settings, f"{base}/one.csv", b"a,b\n1,x\n")
    source = open_source(f"{base}/one.csv", settings=settings)
    assert source.description == f"{base}/one.csv" and rows_of(source) == [{"a": 1, "b": "x"}]

    put(settings, f"{base}/pq/b/2.parquet", parquet_bytes(pa.table({"a": [3, 4, 5]})))
    put(settings, f"{base}/pq/1.parquet", parquet_bytes(pa.table({"a": [1, 2]})))
    put(settings, f"{base}/pq/_SUCCESS", b"")
    source = open_source(f"{base}/pq/", settings=settings, batch_rows=2)
    assert [i.name for i in source.inputs] == ["1", "b/2"]
    assert all(isinstance(i, BatchInput) for i in source.inputs)  # remote: streamed
    assert source.total_bytes and source.total_bytes > 0
    assert [b.num_rows for b in source.inputs[1].open()] == [2, 1]  # type: ignore[union-attr]
    assert [r["a"] for r in rows_of(source)] == [1, 2, 3, 4, 5]

    with pytest.raises(InvalidInput, match="no such object"):
        open_source(f"{base}/nothing.csv", settings=settings)
    put(settings, f"{base}/bad/x.parquet", parquet_bytes(pa.table({"a": ["s"]})))
    put(settings, f"{base}/bad/y.parquet", parquet_bytes(pa.table({"a": [1]})))
    with pytest.raises(InvalidInput, match="y.parquet: column types differ"):
        open_source(f"{base}/bad", settings=settings)


@pytest.mark.s3
def test_s3_object_that_disappears_before_it_is_read(s3: tuple[Settings, str]) -> None:
    settings, base = s3
    put(settings, f"{base}/d/1.csv", b"a\n1\n")
    put(settings, f"{base}/d/2.csv", b"a\n2\n")
    source = open_source(f"{base}/d/", settings=settings)
    import boto3

    boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        aws_access_key_id=S3_KEY,
        aws_secret_access_key=S3_SECRET,
        region_name=S3_REGION,
    ).delete_object(Bucket=S3_BUCKET, Key=f"{base.split('/', 3)[3]}/d/2.csv")
    assert read_all(source.inputs[0]) == 1
    with pytest.raises(InvalidInput, match="2.csv: "):
        read_all(source.inputs[1])


def test_converted_files_that_would_share_a_name_keep_their_extension(tmp_path: Path) -> None:
    write(tmp_path / "d" / "a.csv", "k\n1\n")
    with gzip.open(tmp_path / "d" / "a.csv.gz", "wt") as f:
        f.write("k\n2\n")
    write(tmp_path / "d" / "b.csv", "k\n3\n")
    assert [i.name for i in open_source(tmp_path / "d").inputs] == ["a.csv", "a.csv.gz", "b"]


def test_names_are_relative_to_the_folder_given(tmp_path: Path) -> None:
    write(tmp_path / "d" / "x" / "a.csv", "a\n1\n")
    shutil.copytree(tmp_path / "d", tmp_path / "e")
    names = [i.name for i in open_source(tmp_path / "e").inputs]
    assert names == [i.name for i in open_source(tmp_path / "d").inputs] == ["x/a"]
