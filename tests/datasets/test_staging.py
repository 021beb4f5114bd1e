"""Staged Parquet parts: rows kept in order across parts, gathered into large row
groups, dictionary encoding tried only where values may repeat."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shipyard.datasets import staging
from shipyard.datasets.staging import PartWriter

SCHEMA = pa.schema([("id", pa.int64()), ("score", pa.float64()), ("city", pa.string())])


def _batch(first: int, rows: int) -> pa.RecordBatch:
    ids = list(range(first, first + rows))
    return pa.record_batch([ids, [i / 7 for i in ids], [f"c{i % 5}" for i in ids]], schema=SCHEMA)


def _write(folder: Path, batches: list[pa.RecordBatch]) -> list[tuple[str, Path, int]]:
    writer = PartWriter(folder, "data", SCHEMA)
    for batch in batches:
        writer.write(batch)
    writer.close()
    return writer.parts


def _row_groups(path: Path) -> list[int]:
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]


def test_batches_gather_into_one_row_group(tmp_path: Path) -> None:
    parts = _write(tmp_path, [_batch(i * 1000, 1000) for i in range(20)])
    assert [(name, rows) for name, _, rows in parts] == [("data-00000.parquet", 20_000)]
    meta = pq.ParquetFile(parts[0][1]).metadata
    assert meta.num_row_groups == 1 and meta.row_group(0).num_rows == 20_000
    encodings = {
        meta.schema.column(i).name: meta.row_group(0).column(i).encodings for i in range(3)
    }
    assert "RLE_DICTIONARY" in encodings["city"] and "RLE_DICTIONARY" in encodings["id"]
    assert "RLE_DICTIONARY" not in encodings["score"]
    table = pq.read_table(parts[0][1])
    assert table.column("id").to_pylist() == list(range(20_000))


def _encodings(path: Path) -> dict[str, tuple[str, ...]]:
    meta = pq.ParquetFile(path).metadata
    group = meta.row_group(0)
    return {meta.schema.column(i).name: group.column(i).encodings for i in range(group.num_columns)}


def test_a_large_first_batch_picks_the_columns_to_dictionary_encode(tmp_path: Path) -> None:
    rows = staging.JUDGED_ROWS * 2
    ids = list(range(rows))
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("bucket", pa.int64()),
            ("price", pa.float64()),
            ("score", pa.float64()),
            ("city", pa.string()),
            ("code", pa.string()),
        ]
    )
    batch = pa.record_batch(
        [
            ids,
            [i % 7 for i in ids],
            [float(i % 3) for i in ids],
            [i / 7 for i in ids],
            [f"c{i % 5}" for i in ids],
            [f"k{i}" for i in ids],
        ],
        schema=schema,
    )
    writer = PartWriter(tmp_path, "data", schema)
    writer.write(batch)
    writer.close()
    encodings = _encodings(writer.parts[0][1])
    # Values that repeat are dictionary-encoded whatever their type; unique ones are not.
    for repeating in ("bucket", "price", "city"):
        assert "RLE_DICTIONARY" in encodings[repeating], repeating
    for unique in ("id", "score", "code"):
        assert "RLE_DICTIONARY" not in encodings[unique], unique
    assert pq.read_table(writer.parts[0][1]).equals(pa.Table.from_batches([batch]))


def test_row_groups_and_parts_split_where_their_limits_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staging, "PART_ROWS", 7_000)
    monkeypatch.setattr(staging, "ROW_GROUP_BYTES", _batch(0, 2_000).nbytes)
    parts = _write(tmp_path, [_batch(i * 1000, 1000) for i in range(20)])
    assert [rows for _, _, rows in parts] == [7_000, 7_000, 6_000]
    groups = [_row_groups(path) for _, path, _ in parts]
    assert groups == [[2_000, 2_000, 2_000, 1_000]] * 2 + [[2_000, 2_000, 2_000]]
    ids = pa.concat_tables([pq.read_table(path) for _, path, _ in parts]).column("id")
    assert ids.to_pylist() == list(range(20_000))


def test_a_write_error_at_the_last_group_is_raised_not_hung(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: pq.ParquetWriter, table: pa.Table, row_group_size: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq.ParquetWriter, "write_table", refuse)
    writer = PartWriter(tmp_path, "data", SCHEMA)
    writer.write(_batch(0, 100))
    with pytest.raises(OSError, match="No space left"):
        writer.close()
