"""Content-addressed blobs: identical content is stored once, reads are verified.

Blobs are laid out as ``<root>/<h[:2]>/<h>`` where ``h`` is the BLAKE3 hex digest
(a local store made before the ``layout`` file, and every S3 store, as
``<root>/<h[:2]>/<h[2:4]>/<h>``); only a checked digest ever becomes part of a storage
path. A large file may instead be stored in pieces (see :mod:`shipyard.blobs.pieces`):
its pieces are blobs of their own and ``<root>/pieces/`` + the same layout lists them.
Writes
stream into a temporary object while hashing and are moved into place at the
end, so a reader never sees a partial blob and concurrent writers of the same
content both succeed (the last move wins with identical bytes).
"""

from __future__ import annotations

import errno
import io
import itertools
import mmap
import os
import re
import shutil
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import fsspec
from blake3 import blake3

from shipyard.blobs.pieces import (
    PIECE_MAX,
    PiecesReader,
    decode_piece_list,
    encode_piece_list,
    piece_bounds,
)
from shipyard.config import Settings
from shipyard.errors import IntegrityError, InvalidInput, NotFound, PayloadTooLarge
from shipyard.hashing import hash_file

CHUNK = 4 * 1024 * 1024
"""Read and write unit: large enough for throughput, small enough for flat memory."""

JOIN_READ = 16 * 1024 * 1024
"""Bytes per read when a join checks its pieces (a GET each from S3): joining 1 GB of
10 MB pieces on moto's S3 took 1.98-2.10 s in reads of 16 MiB, 2.65-2.73 s in 4 MiB."""
SMALL_REMOTE = 5 * 1024 * 1024
"""A blob of at most this many bytes goes into a remote store by one PUT of its checked
bytes (S3's smallest multipart part: a larger one is uploaded in parts anyway)."""

_HASH = re.compile("[0-9a-f]{64}")  # fullmatch: a trailing newline is refused too

LAYOUT_FILE = "layout"
"""In a local store's root: how many levels of folders its blobs lie under ("1")."""
FLAT = "1"
"""One level (``<h[:2]>/<h>``), what a new local store gets. Two levels gave nearly
every blob of a store of thousands its own folder: storing a folder of 1,000 files
made ~1,250 folders against 256, and ext4 spent 0.4 s of CPU creating them (a first
version of such a folder in process: 2.86 -> 2.53 s here). Git and DVC use one level
too; ext4's hashed directories keep a folder of tens of thousands fast."""


@dataclass(frozen=True)
class BlobRef:
    """A stored blob: its BLAKE3 hex digest and its size in bytes."""

    hash: str
    size: int


@dataclass(frozen=True)
class StagedBlob:
    """A file copied into a local store's temporary folder and hashed, not stored yet
    (:meth:`BlobStore.stage_file`): stored by :meth:`BlobStore.install_staged`, or
    dropped by :meth:`BlobStore.discard_staged` when what it was for fails."""

    tmp: str
    ref: BlobRef


def check_hash(value: object) -> str:
    """Refuse anything that is not a 64-char lowercase hex digest (it becomes a path)."""
    if not isinstance(value, str) or _HASH.fullmatch(value) is None:
        raise InvalidInput(f"not a blob hash: {str(value)[:80]!r}")
    return value


