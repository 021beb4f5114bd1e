"""Data of the datasets benchmark: Parquet files and a CSV, generated deterministically.

Runs in the repository's venv (numpy, pyarrow), called by ``benchmarks/datasets.py``,
which itself stays standard-library only. Every command prints one JSON object
(rows and bytes written) on stdout.

    python _datasets_data.py files DIR --files 1000 [--only 0,100] [--generation 1]
    python _datasets_data.py big PATH --rows N [--changed]
    python _datasets_data.py csv PATH --rows N [--expectations SUITE.json]
    python _datasets_data.py count PATH      # rows of a Parquet file (a check)

The floats are random normals at full precision, so Parquet cannot compress them:
1 MiB on disk is about 1 MiB of data. File ``i`` of generation ``g`` always holds
the same bytes, so the benchmark can restore a changed file by writing it again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

SEED = 20261125
FILE_BYTES = 1024 * 1024  # the target size of each small file
FLOAT_COLUMNS = 8
CATEGORIES = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
ROW_GROUPS = 100  # the one big file: the first row group is the first 1% of the rows
CSV_BATCH = 500_000
CSV_CATEGORIES = (
    ["red", "green", "blue", "yellow", "black"],
    [f"region_{i:02d}" for i in range(12)],
    [f"segment_{chr(97 + i)}" for i in range(20)],
)
CSV_RANGE = (-100.0, 100.0)  # the range expectation on f1: standard normals never leave it


def parquet_table(first_id: int, rows: int, rng: np.random.Generator) -> pa.Table:
    """Rows ``first_id ..`` of the Parquet data: id, 8 random floats, a low-cardinality string."""
    columns: dict[str, pa.Array] = {"id": pa.array(np.arange(first_id, first_id + rows))}
    values = rng.standard_normal((FLOAT_COLUMNS, rows))
    for k in range(FLOAT_COLUMNS):
        columns[f"x{k}"] = pa.array(values[k])
    codes = pa.array(rng.integers(0, len(CATEGORIES), rows, dtype=np.int32))
    columns["category"] = pc.take(pa.array(CATEGORIES), codes)
    return pa.table(columns)


def rows_per_file() -> int:
    """How many rows make a file of about ``FILE_BYTES`` with this pyarrow's defaults."""
    probe_rows = 16_384
    sink = pa.BufferOutputStream()
    pq.write_table(parquet_table(0, probe_rows, np.random.default_rng(SEED)), sink)
    per_row = sink.getvalue().size / probe_rows
    return int(FILE_BYTES / per_row)


def write_files(folder: Path, count: int, only: list[int] | None, generation: int) -> dict:
    """Write files ``part-00000.parquet ..`` (all, or just ``only``) of one generation.

    A file is rewritten in place (same path, new bytes), as a user's script would."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = rows_per_file()
    written = 0
    indexes = only if only is not None else range(count)
    for i in indexes:
        rng = np.random.default_rng([SEED, i, generation])
        path = folder / f"part-{i:05d}.parquet"
        pq.write_table(parquet_table(i * rows, rows, rng), path)
        written += path.stat().st_size
    return {"rows_per_file": rows, "rows": rows * count, "files_written": len(indexes),
            "bytes_written": written}  # fmt: skip


def write_big(path: Path, rows: int, changed: bool) -> dict:
    """One Parquet file of ``rows`` rows in ``ROW_GROUPS`` row groups.

    With ``changed`` the first row group (the first 1% of the rows) holds new values
    and every other row group the same bytes as before."""
    group = -(-rows // ROW_GROUPS)
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = parquet_table(0, 1, np.random.default_rng(0)).schema
    with pq.ParquetWriter(path, schema) as writer:
        for g, start in enumerate(range(0, rows, group)):
            generation = 1 if changed and g == 0 else 0
            rng = np.random.default_rng([SEED, 1_000_000 + g, generation])
            writer.write_table(parquet_table(start, min(group, rows - start), rng), group)
    return {"rows": rows, "row_groups": -(-rows // group), "rows_per_group": group,
            "bytes": path.stat().st_size}  # fmt: skip


def csv_batch(first_id: int, rows: int, rng: np.random.Generator) -> pa.Table:
    """20 columns: id, 10 floats (6 decimals), 5 ints, 3 low-cardinality strings, an ISO time."""
    columns: dict[str, pa.Array] = {"id": pa.array(np.arange(first_id, first_id + rows))}
    floats = np.round(rng.standard_normal((10, rows)), 6)
    for k in range(10):
        columns[f"f{k}"] = pa.array(floats[k])
    ints = rng.integers(0, 1_000_000, (5, rows))
    for k in range(5):
        columns[f"i{k}"] = pa.array(ints[k])
    for k, values in enumerate(CSV_CATEGORIES):
        codes = pa.array(rng.integers(0, len(values), rows, dtype=np.int32))
        columns[f"s{k}"] = pc.take(pa.array(values), codes)
    # One event a second from 2024-01-01, written as 2024-01-01T00:00:00.
    seconds = np.arange(first_id, first_id + rows, dtype=np.int64) + 1_704_067_200
    stamps = pa.array(seconds.astype("datetime64[s]"))
    columns["ts"] = pc.strftime(stamps, format="%Y-%m-%dT%H:%M:%S")
    return pa.table(columns)


def write_csv(path: Path, rows: int) -> dict:
    """The CSV, written in batches so generating it never holds it whole."""
    rng = np.random.default_rng([SEED, 7])
    first = csv_batch(0, min(rows, CSV_BATCH), rng)
    with pacsv.CSVWriter(path, first.schema) as writer:
        writer.write_table(first)
        for start in range(CSV_BATCH, rows, CSV_BATCH):
            writer.write_table(csv_batch(start, min(CSV_BATCH, rows - start), rng))
    return {"rows": rows, "columns": first.num_columns, "bytes": path.stat().st_size}


def expectations() -> list[dict]:
    """The suite the CSV is validated against: every row passes."""
    low, high = CSV_RANGE
    return [
        {"kind": "not_null", "column": "id"},
        {"kind": "not_null", "column": "f0"},
        {"kind": "range", "column": "f1", "min": low, "max": high},
        {"kind": "allowed_values", "column": "s0", "values": CSV_CATEGORIES[0]},
        {"kind": "unique", "columns": ["id"]},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    files = sub.add_parser("files")
    files.add_argument("folder", type=Path)
    files.add_argument("--files", type=int, required=True)
    files.add_argument("--only", help="Comma-separated file indexes to (re)write.")
    files.add_argument("--generation", type=int, default=0)
    big = sub.add_parser("big")
    big.add_argument("path", type=Path)
    big.add_argument("--rows", type=int, required=True)
    big.add_argument("--changed", action="store_true")
    csv = sub.add_parser("csv")
    csv.add_argument("path", type=Path)
    csv.add_argument("--rows", type=int, required=True)
    csv.add_argument("--expectations", type=Path, help="Also write the suite here (JSON).")
    count = sub.add_parser("count")
    count.add_argument("path", type=Path)
    args = parser.parse_args()

    if args.command == "files":
        only = [int(i) for i in args.only.split(",")] if args.only else None
        out = write_files(args.folder, args.files, only, args.generation)
    elif args.command == "big":
        out = write_big(args.path, args.rows, args.changed)
    elif args.command == "csv":
        out = write_csv(args.path, args.rows)
        if args.expectations:
            args.expectations.write_text(json.dumps(expectations(), indent=2))
    else:
        out = {"rows": pq.read_metadata(args.path).num_rows}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
