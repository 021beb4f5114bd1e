"""Work the server does over a version's files: diffs and re-validation.

The files are read where they lie when the blob store is a local folder (each one
verified against its hash first), or copied, verified, into a temporary folder from
S3; DuckDB and pyarrow then read local Parquet files.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from shipyard.blobs import BlobStore
from shipyard.clock import now_ms
from shipyard.datasets.service import get_dataset
from shipyard.datasets.types import DataFile, ValidationReport, VersionDiff
from shipyard.datasets.versions import get_version
from shipyard.platform import Platform


@contextmanager
def local_files(blobs: BlobStore, files: Sequence[DataFile]) -> Iterator[list[Path]]:
    """Local, verified paths of ``files`` for as long as the block runs."""
    with tempfile.TemporaryDirectory(prefix="shipyard-dataset-") as tmp:
        paths: list[Path] = []
        for index, f in enumerate(files):
            local = blobs.local_path(f.hash)
            if local is not None:
                for _ in blobs.iter_chunks(f.hash):  # reading verifies the hash
                    pass
                paths.append(local)
            else:
                target = Path(tmp, f"{index:06d}.parquet")
                blobs.copy_to(f.hash, target)
                paths.append(target)
        yield paths


def validate_version(
    platform: Platform, project_id: int, name: str, selector: str
) -> ValidationReport:
    """The dataset's current expectations judged on one stored version."""
    from shipyard.datasets.validation import validate_files

    suite = get_dataset(platform, project_id, name).expectations
    version = get_version(platform, project_id, name, selector)
    with local_files(platform.blobs, version.files) as paths:
        return validate_files(suite, paths, now_ms=now_ms())


def diff(
    platform: Platform,
    project_id: int,
    name: str,
    old: str,
    new: str,
    *,
    keys: Sequence[str] = (),
    samples: int = 5,
) -> VersionDiff:
    """What changed from version ``old`` to ``new``; rows compared by ``keys`` if given."""
    from shipyard.datasets.diff import diff_versions

    before = get_version(platform, project_id, name, old)
    after = get_version(platform, project_id, name, new)
    if not keys or before.digest == after.digest:
        return diff_versions(name, before, after, keys=list(keys) or None, samples=samples)
    with tempfile.TemporaryDirectory(prefix="shipyard-diff-") as spill:
        with (
            local_files(platform.blobs, before.files) as old_paths,
            local_files(platform.blobs, after.files) as new_paths,
        ):
            return diff_versions(
                name,
                before,
                after,
                keys=list(keys),
                old_files=old_paths,
                new_files=new_paths,
                samples=samples,
                temp_directory=Path(spill),
            )