class BlobWriter:
    """One blob being written: ``write`` chunks, then ``commit`` or ``abort``.

    Not thread-safe; one writer per upload. Callers that feed it from an event
    loop run each ``write`` in a worker thread (it hashes and does file I/O).
    """

    def __init__(self, store: BlobStore, max_bytes: int | None) -> None:
        self._store = store
        self._max_bytes = max_bytes
        self._tmp = store._new_tmp()
        # One thread: several only pay off for updates far larger than our chunks, and
        # would compete with the server's event loop for cores.
        self._hasher = blake3()
        # A remote store's blob starts in memory: one of at most SMALL_REMOTE bytes is
        # stored by one PUT under its hash once that is known, instead of an upload to
        # a temporary object, then a copy and a delete (a folder of small files sent to
        # a server whose blobs are on S3 costs a request each, not four).
        self._small: bytearray | None = None if store._local else bytearray()
        self._out: Any = store._open_tmp(self._tmp) if store._local else None
        self.size = 0
        self._done = False

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Append ``chunk``; PayloadTooLarge (and the blob is dropped) past the limit."""
        self.size += len(chunk)
        if self._max_bytes is not None and self.size > self._max_bytes:
            self.abort()
            raise PayloadTooLarge(f"content is larger than the limit of {self._max_bytes} bytes")
        self._hasher.update(chunk)
        if self._small is None:
            self._out.write(chunk)
            return
        self._small += chunk
        if len(self._small) > SMALL_REMOTE:  # too large for one PUT: to a temporary object
            self._out = self._store._open_tmp(self._tmp)
            self._out.write(self._small)
            self._small = None

    def write_all(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        """Append each of ``chunks`` in turn (one worker-thread hop for many socket reads,
        without first joining them into one buffer)."""
        for chunk in chunks:
            self.write(chunk)

    def commit(self) -> BlobRef:
        """Finish the blob and move it into place under its hash."""
        try:
            digest = self._hasher.hexdigest()
            if self._small is not None:
                # Not asked first whether it is there: writing equal bytes again costs
                # a PUT, and asking would cost a request for each new blob.
                self._store._write_object(self._store._path(digest), self._small)
            else:
                self._out.close()
                self._store._install_content(self._tmp, digest, self.size)
        except BaseException:
            self.abort()
            raise
        self._done = True
        return BlobRef(digest, self.size)

    def abort(self) -> None:
        """Drop what was written; safe to call more than once."""
        if self._done:
            return
        self._done = True
        if self._out is None:  # nothing left the memory
            self._small = None
            return
        discard = getattr(self._out, "discard", None)
        try:
            # Remote files would upload their buffer on close(); discard() does not.
            if discard is not None and not self._out.closed:
                discard()
                # A discarded fsspec file must not try to finish the upload when collected.
                self._out.closed = True
            else:
                self._out.close()
        finally:
            self._store._remove_quietly(self._tmp)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None:
            self.abort()


class BlobStore:
    """Bytes in, hash out. One implementation over any fsspec filesystem."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        protocol = getattr(fs, "protocol", None)
        self._local = protocol in ("file", ("file", "local"), "local")
        self._flat = False
        if self._local:
            Path(self.root, "tmp").mkdir(parents=True, exist_ok=True)
            self._flat = _local_layout(Path(self.root)) == FLAT

    # --- writing --------------------------------------------------------------------

    def writer(self, *, max_bytes: int | None = None) -> BlobWriter:
        """Start a blob to feed chunk by chunk (for sources that are not iterators)."""
        return BlobWriter(self, max_bytes)

    def put_stream(self, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> BlobRef:
        """Store the concatenated chunks; memory stays flat whatever the size.

        Raises PayloadTooLarge, storing nothing, once more than ``max_bytes`` arrive.
        """
        with self.writer(max_bytes=max_bytes) as w:
            for chunk in chunks:
                w.write(chunk)
            return w.commit()

    def put_file(self, path: str | os.PathLike[str], *, move: bool = False) -> BlobRef:
        """Store a local file, streaming it.

        Into a local folder the file is copied by the kernel first and the copy is then
        hashed, memory-mapped (from the page cache): about twice as fast as writing it
        from Python, and the hash is of exactly the bytes stored even if the source
        changes meanwhile (the copy is private, so mapping it is safe).
        ``move`` takes the file itself instead of a copy when it lies on the store's
        file system (a staged file its caller is done with); it is gone afterwards.
        """
        if not self._local:
            with open(path, "rb") as f:
                blob = self.put_stream(iter(lambda: f.read(CHUNK), b""))
            if move:
                Path(path).unlink()
            return blob
        if not move:
            staged = self.stage_file(path)
            try:
                return self.install_staged(staged)
            except BaseException:
                self.discard_staged(staged)
                raise
        tmp = self._new_tmp()
        try:
            if not _renamed(path, tmp):
                shutil.copyfile(path, tmp)
                Path(path).unlink()
            digest, size = hash_file(tmp, mapped=True), os.path.getsize(tmp)
            self._install_content(tmp, digest, size)
        except BaseException:
            self._remove_quietly(tmp)
            raise
        return BlobRef(digest, size)

    @property
    def is_local(self) -> bool:
        """Whether the store is a local folder (files can be staged in it)."""
        return self._local

    def stage_file(self, path: str | os.PathLike[str]) -> StagedBlob:
        """Copy a local file into a local store's temporary folder and hash the copy
        (as :meth:`put_file` does), without storing it yet: a caller storing many files
        as one unit (a version's) installs them once every one is read, and drops them
        if one fails, so nothing of a failed unit is left in the store."""
        assert self._local, "only a local store stages files"
        tmp = self._new_tmp()
        try:
            shutil.copyfile(path, tmp)
            return StagedBlob(tmp, BlobRef(hash_file(tmp, mapped=True), os.path.getsize(tmp)))
        except BaseException:
            self._remove_quietly(tmp)
            raise

    def install_staged(self, staged: StagedBlob) -> BlobRef:
        """Store a staged file under its digest (a rename)."""
        self._install_content(staged.tmp, staged.ref.hash, staged.ref.size)
        return staged.ref

    def discard_staged(self, staged: StagedBlob) -> None:
        """Drop a staged file (nothing if it was installed meanwhile)."""
        self._remove_quietly(staged.tmp)

    def put_file_in_pieces(
        self, path: str | os.PathLike[str], cuts: Iterable[int], *, max_piece: int = PIECE_MAX
    ) -> BlobRef:
        """Store a local file as pieces cut at ``cuts`` (byte offsets); a piece already
        stored, by any file, is not written again.

        Each piece is hashed and stored from the same bytes, so what is stored matches
        its digests even if the file changes underneath (a file that shrinks or grows
        meanwhile is refused). The blob's identity is the whole content's digest, as
        if it had been stored with :meth:`put_file`.
        """
        size = os.path.getsize(path)
        bounds = piece_bounds(cuts, size, max_piece)
        with open(path, "rb", buffering=0) as f:
            if self._local:
                digest, pieces = self._pieces_copied(f, bounds)
            else:
                digest, pieces = self._pieces_sent(f, bounds)
            if os.pread(f.fileno(), 1, size):
                raise InvalidInput(f"{os.fspath(path)} grew while it was being stored")
        if not self._file_exists(digest):  # written again: that repairs a damaged list
            self._write_object(self._piece_list_path(digest), encode_piece_list(size, pieces))
        return BlobRef(digest, size)

    def join_pieces(self, digest: str, pieces: Sequence[tuple[str, int]]) -> BlobRef:
        """Store blob ``digest`` as the join of ``pieces`` (``(digest, size)`` each), all
        stored already: what a remote client does after sending only the pieces that
        the store lacked.

        The joined bytes are read and must hash to ``digest``, whether or not that blob
        is stored already: a piece list is never taken on trust. InvalidInput, with
        nothing written, for a piece that is not stored whole at its size or pieces
        that make another blob; IntegrityError when a stored piece is itself damaged.
        """
        check_hash(digest)
        listed = [(check_hash(d), n) for d, n in pieces]
        too_large = [d for d, n in listed if n > PIECE_MAX]
        if too_large:
            raise InvalidInput(
                f"blob {digest} cannot be joined: a piece is at most {PIECE_MAX} bytes",
                {"too_large": too_large},
            )
        absent = [d for d, n in listed if n <= 0 or not self._stored_whole(d, n)]
        if not listed or absent:
            raise InvalidInput(
                f"blob {digest} cannot be joined: {len(absent) or 'no'} of its pieces "
                "are not stored at their listed sizes",
                {"absent": absent},
            )
        # Several threads: a file of many MiB, hashed in reads of JOIN_READ bytes.
        whole = blake3(max_threads=blake3.AUTO)
        for data in self._pieces_read_ahead(listed):
            whole.update(data)
        if whole.hexdigest() != digest:
            damaged = [d for d, _ in listed if not self._verified(d)]
            if damaged:
                raise IntegrityError(f"stored pieces are corrupt: {', '.join(damaged)}")
            raise InvalidInput(
                f"the pieces listed make blob {whole.hexdigest()}, not {digest}",
                {"expected": digest, "actual": whole.hexdigest()},
            )
        size = sum(n for _, n in listed)
        if not self._file_exists(digest):  # written again: that repairs a damaged list
            self._write_object(self._piece_list_path(digest), encode_piece_list(size, listed))
        return BlobRef(digest, size)

    def _pieces_read_ahead(self, pieces: Sequence[tuple[str, int]]) -> Iterator[bytes]:
        """The bytes of the pieces in order, read :data:`JOIN_READ` bytes at a time with
        the next few reads under way meanwhile: from S3 one GET after another would
        leave the link idle between them. At most four reads are held (64 MiB).
        IntegrityError for a piece that is shorter than listed."""
        ahead = 3

        def read(where: tuple[str, int, int]) -> bytes:
            digest, start, end = where
            data: bytes = self.fs.cat_file(self._path(digest), start=start, end=end)
            if len(data) != end - start:
                raise IntegrityError(f"piece {digest} is shorter than listed")
            return data

        upcoming = (
            (digest, start, min(start + JOIN_READ, size))
            for digest, size in pieces
            for start in range(0, size, JOIN_READ)
        )
        with ThreadPoolExecutor(ahead) as pool:
            reads = deque(pool.submit(read, p) for p in itertools.islice(upcoming, ahead))
            while reads:
                data = reads.popleft().result()
                if (following := next(upcoming, None)) is not None:
                    reads.append(pool.submit(read, following))
                yield data

    def _verified(self, digest: str) -> bool:
        """Whether a stored blob's content still hashes to its digest."""
        try:
            for _ in self.iter_chunks(digest):
                pass
        except IntegrityError:
            return False
        return True

    def _pieces_copied(self, f: BinaryIO, bounds: list[range]) -> tuple[str, list[tuple[str, int]]]:
        """Pieces into a local store, the whole hashed on a second thread meanwhile.

        A piece that is probably new (the first, or any after a new one) is copied by
        the kernel into a private file, the next one's copy started meanwhile, then
        hashed from that copy (what is hashed is what is stored) and dropped if it was
        stored already: a new file's pieces cost about what :meth:`put_file` costs. A
        piece after one found stored is probably stored too: it is read and hashed
        only, and written from those bytes when it is not, so a new version of a
        large file writes little more than what changed.
        """
        fd = f.fileno()
        whole = blake3()
        pieces: list[tuple[str, int]] = []
        buffer = bytearray()  # for reading, from the first piece found stored on
        copying = True
        copies: dict[int, Future[str]] = {}  # piece index -> its private copy, under way
        with ThreadPoolExecutor(1) as hashing, ThreadPoolExecutor(1) as copier:

            def hash_both(view: memoryview) -> str:
                job = hashing.submit(whole.update, view)
                try:
                    return blake3(view).hexdigest()
                finally:
                    job.result()  # the view stays valid until both hashes are done

            def copy(index: int) -> None:
                tmp = self._new_tmp()
                copies[index] = copier.submit(_copy_range, fd, tmp, bounds[index], f.name)

            try:
                for index, bound in enumerate(bounds):
                    if index not in copies and copying:
                        copy(index)
                    if index in copies:
                        if copying and index + 1 < len(bounds):
                            copy(index + 1)
                        tmp = copies[index].result()
                        try:
                            with _mapped(tmp) as view:
                                digest = hash_both(view)
                            stored = self._stored_whole(digest, len(bound))
                            if not stored:
                                self._install(tmp, self._path(digest))
                        finally:
                            self._remove_quietly(tmp)  # a no-op once installed
                            del copies[index]
                        copying = not stored
                    else:
                        if len(buffer) < len(bound):
                            buffer = bytearray(max(len(b) for b in bounds))
                        view = memoryview(buffer)[: len(bound)]
                        if _read_exactly_at(fd, view, bound.start) != len(bound):
                            raise InvalidInput(f"{f.name} shrank while it was being stored")
                        digest = hash_both(view)
                        if not self._stored_whole(digest, len(bound)):
                            copying = True
                            self._write_object(self._path(digest), view)
                    pieces.append((digest, len(bound)))
            finally:
                for pending in copies.values():  # copies made ahead are nobody's now
                    if pending.exception() is None:  # (a failed copy left no file)
                        self._remove_quietly(pending.result())
        return whole.hexdigest(), pieces

    def _pieces_sent(self, f: BinaryIO, bounds: list[range]) -> tuple[str, list[tuple[str, int]]]:
        """Pieces into a remote store, in three stages that overlap: this thread reads
        a piece into one of three buffers and hashes it, one worker hashes the whole,
        in order, and another sends each piece the store lacks."""
        longest = max((len(b) for b in bounds), default=0)
        buffers = [bytearray(longest) for _ in bounds[:3]]
        users: list[list[Future[Any]]] = [[] for _ in buffers]  # the work on each buffer
        whole = blake3()
        pieces: list[tuple[str, int]] = []
        with ThreadPoolExecutor(1) as hashing, ThreadPoolExecutor(1) as writing:
            for index, bound in enumerate(bounds):
                slot = index % len(buffers)
                for job in users[slot]:
                    job.result()  # its buffer is free again
                view = memoryview(buffers[slot])[: len(bound)]
                if _read_exactly_at(f.fileno(), view, bound.start) != len(bound):
                    raise InvalidInput(f"{f.name} shrank while it was being stored")
                users[slot] = [hashing.submit(whole.update, view)]
                digest = blake3(view).hexdigest()
                if not self._stored_whole(digest, len(bound)):
                    users[slot].append(writing.submit(self._write_object, self._path(digest), view))
                pieces.append((digest, len(bound)))
            for jobs in users:
                for job in jobs:
                    job.result()
        return whole.hexdigest(), pieces

    def put_bytes(self, data: bytes) -> BlobRef:
        """Store a small in-memory value."""
        return self.put_stream([data])

    # --- reading --------------------------------------------------------------------

    def local_path(self, digest: str) -> Path | None:
        """Where a blob lies whole on this machine's disk (unverified), or None where it
        does not (a remote store, or a blob stored in pieces): such readers copy it out
        with :meth:`copy_to`. For readers that need a file path (DuckDB, Parquet)."""
        if not self._local:
            return None
        path = Path(self._path(digest))
        if path.exists():
            return path
        if Path(self._piece_list_path(digest)).exists():
            return None
        raise NotFound(f"blob {digest} not found")

    def exists(self, digest: str) -> bool:
        """Whether a blob with this hash is stored (whole or in pieces)."""
        return self._file_exists(digest) or bool(self.fs.exists(self._piece_list_path(digest)))

    def size(self, digest: str) -> int:
        """Size in bytes of a stored blob (NotFound when absent)."""
        try:
            return int(self.fs.size(self._path(digest)))
        except FileNotFoundError:
            pass
        return sum(n for _, n in self._pieces(digest))

    def open_raw(self, digest: str) -> BinaryIO:
        """The stored file, unverified: for callers that verify themselves."""
        try:
            return self._open_file(digest)
        except NotFound:
            pieces = self._pieces(digest)
        reader = PiecesReader(digest, pieces, self._open_file)
        return io.BufferedReader(reader, buffer_size=CHUNK)  # type: ignore[return-value]

    def iter_chunks(self, digest: str, *, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """Yield the blob in chunks, verifying its hash.

        The last chunk is held back until the whole content has been hashed, so
        a consumer never receives all of a corrupt blob: IntegrityError comes
        instead of the final chunk.
        """
        hasher = blake3()
        with self.open_raw(digest) as f:
            pending = f.read(chunk_size)
            while pending:
                hasher.update(pending)
                following = f.read(chunk_size)
                if not following:
                    break
                yield pending
                pending = following
            if hasher.hexdigest() != digest:
                raise IntegrityError(f"blob {digest} is corrupt: its content hash differs")
            if pending:
                yield pending

    def read_bytes(self, digest: str) -> bytes:
        """The whole verified blob: only for small values."""
        return b"".join(self.iter_chunks(digest))

    def copy_to(self, digest: str, dest: str | os.PathLike[str]) -> None:
        """Write the verified blob to a local file (atomically; nothing on failure)."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        try:
            with open(tmp, "wb") as out:
                for chunk in self.iter_chunks(digest):
                    out.write(chunk)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    # --- layout -----------------------------------------------------------------------

    def _path(self, digest: str) -> str:
        return f"{self.root}/{self._fanned(digest)}"

    def _piece_list_path(self, digest: str) -> str:
        return f"{self.root}/pieces/{self._fanned(digest)}"

    def _fanned(self, digest: str) -> str:
        """A checked digest under its folders (see :data:`FLAT`)."""
        check_hash(digest)
        if self._flat:
            return f"{digest[:2]}/{digest}"
        return f"{digest[:2]}/{digest[2:4]}/{digest}"

    def _file_exists(self, digest: str) -> bool:
        """Whether the blob is stored whole (as one file or object)."""
        return bool(self.fs.exists(self._path(digest)))

    def _stored_whole(self, digest: str, size: int) -> bool:
        """Whether the blob is stored whole at ``size`` bytes: a copy of another size
        (truncated, grown) is written again when its content comes by, which repairs
        it."""
        try:
            if self._local:
                return os.path.getsize(self._path(digest)) == size
            return int(self.fs.size(self._path(digest))) == size
        except FileNotFoundError:
            return False

    def _open_file(self, digest: str) -> BinaryIO:
        path = self._path(digest)
        try:
            if self._local:
                return open(path, "rb")
            return self.fs.open(path, "rb", block_size=CHUNK, cache_type="none")  # type: ignore[no-any-return]
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def _pieces(self, digest: str) -> list[tuple[str, int]]:
        try:
            data = self.fs.cat_file(self._piece_list_path(digest))
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None
        return decode_piece_list(data, digest, check_hash)

    def _write_object(self, final: str, data: bytes | memoryview) -> None:
        """Write a small object (a piece, a piece list) so readers see all or nothing."""
        if not self._local:
            self.fs.pipe_file(final, bytes(data))  # one PUT: atomic
            return
        tmp = self._new_tmp()
        try:
            with open(tmp, "wb") as out:
                out.write(data)
            self._install(tmp, final)
        except BaseException:
            self._remove_quietly(tmp)
            raise

    def _open_tmp(self, tmp: str) -> Any:
        if self._local:
            return open(tmp, "wb")
        # Small parts keep memory flat; S3 needs at least 5 MiB per part.
        return self.fs.open(tmp, "wb", block_size=max(CHUNK, 5 * 1024 * 1024))

    def _new_tmp(self) -> str:
        """A fresh temporary path in the store, for an object being written."""
        return f"{self.root}/tmp/{uuid.uuid4().hex}"

    def _install(self, tmp: str, final: str) -> None:
        """Move a finished temporary object to ``final`` (a blob's or piece list's path)."""
        if self._local:
            Path(final).parent.mkdir(parents=True, exist_ok=True)
            # Atomic; a concurrent writer of the same content replaces equal bytes.
            os.replace(tmp, final)
        else:  # only new or damaged content comes here (_install_content asked)
            self.fs.mv(tmp, final)

    def _install_content(self, tmp: str, digest: str, size: int) -> None:
        """:meth:`_install` for a whole blob (``size`` bytes, named ``digest``): into a
        local store where it is already stored at that size (:meth:`_stored_whole`),
        the new copy is dropped instead.

        Renaming over a local file costs more than writing it: ext4 flushes the new file
        to disk before it replaces an existing one (``auto_da_alloc``), 34 ms for 50 MB
        here against 1 ms to unlink it. A stored copy of another size (truncated, grown)
        is replaced, which repairs it; other damage is caught on read, as always.
        """
        if self._stored_whole(digest, size):
            self._remove_quietly(tmp)
            return
        self._install(tmp, self._path(digest))

    def _remove_quietly(self, path: str) -> None:
        try:
            if self._local:
                Path(path).unlink(missing_ok=True)
            elif self.fs.exists(path):
                self.fs.rm(path)
        except FileNotFoundError:
            pass


def _local_layout(root: Path) -> str:
    """The layout of the local store at ``root`` (which exists): as its ``layout`` file
    says; for a store without one, two levels where it holds anything but its ``tmp``
    folder (made before the file was), else :data:`FLAT`, written down first
    (processes making a store at once all write "1": the file another one wrote
    meanwhile is not a blob)."""
    marker = root / LAYOUT_FILE
    try:
        return marker.read_text().strip()
    except FileNotFoundError:
        pass
    if any(entry.name not in ("tmp", LAYOUT_FILE) for entry in os.scandir(root)):
        return "2"
    tmp = root / "tmp" / f"layout.{uuid.uuid4().hex}"
    tmp.write_text(FLAT + "\n")
    os.replace(tmp, marker)
    return FLAT


def _read_exactly_at(fd: int, view: memoryview, offset: int) -> int:
    """Fill ``view`` from ``fd`` at ``offset``; fewer bytes only at the end of the file."""
    got = 0
    while got < len(view):
        n = os.preadv(fd, [view[got:]], offset + got)
        if not n:
            break
        got += n
    return got


@contextmanager
def _mapped(path: str) -> Iterator[memoryview]:
    """The bytes of a private file, mapped (read without a copy through Python)."""
    with (
        open(path, "rb") as f,
        mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
        memoryview(mapped) as view,
    ):
        yield view


def _copy_range(fd: int, target: str, bound: range, name: str) -> str:
    """Copy bytes ``bound`` of ``fd`` (file ``name``) into a new file ``target`` and
    return ``target``: in the kernel where it can (no pass through Python), by reads
    and writes where it cannot (another file system on older kernels, some special
    ones); InvalidInput, and no file left, when the file ends first."""
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        done = 0
        kernel = True
        while done < len(bound):
            want = min(len(bound) - done, CHUNK)
            if kernel:
                try:
                    n = os.copy_file_range(fd, out, want, bound.start + done)
                except OSError as error:
                    if error.errno not in _NO_KERNEL_COPY:
                        raise
                    kernel = False
                    continue
            else:
                data = os.pread(fd, want, bound.start + done)
                n = len(data)
                view = memoryview(data)
                while view:
                    view = view[os.write(out, view) :]
            if not n:
                raise InvalidInput(f"{name} shrank while it was being stored")
            done += n
    except BaseException:
        os.close(out)
        Path(target).unlink(missing_ok=True)
        raise
    os.close(out)
    return target


# copy_file_range's answers for "not between these two files": the copy goes on by hand.
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EPERM}


def _renamed(source: str | os.PathLike[str], target: str) -> bool:
    """Move a file by renaming it; False when that cannot be done (another file system)."""
    try:
        os.rename(source, target)
    except OSError:
        return False
    return True


def s3_filesystem(settings: Settings) -> fsspec.AbstractFileSystem:
    """An fsspec S3 filesystem with the endpoint and credentials of ``settings``."""
    options: dict[str, Any] = {
        # Several server processes share the bucket: never trust a cached listing.
        "use_listings_cache": False,
        # No CRC32 on every PUT and GET (botocore's default since 1.36): what is
        # stored is checked by its BLAKE3 hash on the way in and on every read, and
        # the bytes in transit by TLS, or over plain HTTP by the SHA-256 of the
        # signed payload. Several S3-compatible stores refuse the checksum headers.
        "config_kwargs": {
            "request_checksum_calculation": "when_required",
            "response_checksum_validation": "when_required",
        },
    }
    if settings.s3_endpoint_url:
        options["endpoint_url"] = settings.s3_endpoint_url
    if settings.s3_access_key_id:
        options["key"] = settings.s3_access_key_id
        options["secret"] = settings.s3_secret_access_key
    if settings.s3_region:
        options["client_kwargs"] = {"region_name": settings.s3_region}
    return fsspec.filesystem("s3", **options)


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob store named by ``settings.blob_url``: a local folder or ``s3://``."""
    url = settings.resolved_blob_url
    if url.startswith("s3://"):
        fs = s3_filesystem(settings)
        root = url.removeprefix("s3://").rstrip("/")
        if not root:
            raise InvalidInput(f"blob URL {url!r} names no bucket")
        return BlobStore(fs, root)
    if "://" in url and not url.startswith("file://"):
        raise InvalidInput(f"unsupported blob URL {url!r}: use a folder or s3://bucket/prefix")
    root = Path(url.removeprefix("file://")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return BlobStore(fsspec.filesystem("file"), str(root))
