"""The content hash every part of Shipyard agrees on: BLAKE3, hex.

Kept free of heavy imports: the SDK uses it to check downloads without loading
the blob store's storage stack.
"""

from __future__ import annotations

import os

from blake3 import blake3

# The header that carries a downloaded blob's digest; clients re-hash and compare.
HASH_HEADER = "X-Shipyard-Blob-Hash"
CHUNK = 1024 * 1024


def hash_file(path: str | os.PathLike[str]) -> str:
    """BLAKE3 hex digest of a local file (the same hash the blob store uses)."""
    hasher = blake3(max_threads=blake3.AUTO)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()
