"""Content-addressed blobs: identical content is stored once, reads are verified.

Blobs are laid out as ``<root>/<h[:2]>/<h[2:4]>/<h>`` where ``h`` is the BLAKE3
hex digest. Writes stream into a temporary object while hashing and are moved
into place at the end, so a reader never sees a partial blob.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import fsspec
from blake3 import blake3

from shipyard.config import Settings
from shipyard.errors import IntegrityError, InvalidInput, NotFound

CHUNK = 1024 * 1024
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class BlobRef:
    """A stored blob: its BLAKE3 hex digest and its size in bytes."""

    hash: str
    size: int


def check_hash(value: str) -> str:
    """Refuse anything that is not a 64-char lowercase hex digest (it becomes a path)."""
    if len(value) != 64 or not set(value) <= _HEX:
        raise InvalidInput(f"not a blob hash: {value[:80]!r}")
    return value


class BlobStore:
    """Bytes in, hash out. One implementation over any fsspec filesystem."""

    def __init__(self, fs: fsspec.AbstractFileSystem, root: str) -> None:
        self.fs = fs
        self.root = root.rstrip("/")
        self._local = getattr(fs, "protocol", None) in ("file", ("file", "local"))
        if self._local:
            Path(self.root, "tmp").mkdir(parents=True, exist_ok=True)

    def _path(self, digest: str) -> str:
        check_hash(digest)
        return f"{self.root}/{digest[:2]}/{digest[2:4]}/{digest}"

    def put_stream(self, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> BlobRef:
        """Store the concatenated chunks; memory stays flat whatever the size."""
        tmp = f"{self.root}/tmp/{uuid.uuid4().hex}"
        hasher = blake3(max_threads=blake3.AUTO)
        size = 0
        try:
            with self.fs.open(tmp, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise InvalidInput(f"blob is larger than the limit of {max_bytes} bytes")
                    hasher.update(chunk)
                    out.write(chunk)
            digest = hasher.hexdigest()
            final = self._path(digest)
            if self.fs.exists(final):
                self.fs.rm(tmp)
            elif self._local:
                Path(final).parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
            else:
                self.fs.mv(tmp, final)
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)
            raise
        return BlobRef(digest, size)

    def put_file(self, path: str | os.PathLike[str]) -> BlobRef:
        """Store a local file, streaming it."""
        with open(path, "rb") as f:
            return self.put_stream(iter(lambda: f.read(CHUNK), b""))

    def put_bytes(self, data: bytes) -> BlobRef:
        """Store a small in-memory value."""
        return self.put_stream([data])

    def exists(self, digest: str) -> bool:
        """Whether a blob with this hash is stored."""
        return bool(self.fs.exists(self._path(digest)))

    def size(self, digest: str) -> int:
        """Size in bytes of a stored blob."""
        try:
            return int(self.fs.size(self._path(digest)))
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def open_raw(self, digest: str) -> BinaryIO:
        """The stored file, unverified: for callers that verify themselves."""
        try:
            return self.fs.open(self._path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found") from None

    def iter_chunks(self, digest: str, *, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """Yield the blob in chunks; raise IntegrityError at the end if the hash differs."""
        hasher = blake3()
        with self.open_raw(digest) as f:
            while chunk := f.read(chunk_size):
                hasher.update(chunk)
                yield chunk
        if hasher.hexdigest() != digest:
            raise IntegrityError(f"blob {digest} is corrupt: its content hash differs")

    def read_bytes(self, digest: str) -> bytes:
        """The whole verified blob: only for small values."""
        return b"".join(self.iter_chunks(digest))

    def copy_to(self, digest: str, dest: str | os.PathLike[str]) -> None:
        """Write the verified blob to a local file (atomically)."""
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


def open_blob_store(settings: Settings) -> BlobStore:
    """The blob store named by ``settings.blob_url``: a local folder or ``s3://``."""
    url = settings.resolved_blob_url
    if url.startswith("s3://"):
        options: dict[str, Any] = {}
        if settings.s3_endpoint_url:
            options["endpoint_url"] = settings.s3_endpoint_url
        if settings.s3_access_key_id:
            options["key"] = settings.s3_access_key_id
            options["secret"] = settings.s3_secret_access_key
        if settings.s3_region:
            options["client_kwargs"] = {"region_name": settings.s3_region}
        fs = fsspec.filesystem("s3", **options)
        return BlobStore(fs, url.removeprefix("s3://"))
    if "://" in url and not url.startswith("file://"):
        raise InvalidInput(f"unsupported blob URL {url!r}: use a folder or s3://bucket/prefix")
    root = Path(url.removeprefix("file://")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return BlobStore(fsspec.filesystem("file"), str(root))
