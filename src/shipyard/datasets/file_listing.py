"""Which files a path or URL names, before their format is read: a local file or folder,
a ``file://`` URL, or an S3 object or prefix.

- Folders are read recursively, in the order of their '/'-separated relative paths.
- Names starting with '.' or '_' are skipped: hidden files, and the ``_SUCCESS`` and
  ``_metadata`` markers Spark and Dask write (pyarrow's datasets skip the same).
- A symbolic link pointing outside the folder is refused; one to a folder inside it is not
  followed (its files are listed under their own names already). Anything but regular
  files and folders (devices, pipes) is refused.
"""

from __future__ import annotations

import os
import stat
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from shipyard.config import Settings
from shipyard.datasets.sources import Format, error_text, url_scheme
from shipyard.errors import InvalidInput

_EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_S3_BLOCK = 8 << 20  # s3fs reads ahead this much (its default, 50 MiB, is a lot per file)


@dataclass(frozen=True)
class SourceFile:
    """One file of a source, local or remote, before its format is read."""

    display: str  # for messages: a path or URL
    name: str  # relative to the source folder, '/'-separated
    size: int
    opener: Callable[[], Any]  # a fresh binary stream: a pyarrow file or a Python file object
    path: Path | None = None  # local files only
    stat: os.stat_result | None = None

    @property
    def gzip(self) -> bool:
        return self.name.lower().endswith(".gz")

    @property
    def format(self) -> Format | None:
        """The format its extension names (a gzip-compressed Parquet file is none)."""
        base = self.name.lower().removesuffix(".gz")
        fmt = _EXTENSIONS.get(os.path.splitext(base)[1])
        return None if fmt == "parquet" and self.gzip else fmt

    def stream(self) -> Any:
        """A fresh pyarrow input stream over its (decompressed) bytes."""
        raw = self.opener()
        native = raw if isinstance(raw, pa.NativeFile) else pa.PythonFile(raw, mode="r")
        return pa.CompressedInputStream(native, "gzip") if self.gzip else native

    def check_unchanged(self) -> None:
        """Refuse a local file whose size or mtime moved since it was listed."""
        if self.path is None or self.stat is None:
            return
        now = self.path.stat()
        if (now.st_size, now.st_mtime_ns) != (self.stat.st_size, self.stat.st_mtime_ns):
            raise InvalidInput(f"{self.display}: the file changed while it was being read")


def list_files(text: str, settings: Settings | None) -> tuple[list[SourceFile], str]:
    """The files a path, ``file://`` or ``s3://`` URL names, and a description of them."""
    scheme = url_scheme(text)
    if scheme == "s3":
        return _s3_files(text, settings or Settings()), text
    return _local_files(_file_url_path(text) if scheme else Path(text))


def _file_url_path(url: str) -> Path:
    parts = urllib.parse.urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise InvalidInput(f"{url}: a file:// URL must name a local path (file:///path)")
    return Path(urllib.parse.unquote(parts.path))


def _local_files(given: Path) -> tuple[list[SourceFile], str]:
    try:
        root = given.expanduser().resolve()
        info = root.stat()
    except FileNotFoundError:
        raise InvalidInput(f"no such file or folder: {given}") from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symbolic link loop
        raise InvalidInput(f"{given}: {error_text(exc)}") from None
    if stat.S_ISREG(info.st_mode):
        return [_local_file(root, root.name, info)], str(root)
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidInput(f"{given}: not a regular file or folder")
    found: list[SourceFile] = []
    _walk(root, root, "", found)
    if not found:
        raise InvalidInput(f"{root}: the folder holds no data files")
    found.sort(key=lambda f: f.name)
    return found, str(root)


def _walk(root: Path, folder: Path, prefix: str, found: list[SourceFile]) -> None:
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:
        raise InvalidInput(f"{folder}: cannot list the folder ({error_text(exc)})") from None
    for entry in entries:
        if entry.name.startswith((".", "_")):
            continue
        name, path = prefix + entry.name, Path(entry.path)
        try:
            if entry.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(root):
                    raise InvalidInput(f"{path}: a symbolic link to {target}, outside {root}")
                if target.is_dir():
                    continue
                path = target
            info = path.stat()
        except (OSError, RuntimeError) as exc:
            raise InvalidInput(f"{path}: {error_text(exc)}") from None
        if stat.S_ISDIR(info.st_mode):
            _walk(root, path, name + "/", found)
        elif stat.S_ISREG(info.st_mode):
            found.append(_local_file(path, name, info))
        else:
            raise InvalidInput(f"{path}: not a regular file")


def _local_file(path: Path, name: str, info: os.stat_result) -> SourceFile:
    text = str(path)
    return SourceFile(text, name, info.st_size, lambda: pa.OSFile(text), path, info)


def _s3_filesystem(settings: Settings) -> Any:
    from shipyard.blobs.store import s3_filesystem

    return s3_filesystem(settings)


def _s3_files(url: str, settings: Settings) -> list[SourceFile]:
    """The object ``s3://bucket/key``, or the objects under ``s3://bucket/prefix/``."""
    path = url.split("://", 1)[1]
    if not path.split("/", 1)[0]:
        raise InvalidInput(f"{url}: names no bucket")
    fs = _s3_filesystem(settings)

    def remote(key: str, name: str, size: int) -> SourceFile:
        return SourceFile(
            f"s3://{key}", name, size, lambda: fs.open(key, "rb", block_size=_S3_BLOCK)
        )

    prefix = path.rstrip("/")
    try:
        if not path.endswith("/"):
            try:
                info = fs.info(path)
            except FileNotFoundError:
                info = {}
            if info.get("type") == "file":
                return [remote(path, path.rsplit("/", 1)[-1], int(info["size"]))]
        listing = fs.find(prefix, detail=True)
    except Exception as exc:  # botocore's errors are not OSErrors: any of them, unreachable
        raise InvalidInput(f"{url}: cannot list it ({error_text(exc)})") from None
    files = []
    for key, info in listing.items():
        name = key.removeprefix(prefix + "/")
        hidden = any(part.startswith((".", "_")) for part in name.split("/"))
        if info.get("type") == "file" and not hidden:
            files.append(remote(key, name, int(info["size"])))
    if not files:
        raise InvalidInput(f"no such object, or no data files under it: {url}")
    return sorted(files, key=lambda f: f.name)
