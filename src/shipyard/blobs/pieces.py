"""Blobs stored in pieces: a large file that changes a little between versions shares
its unchanged pieces with the versions before it.

A blob keeps one identity, the BLAKE3 digest of its whole content, however it is
stored. Stored in pieces, each piece is an ordinary blob under its own digest, and a
piece list (``{"size": N, "pieces": [[digest, size], ...]}``) under the whole digest
says how they join. Where the pieces are cut is the caller's business (the dataset
layer cuts Parquet files where their row groups start); cutting changes what is shared,
never what is read back. Reads join the pieces and are verified against the whole
digest like any other blob.
"""

from __future__ import annotations

import io
import os
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate
from typing import BinaryIO

import orjson
from blake3 import blake3

from shipyard.errors import IntegrityError, InvalidInput, NotFound

PIECE_MAX = 64 * 1024 * 1024
"""The largest piece: longer stretches between cuts are split at fixed offsets (and
one piece is held in memory while it is stored)."""


def piece_bounds(cuts: Iterable[int], size: int, max_piece: int = PIECE_MAX) -> list[range]:
    """The byte ranges of the pieces of a ``size``-byte file cut at ``cuts``.

    Cuts outside the file or repeated are ignored, so any list of cuts gives pieces
    that join into exactly the file; none is empty, none longer than ``max_piece``."""
    if max_piece <= 0:
        raise ValueError("max_piece must be positive")
    points = sorted({c for c in cuts if 0 < c < size})
    bounds: list[range] = []
    start = 0
    for end in [*points, size]:
        while end - start > max_piece:
            bounds.append(range(start, start + max_piece))
            start += max_piece
        if end > start:
            bounds.append(range(start, end))
            start = end
    return bounds


def hash_pieces(
    path: str | os.PathLike[str], bounds: Sequence[range]
) -> tuple[str, list[tuple[str, int]]]:
    """The BLAKE3 digest of a local file and ``(digest, size)`` of each of its pieces
    ``bounds`` (from :func:`piece_bounds`), reading it once, a piece at a time.
    InvalidInput when the file ends before its last piece."""
    whole = blake3(max_threads=blake3.AUTO)
    pieces: list[tuple[str, int]] = []
    with open(path, "rb", buffering=0) as f:
        for bound in bounds:
            data = os.pread(f.fileno(), len(bound), bound.start)
            if len(data) != len(bound):
                raise InvalidInput(f"{os.fspath(path)} shrank while it was being read")
            whole.update(data)
            pieces.append((blake3(data, max_threads=blake3.AUTO).hexdigest(), len(data)))
    return whole.hexdigest(), pieces


def encode_piece_list(size: int, pieces: Sequence[tuple[str, int]]) -> bytes:
    """The stored form of a piece list."""
    return orjson.dumps({"size": size, "pieces": [[digest, n] for digest, n in pieces]})


def decode_piece_list(
    data: bytes, digest: str, check_hash: Callable[[object], str]
) -> list[tuple[str, int]]:
    """The pieces of blob ``digest`` from their stored list; IntegrityError when the list
    is damaged (its piece digests become storage paths, so each one is checked)."""
    try:
        value = orjson.loads(data)
        pieces = [(check_hash(d), int(n)) for d, n in value["pieces"]]
        size = int(value["size"])
    except Exception:
        raise IntegrityError(f"blob {digest} is corrupt: its piece list is unreadable") from None
    if any(n <= 0 for _, n in pieces) or sum(n for _, n in pieces) != size:
        raise IntegrityError(f"blob {digest} is corrupt: its pieces do not add up")
    return pieces


class PiecesReader(io.RawIOBase):
    """A seekable, read-only file over pieces opened one at a time (unverified, like
    any raw blob file: ``BlobStore.iter_chunks`` verifies the whole)."""

    def __init__(
        self, digest: str, pieces: Sequence[tuple[str, int]], open_piece: Callable[[str], BinaryIO]
    ) -> None:
        super().__init__()
        self._digest = digest
        self._pieces = list(pieces)
        self._starts = [0, *accumulate(n for _, n in self._pieces)]
        self._open_piece = open_piece
        self._pos = 0
        self._index = -1
        self._file: BinaryIO | None = None

    @property
    def size(self) -> int:
        return self._starts[-1]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._pos >= self.size or not len(buffer):
            return 0
        index = bisect_right(self._starts, self._pos) - 1
        if index != self._index:
            self._close_piece()
            try:
                self._file = self._open_piece(self._pieces[index][0])
            except NotFound:
                missing = f"blob {self._digest} is corrupt: a piece is missing"
                raise IntegrityError(missing) from None
            self._index = index
        assert self._file is not None
        within = self._pos - self._starts[index]
        want = min(len(buffer), self._pieces[index][1] - within)
        self._file.seek(within)
        got = self._file.readinto(memoryview(buffer)[:want])  # type: ignore[attr-defined]
        if not got:
            raise IntegrityError(f"blob {self._digest} is corrupt: a piece is shorter than listed")
        self._pos += got
        return int(got)

    def close(self) -> None:
        self._close_piece()
        super().close()

    def _close_piece(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._index = -1
