"""Checking model files against the hashes the registry recorded, before anything loads them."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from blake3 import blake3

from shipyard.errors import IntegrityError

CHUNK = 1024 * 1024


def hash_file(path: str | os.PathLike[str]) -> str:
    """BLAKE3 hex digest of a local file (the same hash the blob store uses)."""
    hasher = blake3(max_threads=blake3.AUTO)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def safe_target(root: Path, rel: str) -> Path:
    """``root / rel`` for a relative path from the server; IntegrityError if it would escape."""
    parts = PurePosixPath(rel).parts
    if not rel or rel.startswith("/") or "\\" in rel or any(p in ("", ".", "..") for p in parts):
        raise IntegrityError(f"refusing model file path {rel[:200]!r}")
    target = root.joinpath(*parts)
    if not target.resolve().is_relative_to(root.resolve()):
        raise IntegrityError(f"refusing model file path {rel[:200]!r}")
    return target


def matches(path: Path, expected_hash: str) -> bool:
    """Whether the local file exists and has ``expected_hash``."""
    return path.is_file() and hash_file(path) == expected_hash
