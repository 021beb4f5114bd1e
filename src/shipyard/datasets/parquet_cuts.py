"""Where a large Parquet file is cut into blob pieces, so that its next version shares
what did not change.

A Parquet file is its row groups one after the other, then its footer. Rewriting a
file with one row group changed moves every later row group to a new offset, but their
bytes stay the same; so cuts at row-group starts, found in the footer, give the same
pieces for the same row groups wherever they lie (no rolling hash over the bytes).
The footer, which lists every offset, is a piece of its own. Row groups smaller than
``MIN_PIECE`` share a piece with the ones after them, and one larger than the blob
store's piece limit is also cut where its column chunks start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.blobs.pieces import PIECE_MAX

if TYPE_CHECKING:
    import pyarrow.parquet as pq

PIECES_FROM = 64 * 1024 * 1024
"""Files smaller than this are stored whole: what pieces would save is small."""

MIN_PIECE = 4 * 1024 * 1024
"""Cuts closer together than this are skipped: many tiny pieces cost more in files and
lookups than their sharing saves."""


def row_group_cuts(path: str | Path, *, min_piece: int | None = None) -> list[int]:
    """Byte offsets to cut the Parquet file at ``path`` into pieces; [] where its
    footer cannot be read (the file is then stored whole, as before)."""
    import pyarrow as pa  # here: the transfer module that asks is imported by light clients
    import pyarrow.parquet as pq

    try:
        meta = pq.read_metadata(path)
        size = Path(path).stat().st_size
    except (pa.ArrowException, OSError, ValueError):
        return []
    footer = size - 8 - meta.serialized_size  # footer, its length, then b"PAR1"
    groups: list[list[int]] = []
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        chunks = sorted(_chunk_start(group.column(c)) for c in range(group.num_columns))
        if chunks:
            groups.append(chunks)
    groups.sort()
    starts: list[int] = []
    for g, chunks in enumerate(groups):
        end = groups[g + 1][0] if g + 1 < len(groups) else footer
        # A group too long for one piece is cut where its column chunks start too.
        starts += chunks if end - chunks[0] > PIECE_MAX else chunks[:1]
    min_piece = MIN_PIECE if min_piece is None else min_piece
    cuts: list[int] = []
    last = 0
    for start in sorted(s for s in starts if 0 < s < footer):
        if start - last >= min_piece:
            cuts.append(start)
            last = start
    return [*cuts, footer] if 0 < footer < size else cuts


def _chunk_start(column: pq.ColumnChunkMetaData) -> int:
    """Where a column chunk's first page (the dictionary, if any) begins."""
    if column.has_dictionary_page and column.dictionary_page_offset:
        return min(column.dictionary_page_offset, column.data_page_offset)
    return int(column.data_page_offset)
