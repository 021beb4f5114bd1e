"""Where a large Parquet file is cut into blob pieces, so that its next version shares
what did not change.

A Parquet file is its row groups one after the other, then (some writers) its page
indexes and bloom filters, then its footer. Rewriting a file with one row group changed
moves every later row group to a new offset, but their bytes stay the same; so cuts at
row-group starts, found in the footer, give the same pieces for the same row groups
wherever they lie (no rolling hash over the bytes). What follows the last row group,
which lists offsets, is a piece of its own.

Which row-group starts become cuts is decided by each group alone, never by where the
last cut fell (that would shift every later piece when one group changes length): a
group of ``MIN_PIECE`` bytes or more always starts a piece; a smaller one does with a
probability of its size over ``MIN_PIECE``, drawn from a hash of its chunks' sizes
and first bytes. Pieces of small groups then average ``MIN_PIECE``, and the same
groups give the same cuts in any file. A group longer than the blob store's piece
limit is also cut where its column chunks start.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from blake3 import blake3

from shipyard.blobs.pieces import PIECE_MAX

if TYPE_CHECKING:
    import pyarrow.parquet as pq

PIECES_FROM = 64 * 1024 * 1024
"""Files smaller than this are stored whole: what pieces would save is small."""

MIN_PIECE = 4 * 1024 * 1024
"""Row groups smaller than this share pieces (of this size on average): many tiny
pieces cost more in files and lookups than their sharing saves."""


def row_group_cuts(path: str | Path, *, min_piece: int | None = None) -> list[int]:
    """Byte offsets to cut the Parquet file at ``path`` into pieces; [] where its
    footer cannot be read (the file is then stored whole, as before)."""
    import pyarrow as pa  # here: the transfer module that asks is imported by light clients
    import pyarrow.parquet as pq

    min_piece = MIN_PIECE if min_piece is None else min_piece
    try:
        with open(path, "rb") as f:
            return _cuts(f, pq.read_metadata(f), min_piece)
    except (pa.ArrowException, OSError, ValueError):
        return []


def _cuts(f: BinaryIO, meta: pq.FileMetaData, min_piece: int) -> list[int]:
    size = os.fstat(f.fileno()).st_size
    tail = os.pread(f.fileno(), 8, max(0, size - 8))
    if len(tail) < 8 or tail[4:] != b"PAR1":
        return []
    footer = size - 8 - int.from_bytes(tail[:4], "little")
    groups = []
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        columns = [group.column(c) for c in range(group.num_columns)]
        if columns:
            groups.append((min(_chunk_start(c) for c in columns), columns))
    groups.sort(key=lambda found: found[0])
    cuts: list[int] = []
    for g, (start, columns) in enumerate(groups):
        end = groups[g + 1][0] if g + 1 < len(groups) else _chunks_end(columns)
        length = end - start
        if length >= min_piece or _draw(f, columns) * min_piece < length:
            cuts.append(start)
        if length > PIECE_MAX:  # too long for one piece: its columns start pieces too
            cuts += [_chunk_start(c) for c in columns]
    if groups:  # page indexes and bloom filters, which move with every earlier change
        cuts.append(max(_chunks_end(columns) for _, columns in groups))
    cuts.append(footer)
    return sorted({c for c in cuts if 4 < c <= footer})  # 4: after b"PAR1", the first group


def _chunk_start(column: pq.ColumnChunkMetaData) -> int:
    """Where a column chunk's first page (the dictionary, if any) begins."""
    if column.has_dictionary_page and column.dictionary_page_offset:
        return min(column.dictionary_page_offset, column.data_page_offset)
    return int(column.data_page_offset)


def _chunks_end(columns: list[pq.ColumnChunkMetaData]) -> int:
    """Where the last of a row group's column chunks ends."""
    return max(_chunk_start(c) + c.total_compressed_size for c in columns)


def _draw(f: BinaryIO, columns: list[pq.ColumnChunkMetaData]) -> float:
    """A number in [0, 1) fixed by the group's content, not by its place in the file:
    its chunks' sizes and the first bytes of its first few chunks (page headers and
    values; sizes alone are alike in groups of alike columns)."""
    hasher = blake3()
    for column in columns:
        hasher.update(column.total_compressed_size.to_bytes(8, "little"))
    for column in columns[:4]:
        hasher.update(os.pread(f.fileno(), 256, _chunk_start(column)))
    return int.from_bytes(hasher.digest()[:8], "big") / 2**64
