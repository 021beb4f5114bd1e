"""Checking model files against the hashes the registry recorded, before anything loads them."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from shipyard.errors import IntegrityError
from shipyard.hashing import hash_file


def safe_target(root: Path, rel: str) -> Path:
    """``root / rel`` for a relative path from the server; IntegrityError if it would escape."""
    parts = PurePosixPath(rel).parts
    if not rel or rel.startswith("/") or "\\" in rel or any(p in ("", ".", "..") for p in parts):
        raise IntegrityError(f"refusing the file path {rel[:200]!r} from the server")
    target = root.joinpath(*parts)
    if not target.resolve().is_relative_to(root.resolve()):
        raise IntegrityError(f"refusing the file path {rel[:200]!r} from the server")
    return target


def matches(path: Path, expected_hash: str) -> bool:
    """Whether the local file exists and has ``expected_hash``."""
    return path.is_file() and hash_file(path) == expected_hash
