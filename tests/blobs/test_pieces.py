"""Blobs stored in pieces, on every backend (local folder, S3 on moto): one identity
with whole blobs, pieces shared between files, reads joined and verified, damage
detected, and a source that changes while it is stored refused."""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path

import pytest
from blake3 import blake3
from tests.conftest import is_stored

from shipyard.blobs import BlobStore
from shipyard.blobs.pieces import PIECE_MAX, hash_pieces, piece_bounds
from shipyard.errors import IntegrityError, InvalidInput

KiB = 1024


def objects(store: BlobStore) -> set[str]:
    """Every stored object (blobs, pieces, piece lists), temporaries excluded."""
    return {p for p in store.fs.find(store.root) if is_stored(store, p)}


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


class TestPieces:
    """On every backend (the ``store`` fixture)."""

    def test_round_trip(self, store: BlobStore, tmp_path: Path) -> None:
        data = os.urandom(300 * KiB + 5)
        src = write(tmp_path / "src.bin", data)
        ref = store.put_file_in_pieces(src, [100 * KiB + 3, 250 * KiB], max_piece=64 * KiB)
        # One identity whatever the layout: the whole content's digest.
        assert (ref.hash, ref.size) == (blake3(data).hexdigest(), len(data))
        assert store.exists(ref.hash)
        assert store.size(ref.hash) == len(data)
        assert store.local_path(ref.hash) is None  # not one file: readers copy it out
        assert store.read_bytes(ref.hash) == data
        assert b"".join(store.iter_chunks(ref.hash, chunk_size=7 * KiB)) == data
        store.copy_to(ref.hash, tmp_path / "out.bin")
        assert (tmp_path / "out.bin").read_bytes() == data
        rng = random.Random(7)
        with store.open_raw(ref.hash) as f:
            for _ in range(50):  # seeks across piece boundaries, as a Parquet reader does
                start = rng.randrange(len(data) + 10)
                length = rng.randrange(1, 90 * KiB)
                f.seek(start)
                got = f.read(length)
                assert got == data[start : start + length]
                assert f.tell() == start + len(got)
        # 100 KiB + 3 | 150 KiB - 3 | 50 KiB + 5, the first two split at 64 KiB.
        assert len(objects(store)) == 6 + 1
        assert store.put_file(src) == ref  # stored whole as well: the same blob

    def test_unchanged_pieces_are_shared(self, store: BlobStore, tmp_path: Path) -> None:
        parts = [os.urandom(40 * KiB) for _ in range(5)]
        first = write(tmp_path / "v1.bin", b"".join(parts))
        cuts = [40 * KiB * i for i in range(1, 5)]
        v1 = store.put_file_in_pieces(first, cuts)
        before = objects(store)
        # The second part grows: everything after it moves, and the cuts move with it.
        parts[1] = os.urandom(41 * KiB)
        second = write(tmp_path / "v2.bin", b"".join(parts))
        moved = [sum(len(p) for p in parts[:i]) for i in range(1, 5)]
        v2 = store.put_file_in_pieces(second, moved)
        added = objects(store) - before
        assert v2.hash != v1.hash
        assert len(added) == 2, added  # the changed piece and the new piece list
        assert store.read_bytes(v1.hash) == first.read_bytes()
        assert store.read_bytes(v2.hash) == second.read_bytes()
        again = store.put_file_in_pieces(second, moved)
        assert again == v2
        assert objects(store) - before == added
        # Pieces copied before they were found stored leave nothing behind.
        assert [p for p in store.fs.find(store.root) if p.startswith(f"{store.root}/tmp/")] == []

    def test_a_new_piece_among_stored_ones(self, store: BlobStore, tmp_path: Path) -> None:
        parts = [os.urandom(40 * KiB) for _ in range(6)]
        cuts = [40 * KiB * i for i in range(1, 6)]
        v1 = store.put_file_in_pieces(write(tmp_path / "v1.bin", b"".join(parts)), cuts)
        before = objects(store)
        for changed in (3, 5):  # after stored pieces; and the last one
            parts[changed] = os.urandom(40 * KiB)
        second = write(tmp_path / "v2.bin", b"".join(parts))
        v2 = store.put_file_in_pieces(second, cuts)
        assert len(objects(store) - before) == 3  # two pieces, one list
        assert store.read_bytes(v2.hash) == second.read_bytes()
        assert store.read_bytes(v1.hash) == (tmp_path / "v1.bin").read_bytes()

    def test_a_file_the_kernel_cannot_copy_from(
        self, store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # copy_file_range refuses some pairs of files (another file system on older
        # kernels, some special ones): the copy goes on by reads and writes.
        def refuse(*_: object) -> int:
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(os, "copy_file_range", refuse)
        data = os.urandom(200 * KiB)
        ref = store.put_file_in_pieces(write(tmp_path / "src", data), [64 * KiB, 150 * KiB])
        assert ref.hash == blake3(data).hexdigest()
        assert store.read_bytes(ref.hash) == data

    def test_empty_file(self, store: BlobStore, tmp_path: Path) -> None:
        ref = store.put_file_in_pieces(write(tmp_path / "empty", b""), [0, 5])
        assert ref.size == 0
        assert store.read_bytes(ref.hash) == b""

    @pytest.mark.parametrize("damage", ["flip", "truncate", "remove"])
    def test_a_damaged_piece_is_detected(
        self, store: BlobStore, tmp_path: Path, damage: str
    ) -> None:
        data = os.urandom(96 * KiB)
        ref = store.put_file_in_pieces(write(tmp_path / "src", data), [32 * KiB, 64 * KiB])
        middle = store._path(blake3(data[32 * KiB : 64 * KiB]).hexdigest())
        piece = store.fs.cat_file(middle)
        if damage == "remove":
            store.fs.rm(middle)
        else:
            bad = piece[:-1] if damage == "truncate" else bytes([piece[0] ^ 1]) + piece[1:]
            store.fs.pipe_file(middle, bad)
        with pytest.raises(IntegrityError):
            store.read_bytes(ref.hash)
        with pytest.raises(IntegrityError):
            store.copy_to(ref.hash, tmp_path / "out" / "dest.bin")
        assert not (tmp_path / "out" / "dest.bin").exists()
        # Storing the file again writes a piece that is missing or of the wrong size; a
        # piece of the right size but other bytes is left as it is (its digest names it).
        assert store.put_file_in_pieces(tmp_path / "src", [32 * KiB, 64 * KiB]) == ref
        if damage == "flip":
            with pytest.raises(IntegrityError):
                store.read_bytes(ref.hash)
        else:
            assert store.read_bytes(ref.hash) == data

    @pytest.mark.parametrize(
        "listed",
        [
            b"not json",
            b'{"size": 10, "pieces": [["' + b"0" * 64 + b'", 9]]}',
            b'{"size": 9, "pieces": [["../../../etc/passwd", 9]]}',
            b'{"size": 0, "pieces": [["' + b"0" * 64 + b'", 0]]}',
        ],
    )
    def test_a_damaged_piece_list_is_detected(
        self, store: BlobStore, tmp_path: Path, listed: bytes
    ) -> None:
        ref = store.put_file_in_pieces(write(tmp_path / "src", os.urandom(9)), [4])
        store.fs.pipe_file(store._piece_list_path(ref.hash), listed)
        with pytest.raises(IntegrityError):
            store.read_bytes(ref.hash)
        with pytest.raises(IntegrityError):
            store.size(ref.hash)
        # Storing the file again repairs the list.
        assert store.put_file_in_pieces(tmp_path / "src", [4]) == ref
        assert store.read_bytes(ref.hash) == (tmp_path / "src").read_bytes()

    @pytest.mark.parametrize("change", ["shrank", "grew"])
    def test_a_file_that_changes_while_stored_is_refused(
        self, store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
    ) -> None:
        data = os.urandom(64 * KiB)
        src = write(tmp_path / "src", data)
        real = os.path.getsize
        seen = len(data) + (16 if change == "shrank" else -16)  # its size when first looked at
        monkeypatch.setattr(os.path, "getsize", lambda p: seen if p == src else real(p))
        with pytest.raises(InvalidInput, match=change):
            store.put_file_in_pieces(src, [16 * KiB, 48 * KiB])
        monkeypatch.undo()
        assert not store.exists(blake3(data).hexdigest())
        assert not store.exists(blake3(data[:seen]).hexdigest())
        assert list(store.fs.find(f"{store.root}/pieces")) == []

    def test_a_file_that_shrinks_after_stored_pieces_is_refused(
        self, store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # Past a piece found stored, pieces are read rather than copied: a file that
        # ends early there is refused too, and no piece list is written.
        data = os.urandom(96 * KiB)
        src = write(tmp_path / "src", data)
        cuts = [32 * KiB, 64 * KiB]
        store.put_file_in_pieces(src, cuts)
        lists = list(store.fs.find(f"{store.root}/pieces"))
        real = os.path.getsize
        monkeypatch.setattr(os.path, "getsize", lambda p: len(data) + 16 if p == src else real(p))
        with pytest.raises(InvalidInput, match="shrank"):
            store.put_file_in_pieces(src, cuts)
        monkeypatch.undo()
        assert list(store.fs.find(f"{store.root}/pieces")) == lists


class TestJoinPieces:
    """A blob made of pieces sent one by one (a remote client's large file), on every
    backend: the joined bytes must hash to the blob's digest."""

    def test_pieces_join_into_the_blob(self, store: BlobStore, tmp_path: Path) -> None:
        data = os.urandom(100 * KiB + 7)
        cuts = [30 * KiB, 31 * KiB + 5, 90 * KiB]
        pieces = [(store.put_bytes(data[b.start : b.stop]).hash, len(b))
                  for b in piece_bounds(cuts, len(data))]  # fmt: skip
        # The same pieces a local file gives when hashed on the client's side.
        whole, hashed = hash_pieces(write(tmp_path / "src", data), piece_bounds(cuts, len(data)))
        assert (whole, hashed) == (blake3(data).hexdigest(), pieces)
        ref = store.join_pieces(whole, pieces)
        assert (ref.hash, ref.size) == (whole, len(data))
        assert store.read_bytes(whole) == data
        assert store._pieces(whole) == pieces
        # Joined again, or once the blob is stored whole as well: checked, nothing new.
        before = objects(store)
        assert store.join_pieces(whole, pieces) == ref
        assert store.put_file(tmp_path / "src") == ref
        assert store.join_pieces(whole, pieces) == ref
        assert objects(store) == before | {store._path(whole)}

    def test_pieces_of_another_blob_are_refused(self, store: BlobStore) -> None:
        data = os.urandom(40 * KiB)
        pieces = [(store.put_bytes(data[:10 * KiB]).hash, 10 * KiB),
                  (store.put_bytes(data[10 * KiB:]).hash, 30 * KiB)]  # fmt: skip
        other = store.put_bytes(b"a blob someone else stored").hash
        before = objects(store)
        for digest, listed in [
            (other, pieces),  # claiming another blob with one's own pieces
            (blake3(data).hexdigest(), pieces[::-1]),  # the right pieces, out of order
        ]:
            with pytest.raises(InvalidInput, match="make blob"):
                store.join_pieces(digest, listed)
        assert objects(store) == before

    @pytest.mark.parametrize(
        "listed",
        [
            [],
            [("ab" * 32, 5)],  # a piece that is not stored
            [("size", 10)],  # not a hash
            [("ab" * 32, PIECE_MAX + 1)],  # longer than any piece the store cuts
        ],
    )
    def test_pieces_not_stored_are_refused(
        self, store: BlobStore, listed: list[tuple[str, int]]
    ) -> None:
        stored = store.put_bytes(b"x" * 100)
        before = objects(store)
        cases = [listed, [(stored.hash, 99)], [(stored.hash, 0)]]  # and wrong sizes
        for pieces in cases:
            with pytest.raises(InvalidInput):
                store.join_pieces(blake3(b"x" * 100).hexdigest(), pieces)
        assert objects(store) == before

    def test_a_blob_stored_in_pieces_is_not_a_piece(self, store: BlobStore, tmp_path: Path) -> None:
        # Pieces are whole blobs: a blob that is itself a piece list is refused (its
        # pieces, listed instead, are fine).
        data = os.urandom(40 * KiB)
        pieced = store.put_file_in_pieces(write(tmp_path / "src", data), [20 * KiB])
        with pytest.raises(InvalidInput, match="listed sizes"):
            store.join_pieces(pieced.hash, [(pieced.hash, len(data))])
        halves = [(blake3(data[:20 * KiB]).hexdigest(), 20 * KiB),
                  (blake3(data[20 * KiB:]).hexdigest(), 20 * KiB)]  # fmt: skip
        assert store.join_pieces(pieced.hash, halves) == pieced

    def test_a_damaged_piece_is_named(self, store: BlobStore) -> None:
        data = os.urandom(20 * KiB)
        first, second = store.put_bytes(data[: 8 * KiB]), store.put_bytes(data[8 * KiB :])
        store.fs.pipe_file(store._path(second.hash), b"\1" * second.size)  # same size
        with pytest.raises(IntegrityError, match=second.hash):
            store.join_pieces(blake3(data).hexdigest(), [(first.hash, 8 * KiB),
                                                         (second.hash, second.size)])  # fmt: skip
        assert not store.exists(blake3(data).hexdigest())


@pytest.mark.parametrize("seed", range(20))
def test_any_cuts_give_pieces_that_join_into_the_file(seed: int) -> None:
    rng = random.Random(seed)
    size = rng.randrange(0, 5000)
    cuts = [rng.randrange(-50, size + 50) for _ in range(rng.randrange(0, 30))]
    limit = rng.randrange(1, 700)
    bounds = piece_bounds(cuts, size, limit)
    assert [b.start for b in bounds] == [0, *[b.stop for b in bounds[:-1]]]
    assert (bounds[-1].stop if bounds else 0) == size
    assert all(0 < len(b) <= limit for b in bounds)
    assert {c for c in cuts if 0 < c < size} <= {b.start for b in bounds}


def test_piece_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        piece_bounds([], 10, 0)
