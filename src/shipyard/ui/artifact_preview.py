"""Previews of run artifacts for the run page: images, text and JSON, CSV and Parquet heads.

A preview never loads a big file whole: text is cut at :data:`TEXT_BYTES`, a CSV
head is parsed from its first :data:`CSV_BYTES`, and a Parquet head reads the
footer and the first rows of the first row group. Files small enough to be read
whole are read verified (``BlobStore.read_bytes``); only the first bytes of
larger ones are read, from the stored file (a preview, not a download).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from shipyard.blobs import BlobStore

TEXT_BYTES = 256 * 1024
CSV_BYTES = 1024 * 1024
HEAD_ROWS = 50
MAX_COLUMNS = 50
MAX_CELL = 200
SNIFF_BYTES = 4096

IMAGES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"})
DELIMITERS = {".csv": ",", ".tsv": "\t"}
PARQUET = frozenset({".parquet", ".pq"})
JSON = frozenset({".json"})

Kind = Literal["image", "text", "json", "table", "none"]


@dataclass
class Preview:
    """What the page shows for one file."""

    kind: Kind
    text: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""


def suffix(name: str) -> str:
    """The lowercased extension of a file name ('' for none)."""
    base = name.rsplit("/", 1)[-1]
    return "." + base.rsplit(".", 1)[-1].lower() if "." in base.strip(".") else ""


def preview(blobs: BlobStore, name: str, digest: str, size: int) -> Preview:
    """The preview of the file ``name`` stored as blob ``digest`` of ``size`` bytes."""
    ext = suffix(name)
    if ext in IMAGES:
        return Preview("image")
    try:
        if ext in PARQUET:
            return _parquet(blobs, digest)
        if ext in DELIMITERS:
            return _csv(blobs, digest, size, DELIMITERS[ext])
        if ext in JSON:
            return _json(blobs, digest, size)
        return _text(blobs, digest, size)
    except Exception as exc:  # a file that is not what its name says: say so, do not fail
        return Preview("none", note=f"No preview: the file could not be read ({_short(exc)}).")


def _head(blobs: BlobStore, digest: str, size: int, limit: int) -> tuple[bytes, bool]:
    """The first ``limit`` bytes of the blob, and whether the file goes on after them."""
    if size <= limit:
        return blobs.read_bytes(digest), False
    with blobs.open_raw(digest) as f:
        return f.read(limit), True


def _cut_note(shown: int, size: int) -> str:
    return f"Showing the first {shown:,} of {size:,} bytes; download the file for all of it."


def _text(blobs: BlobStore, digest: str, size: int) -> Preview:
    data, cut = _head(blobs, digest, size, TEXT_BYTES)
    sniff = data[:SNIFF_BYTES]
    if b"\0" in sniff or not _is_utf8(sniff):
        return Preview("none", note="No preview for binary files; download it instead.")
    text = data.decode("utf-8", errors="replace")
    return Preview("text", text=text, note=_cut_note(len(data), size) if cut else "")


def _is_utf8(data: bytes) -> bool:
    # A multi-byte character may be split at the end of the sniffed bytes.
    for trim in range(4):
        try:
            data[: len(data) - trim].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


def _json(blobs: BlobStore, digest: str, size: int) -> Preview:
    if size > TEXT_BYTES:
        shown = _text(blobs, digest, size)
        shown.note = "Too large to pretty-print. " + shown.note
        return shown
    data = blobs.read_bytes(digest)
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        shown = _text(blobs, digest, size)
        shown.note = f"Not valid JSON ({_short(exc)}); shown as text."
        return shown
    pretty = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    return Preview("json", text=pretty.decode())


def _csv(blobs: BlobStore, digest: str, size: int, delimiter: str) -> Preview:
    import pyarrow.csv as pacsv

    data, cut = _head(blobs, digest, size, CSV_BYTES)
    if cut:  # drop the last, partial line
        data = data[: data.rfind(b"\n") + 1]
    table = pacsv.read_csv(
        io.BytesIO(data),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
    )
    shown = min(HEAD_ROWS, table.num_rows)
    total = "" if cut else f" of {table.num_rows:,}"
    preview = _table(table.slice(0, shown), table.num_columns)
    preview.note = f"First {shown:,}{total} rows." + preview.note
    return preview


def _parquet(blobs: BlobStore, digest: str) -> Preview:
    import pyarrow as pa
    import pyarrow.parquet as pq

    with blobs.open_raw(digest) as f:
        parquet = pq.ParquetFile(f)
        names = parquet.schema_arrow.names
        total = parquet.metadata.num_rows
        batches = parquet.iter_batches(batch_size=HEAD_ROWS, columns=names[:MAX_COLUMNS])
        batch = next(batches, None)
        if batch is None:
            table = pa.table({n: pa.array([], pa.string()) for n in names[:MAX_COLUMNS]})
        else:
            table = pa.Table.from_batches([batch])
    preview = _table(table.slice(0, HEAD_ROWS), len(names))
    preview.note = f"First {table.num_rows:,} of {total:,} rows." + preview.note
    return preview


def _table(table: Any, total_columns: int) -> Preview:
    """Rows of a pyarrow table as strings, at most :data:`MAX_COLUMNS` columns."""
    table = table.select(list(range(min(MAX_COLUMNS, table.num_columns))))
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    rows = [[_cell(col[r]) for col in columns] for r in range(table.num_rows)]
    note = ""
    if total_columns > MAX_COLUMNS:
        note = f" Only the first {MAX_COLUMNS} of {total_columns} columns are shown."
    return Preview("table", columns=list(table.column_names), rows=rows, note=note)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= MAX_CELL else text[:MAX_CELL] + "…"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:200]
