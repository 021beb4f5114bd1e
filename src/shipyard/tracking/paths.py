"""Artifact paths: the one place a user-given path is checked.

An artifact path is a relative POSIX path inside a run ("model/weights.bin").
It never becomes a storage path on the server (blobs are keyed by hash); the
checks exist so that the same path is safe when a client writes it under a
local folder, and so that one artifact has exactly one spelling.
"""

from __future__ import annotations

import re

from shipyard.errors import InvalidInput

MAX_PATH_LENGTH = 1000
MAX_SEGMENT_BYTES = 255  # the usual file name limit of local filesystems
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # one C scan, not a Python loop per character


def normalize_artifact_path(path: str) -> str:
    """Check a file path inside a run and return it unchanged; InvalidInput otherwise.

    Refused: empty paths, absolute paths, backslashes, NUL and other control
    characters, empty / '.' / '..' segments, names over 255 bytes, and paths
    over 1000 characters.
    """
    if not isinstance(path, str) or not path:
        raise InvalidInput("artifact path is empty")
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidInput(f"artifact path is longer than {MAX_PATH_LENGTH} characters")
    if "\\" in path:
        raise InvalidInput(f"artifact path {path[:200]!r} contains a backslash: use '/'")
    if _CONTROL.search(path):
        raise InvalidInput(f"artifact path {path[:200]!r} contains a control character")
    if path.startswith("/"):
        raise InvalidInput(f"artifact path {path[:200]!r} is absolute: give a relative path")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidInput(f"artifact path {path[:200]!r} has an empty, '.' or '..' segment")
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise InvalidInput(f"artifact path segment {segment[:50]!r}... is too long")
    return path


def normalize_artifact_prefix(prefix: str | None) -> str:
    """A folder path for listing: '' (or None, '/') is the run's root; a trailing '/' is
    dropped; otherwise the rules of :func:`normalize_artifact_path`."""
    if prefix is None or prefix in ("", "/"):
        return ""
    if prefix.endswith("/"):
        prefix = prefix[:-1]
    return normalize_artifact_path(prefix)


def join_artifact_path(folder: str | None, name: str) -> str:
    """``name`` inside the artifact folder ``folder`` (None or '' is the root), checked."""
    base = normalize_artifact_prefix(folder)
    return normalize_artifact_path(f"{base}/{name}" if base else name)
