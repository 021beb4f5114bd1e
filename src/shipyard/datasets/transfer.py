"""Moving dataset files between the client and the platform's blob store.

Embedded clients share the store with the in-process server: they write blobs straight
into it (a kernel copy, then one hash) and claim them for the project. Remote clients
hash locally, ask which hashes the project lacks, and upload only those; a large Parquet
file they lack goes as the pieces the embedded store would cut it into, only the ones
the project lacks, which the server then joins (a new version of a big file sends its
changed row groups and footer). Reading goes through a local cache of verified files
keyed by hash.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from blake3 import blake3

from shipyard.blobs import BlobRef, StagedBlob
from shipyard.blobs.pieces import hash_pieces, piece_bounds
from shipyard.blobs.store import CHUNK, check_hash
from shipyard.client.api import segment
from shipyard.datasets.parquet_cuts import PIECES_FROM, row_group_cuts
from shipyard.errors import InvalidInput
from shipyard.hashing import hash_file

if TYPE_CHECKING:
    from shipyard.blobs import BlobStore
    from shipyard.client.client import Client


class Transfer:
    """Blob movement for one client and project."""

    def __init__(self, client: Client, project: str) -> None:
        self._client = client
        self._api = client.api
        self._project = segment(project)
        self._store: BlobStore | None = None
        if client.embedded:
            from shipyard.blobs import open_blob_store

            self._store = open_blob_store(client.settings)

    # --- writing -------------------------------------------------------------------------

    def put(self, path: Path, *, move: bool = False) -> BlobRef:
        """Store a local file (embedded) or just hash it (remote: sent by :meth:`publish`).
        ``move``: the file is a staged one the caller no longer needs (embedded: it is
        moved into the store, not copied). A large Parquet file of the user's is stored
        in pieces cut at its row groups, shared with its earlier versions."""
        if self._store is None:
            return BlobRef(hash_file(path), path.stat().st_size)
        if not move and (cuts := _piece_cuts(path)):
            return self._store.put_file_in_pieces(path, cuts)
        return self._store.put_file(path, move=move)

    def stage(self, path: Path) -> StagedBlob | BlobRef:
        """:meth:`put`, except that into an embedded local store the copy is only staged
        (:meth:`BlobStore.stage_file`): the caller then installs or discards it. Where
        nothing can be staged (remote: hashed only; S3; a large file stored in pieces),
        what :meth:`put` returns."""
        if self._store is None or not self._store.is_local or _piece_cuts(path):
            return self.put(path)
        return self._store.stage_file(path)

    def install(self, staged: StagedBlob) -> BlobRef:
        """Store a file :meth:`stage` staged."""
        assert self._store is not None
        return self._store.install_staged(staged)

    def discard(self, staged: StagedBlob) -> None:
        """Drop a file :meth:`stage` staged."""
        assert self._store is not None
        self._store.discard_staged(staged)

    def put_bytes(self, data: bytes) -> BlobRef:
        """Store a small value (embedded) or just hash it (remote)."""
        if self._store is not None:
            return self._store.put_bytes(data)
        return BlobRef(blake3(data).hexdigest(), len(data))

    def publish(self, files: dict[str, Path | bytes]) -> None:
        """Make every ``hash -> local path (or bytes)`` a blob of the project's datasets:
        claimed when already in the shared store, uploaded otherwise."""
        hashes = list(files)
        for start in range(0, len(hashes), 10_000):
            chunk = hashes[start : start + 10_000]
            if self._store is not None:
                absent = self._api.post(
                    f"/projects/{self._project}/datasets/-/claim-blobs", {"hashes": chunk}
                )["missing"]
                for digest in absent:  # the cache knew it, this store does not: store it
                    value = files[digest]
                    if isinstance(value, bytes):
                        self.put_bytes(value)
                    else:
                        self.put(value)
                if absent:
                    self._api.post(
                        f"/projects/{self._project}/datasets/-/claim-blobs", {"hashes": absent}
                    )
            else:
                whole: list[Callable[[], None]] = []
                for digest in self._missing(chunk):
                    value = files[digest]
                    if isinstance(value, Path) and (cuts := _piece_cuts(value)):
                        self._upload_pieces(digest, value, cuts)  # its pieces in parallel
                    else:
                        chunks = [value] if isinstance(value, bytes) else _file_chunks(value)
                        whole.append(functools.partial(self._upload, digest, chunks))
                _in_parallel(whole)

    def _upload(self, digest: str, chunks: Iterable[bytes]) -> None:
        """PUT the blob ``digest``, streamed from ``chunks``."""
        self._api.upload(f"/projects/{self._project}/dataset-blobs/{check_hash(digest)}", chunks)

    def _upload_pieces(self, digest: str, path: Path, cuts: list[int]) -> None:
        """Send a large Parquet file as the pieces the embedded store would cut it into,
        only those the project lacks (a new version's changed row groups and footer),
        then have the server join them under the whole file's ``digest``."""
        size = path.stat().st_size
        bounds = piece_bounds(cuts, size)
        whole, pieces = hash_pieces(path, bounds)
        if whole != digest:
            raise InvalidInput(f"{path} changed while it was being stored", {"file": str(path)})
        join = {"hash": digest, "pieces": [[h, n] for h, n in pieces]}
        # The server reads the whole file back before it answers.
        timeout = max(JOIN_TIMEOUT_S, size / JOIN_READ_BYTES_PER_S)
        with open(path, "rb", buffering=0) as f:

            def send(wanted: set[str]) -> None:
                sends: list[Callable[[], None]] = []
                for bound, (piece, _) in zip(bounds, pieces, strict=True):
                    if piece in wanted:
                        wanted.discard(piece)  # a piece the file holds twice goes once
                        chunks = _range_chunks(f.fileno(), bound)
                        sends.append(functools.partial(self._upload, piece, chunks))
                try:
                    _in_parallel(sends)
                except InvalidInput as exc:  # the server found other bytes than were hashed
                    message = f"{path} changed while it was being sent ({exc.message})"
                    raise InvalidInput(message, {"file": str(path)}) from None

            send(set(self._missing(dict.fromkeys(h for h, _ in pieces))))
            join_path = f"/projects/{self._project}/datasets/-/join-blob"
            try:
                self._api.request("POST", join_path, json=join, timeout=timeout)
            except InvalidInput as exc:
                # Pieces the project holds that the store lost or holds at another size:
                # sent again (which repairs them) and joined again, once.
                absent = set(exc.details.get("absent") or ())
                if not absent:
                    raise
                send(absent)
                self._api.request("POST", join_path, json=join, timeout=timeout)

    def _missing(self, hashes: Iterable[str]) -> list[str]:
        """Which of ``hashes`` the project lacks, asked in batches the server takes."""
        wanted = list(hashes)
        path = f"/projects/{self._project}/datasets/-/missing-blobs"
        missing: list[str] = []
        for start in range(0, len(wanted), HASHES_PER_REQUEST):
            batch = wanted[start : start + HASHES_PER_REQUEST]
            missing += self._api.post(path, {"hashes": batch})["missing"]
        return missing

    # --- reading -------------------------------------------------------------------------

    def fetch(self, digests: Sequence[str]) -> dict[str, Path]:
        """Local, verified paths of blobs of the project (downloaded into the cache once,
        and again if a cached copy was written to since: see :func:`_verified_copy`)."""
        out: dict[str, Path] = {}
        cache = self._client.settings.home / "cache" / "blobs"
        for digest in digests:
            check_hash(digest)
            target = cache / digest[:2] / digest
            if not _verified_copy(target):
                self._api.download_verified(
                    f"/projects/{self._project}/dataset-blobs/{digest}",
                    target,
                    f"dataset file {digest}",
                    expected=digest,
                )
                _mark_verified(target)
            out[digest] = target
        return out

    def read_bytes(self, digest: str) -> bytes:
        """A small blob of the project (profile state), verified."""
        return self._api.read_verified(
            f"/projects/{self._project}/dataset-blobs/{check_hash(digest)}",
            f"dataset blob {digest}",
            expected=digest,
        )


VERIFIED_MTIME_NS = 86_400 * 10**9
"""The modification time (1970-01-02) a cached blob gets once its download is verified:
any later write to it (a user's, through a path ``open()`` handed out) changes its
time, and the copy is fetched and verified again rather than trusted."""


def _verified_copy(path: Path) -> bool:
    """Whether ``path`` is a cached blob as verified: present, untouched since."""
    try:
        return path.stat().st_mtime_ns == VERIFIED_MTIME_NS
    except FileNotFoundError:
        return False


def _mark_verified(path: Path) -> None:
    """Stamp a just-verified cached blob (see :data:`VERIFIED_MTIME_NS`), read-only: its
    path is handed to readers, who have no business writing to it."""
    path.chmod(0o444)
    os.utime(path, ns=(VERIFIED_MTIME_NS, VERIFIED_MTIME_NS))


HASHES_PER_REQUEST = 10_000
"""Hashes per ``missing-blobs`` request (the server's limit)."""
JOIN_TIMEOUT_S = 60.0
JOIN_READ_BYTES_PER_S = 50 * 1024 * 1024
"""A join's reply waits for the server to read the file back: the timeout allows for
this rate at least (20 s a GB), or a minute, whichever is longer."""
UPLOADS = 8
"""Uploads in flight at once. A folder of small files is bound by each upload's round
trip (the server's write into its store included), not by the bandwidth: 1,000 files
of 1 MiB into a server whose blobs are on S3 took 52-54 s one at a time."""


def _in_parallel(calls: Sequence[Callable[[], None]]) -> None:
    """Run ``calls`` on up to :data:`UPLOADS` threads; the first failure is raised once
    the others have ended (an upload either lands whole or not at all)."""
    if len(calls) <= 1:
        for call in calls:
            call()
        return
    with ThreadPoolExecutor(min(UPLOADS, len(calls))) as pool:
        futures = [pool.submit(call) for call in calls]
        try:
            for future in futures:
                future.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)  # those not started: the error ends the batch
            raise


def _piece_cuts(path: Path) -> list[int]:
    """Where a local file is cut into blob pieces: at its row groups for a Parquet file
    of :data:`PIECES_FROM` bytes or more; none (stored whole) otherwise."""
    if path.stat().st_size < PIECES_FROM:
        return []
    return row_group_cuts(path)


def _file_chunks(path: Path) -> Iterator[bytes]:
    """A file's bytes, a chunk at a time (opened when the first one is asked for)."""
    with open(path, "rb") as f:
        yield from iter(lambda: f.read(CHUNK), b"")


def _range_chunks(fd: int, bound: range) -> Iterator[bytes]:
    """The bytes ``bound`` of an open file, a chunk at a time."""
    position = bound.start
    while position < bound.stop:
        data = os.pread(fd, min(CHUNK, bound.stop - position), position)
        if not data:
            raise InvalidInput("a file shrank while it was being sent")
        position += len(data)
        yield data
