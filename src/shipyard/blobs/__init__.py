"""Content-addressed blob store (BLAKE3) over fsspec: a local folder or S3."""

from shipyard.blobs.store import BlobRef, BlobStore, StagedBlob, open_blob_store
from shipyard.hashing import HASH_HEADER

__all__ = ["HASH_HEADER", "BlobRef", "BlobStore", "StagedBlob", "open_blob_store"]
