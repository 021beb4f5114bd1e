"""SDK client of run artifacts: streamed uploads, verified downloads.

Files are sent and received in chunks, so their size is bounded by the disk,
not memory. Every download is re-hashed here (BLAKE3) against the hash the
server announces, and a server-sent path is written only if it stays inside
the destination folder.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator
from pathlib import Path

from shipyard.client.api import Api, segment, segments
from shipyard.errors import InvalidInput
from shipyard.tracking.artifact_types import ArtifactInfo
from shipyard.tracking.paths import (
    join_artifact_path,
    normalize_artifact_path,
    normalize_artifact_prefix,
)

CHUNK = 4 * 1024 * 1024


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def _url(run_id: str, path: str) -> str:
    # Every character but '/' is escaped, so the URL layer cannot reinterpret the path.
    return f"/runs/{segment(run_id)}/artifacts/{segments(path)}"


class ArtifactsClient:
    """``client.artifacts``: files of runs."""

    def __init__(self, api: Api) -> None:
        self._api = api

    def upload_file(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactInfo:
        """Upload one file into the run's folder ``artifact_path`` (None = the root),
        keeping its name. A file already at that path is replaced."""
        local = Path(local_path)
        if not local.is_file():
            raise InvalidInput(f"{local} is not a file")
        path = join_artifact_path(artifact_path, local.name)
        return self._put(run_id, path, local)

    def upload_dir(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> builtins.list[ArtifactInfo]:
        """Upload every file under ``local_dir`` into the run's folder ``artifact_path``,
        keeping the tree. All paths are checked before the first upload."""
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidInput(f"{root} is not a folder")
        plan: builtins.list[tuple[str, Path]] = []
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                local = Path(folder, name)
                rel = local.relative_to(root).as_posix()
                plan.append((join_artifact_path(artifact_path, rel), local))
        return [self._put(run_id, path, local) for path, local in plan]

    def _put(self, run_id: str, path: str, local: Path) -> ArtifactInfo:
        return ArtifactInfo(**self._api.upload(_url(run_id, path), _file_chunks(local)))

    def list(
        self, run_id: str, path: str = "", *, recursive: bool = False
    ) -> builtins.list[ArtifactInfo]:
        """The files and folders directly inside the run's folder ``path`` ('' = root);
        with ``recursive``, every file below it."""
        return self._list(run_id, path, recursive=recursive)

    def _list(self, run_id: str, path: str, *, recursive: bool) -> builtins.list[ArtifactInfo]:
        params = {"path": normalize_artifact_prefix(path), "recursive": recursive}
        items = self._api.request("GET", f"/runs/{segment(run_id)}/artifacts", params=params)
        return [ArtifactInfo(**i) for i in items]

    def read_bytes(self, run_id: str, path: str) -> bytes:
        """A (small) file's content, verified against its hash."""
        path = normalize_artifact_path(path)
        return self._api.read_verified(_url(run_id, path), f"artifact {path!r}")

    def download(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> Path:
        """Download the file or folder ``path`` ('' = every artifact of the run).

        A file goes to ``dest``, or into it when ``dest`` is an existing folder; a
        folder's contents go into the folder ``dest``. Returns the file or folder
        written. Each file is verified before it appears at its final path.
        """
        prefix = normalize_artifact_prefix(path)
        dest = Path(dest)
        files = self._list(run_id, prefix, recursive=True)
        if prefix and len(files) == 1 and files[0].path == prefix:
            target = dest / prefix.rsplit("/", 1)[-1] if dest.is_dir() else dest
            self._fetch(run_id, prefix, target)
            return target
        base = dest.resolve()
        cut = len(prefix) + 1 if prefix else 0
        plan = []
        for info in files:
            if not info.path.startswith(f"{prefix}/" if prefix else ""):
                raise InvalidInput(f"server sent {info.path!r}, which is not under {prefix!r}")
            rel = normalize_artifact_path(info.path[cut:])
            target = (base / rel).resolve()
            # resolve() also follows symlinks already inside dest.
            if not target.is_relative_to(base) or target == base:
                raise InvalidInput(f"artifact {info.path!r} would be written outside {dest}")
            plan.append((info.path, target))
        dest.mkdir(parents=True, exist_ok=True)
        for remote, target in plan:
            self._fetch(run_id, remote, target)
        return dest

    def _fetch(self, run_id: str, path: str, target: Path) -> None:
        self._api.download_verified(_url(run_id, path), target, f"artifact {path!r}")
