"""Staging converted rows as Parquet parts, with reading and writing off the main thread.

Ingest has three stages per batch: parse the source (pyarrow, GIL released), check and
profile it (mostly numpy and pyarrow kernels), encode and compress it to Parquet
(pyarrow, GIL released). Run one after the other they leave a core idle; here the first
and the last run in their own threads, a couple of batches ahead and behind.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

PART_ROWS = 4 * 1024 * 1024
"""Rows per converted Parquet part: big enough for few files, small enough to diff."""
DEPTH = 2
"""Batches in flight between stages: enough to overlap them, little memory."""
ROW_GROUP_BYTES = 128 << 20
"""Arrow bytes gathered into one Parquet row group (or fewer, at a part's end).

A source batch (one CSV block, ~90k rows of a 20-column table) written as its own row
group makes every row group try dictionary encoding from scratch: Parquet falls back
to plain only once a column's dictionary page grows past 1 MiB, which a small group
never reaches, so every value is hashed. Groups of this size reach it early, as
pyarrow's and pandas' own defaults (row groups of 1Mi rows) do: encoding 2M rows took
1.2 s instead of 2.0 s here. It costs this much memory, once."""
JUDGED_ROWS = 10_000
"""Rows of the first batch whose values decide which columns are dictionary-encoded;
a smaller batch goes by type."""

_DONE = object()


def read_ahead(batches: Iterator[pa.RecordBatch], depth: int = DEPTH) -> Iterator[pa.RecordBatch]:
    """``batches``, produced by a thread that stays up to ``depth`` batches ahead.

    An error of the producer is raised here, at the point of the stream where it
    happened; closing this generator early stops the producer (and closes its stream).
    """
    slots: queue.Queue[Any] = queue.Queue(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                if stop.is_set():
                    break
                slots.put(batch)
            slots.put(_DONE)
        except BaseException as exc:  # handed to the consumer
            slots.put(exc)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="shipyard-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting for room
            try:
                slots.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


class PartWriter:
    """Rows into staged Parquet parts of at most PART_ROWS rows, encoded by a thread.

    ``write`` returns once the batch is queued; ``close`` waits for the last part and
    raises any error the writing thread met.
    """

    def __init__(self, folder: Path, prefix: str, schema: pa.Schema) -> None:
        self.folder = folder
        self.prefix = prefix
        self.schema = schema
        self.parts: list[tuple[str, Path, int]] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows = 0
        self._group: list[pa.RecordBatch] = []  # of the current part, not yet written
        self._group_bytes = 0
        self._dictionary: list[str] | None = None  # decided by the first batch
        self._queue: queue.Queue[Any] = queue.Queue(DEPTH)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        """Queue ``batch`` for writing."""
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="shipyard-part-writer", daemon=True
            )
            self._thread.start()
        self._queue.put(batch)

    def close(self) -> None:
        """Finish every queued batch and the last part."""
        if self._thread is not None:
            self._queue.put(_DONE)
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        done = False
        try:
            while (batch := self._queue.get()) is not _DONE:
                if self._error is None:
                    self._write_now(batch)
            done = True
            self._finish_part()  # the last row group is written here
        except BaseException as exc:
            self._error = exc
            while not done:  # drain so the producer never blocks
                done = self._queue.get() is _DONE
            self._finish_part(quietly=True)

    def _write_now(self, batch: pa.RecordBatch) -> None:
        while batch.num_rows:
            if self._writer is None:
                index = len(self.parts)
                name = f"{self.prefix}-{index:05d}.parquet"
                path = self.folder / f"{index:05d}-{abs(hash(self.prefix))}.parquet"
                if self._dictionary is None:
                    self._dictionary = dictionary_columns(batch)
                self._writer = pq.ParquetWriter(path, self.schema, use_dictionary=self._dictionary)
                self.parts.append((name, path, 0))
                self._rows = 0
            room = PART_ROWS - self._rows
            head, batch = batch.slice(0, room), batch.slice(room)
            self._group.append(head)
            self._group_bytes += head.nbytes
            self._rows += head.num_rows
            name, path, _ = self.parts[-1]
            self.parts[-1] = (name, path, self._rows)
            if self._group_bytes >= ROW_GROUP_BYTES:
                self._write_group()
            if self._rows >= PART_ROWS:
                self._finish_part()

    def _write_group(self) -> None:
        """Write the gathered batches as one row group of the current part."""
        if self._writer is not None and self._group:
            group = pa.Table.from_batches(self._group, schema=self.schema)
            self._writer.write_table(group, row_group_size=max(group.num_rows, 1))
        self._group, self._group_bytes = [], 0

    def _finish_part(self, *, quietly: bool = False) -> None:
        if self._writer is not None:
            try:
                self._write_group()
            except BaseException:
                if not quietly:
                    raise
            writer, self._writer = self._writer, None
            try:
                writer.close()
            except BaseException:
                if not quietly:
                    raise
        self._group, self._group_bytes = [], 0


def dictionary_columns(batch: pa.RecordBatch) -> list[str]:
    """The columns of ``batch`` worth dictionary-encoding in Parquet.

    Encoding a column whose values hardly repeat (ids, timestamps, measurements) is
    work thrown away: Parquet hashes every value until the dictionary page passes
    1 MiB, then falls back to plain. So the columns kept are those with at most half
    their values distinct in the batch's first JUDGED_ROWS rows; a smaller batch keeps
    every column but floating point ones, which almost never repeat.
    """
    if batch.num_rows < JUDGED_ROWS:
        return [f.name for f in batch.schema if not pa.types.is_floating(f.type)]
    sample = batch.slice(0, JUDGED_ROWS)
    keep = []
    for field, column in zip(sample.schema, sample.columns, strict=True):
        try:
            distinct = pc.count_distinct(column, mode="all").as_py()
        except pa.ArrowNotImplementedError:  # nested types: let Parquet try
            keep.append(field.name)
            continue
        if distinct * 2 <= sample.num_rows:
            keep.append(field.name)
    return keep


def empty_part(folder: Path, prefix: str, schema: pa.Schema) -> tuple[str, Path, int]:
    """A part with no rows (a source with none still makes a readable version)."""
    path = folder / f"empty-{abs(hash(prefix))}.parquet"
    pq.write_table(schema.empty_table(), path)
    return (f"{prefix}-00000.parquet", path, 0)
